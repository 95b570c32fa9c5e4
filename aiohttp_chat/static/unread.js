// @ts-check
// What a room has that its reader has not seen yet, as weechat's hotlist and read marker or
// The Lounge's unread counts keep it: the chat messages that arrived while the reader was not
// looking (the tab hidden, the log scrolled up, or another room shown), how many of them
// name the reader, and where the "New" divider goes. One `Unread` per room; pure: the page
// says what arrived and what is in view.

import * as texts from "./texts.js";

/** @typedef {import("./chat.js").Entry} Entry */

/** Whether `entry` counts as news when it arrives: a chat message from someone else, live
 * (or missed during an outage), not the room's history shown on entering it, not a system
 * line, not one's own.
 * @param {Entry} entry */
export function isNews(entry) {
  return entry.kind === "message" && !entry.mine && !entry.history;
}

/** @template T  what the page counts: its log's entries */
export class Unread {
  constructor() {
    /** @type {T[]} not seen yet, oldest first */
    this.unseen = [];
    /** @type {Set<T>} those of them that name the reader */
    this.naming = new Set();
    /** @type {T | undefined} the first to arrive after all was seen: the "New" divider */
    this.marker = undefined;
  }

  /** How many arrived unseen. */
  get count() {
    return this.unseen.length;
  }

  /** How many of them name the reader. */
  get mentions() {
    return this.naming.size;
  }

  /** The oldest unseen, where "jump to the new messages" goes. */
  get first() {
    return this.unseen[0];
  }

  /** `item` arrived unseen (the reader is not looking); whether it is the first since all
   * was seen, where the "New" divider moves.
   * @param {T} item @param {{ mention?: boolean }} [how] */
  arrived(item, { mention = false } = {}) {
    const first = this.unseen.length === 0;
    this.unseen.push(item);
    if (mention) this.naming.add(item);
    if (first) this.marker = item;
    return first;
  }

  /** `items` are gone (the log no longer keeps them): not counted any more. Whether any
   * of them was. @param {Iterable<T>} items */
  forget(items) {
    const gone = new Set(items);
    const before = this.unseen.length;
    this.unseen = this.unseen.filter((item) => !gone.has(item));
    for (const item of gone) this.naming.delete(item);
    if (this.marker !== undefined && gone.has(this.marker)) this.marker = this.unseen[0];
    return this.unseen.length < before;
  }

  /** The reader saw the oldest unseen items as long as `inView` says so (each in order, up
   * to the first that is not); all of them without `inView`. Whether any was.
   * @param {(item: T) => boolean} [inView] */
  seen(inView = () => true) {
    let seen = 0;
    while (seen < this.unseen.length && inView(this.unseen[seen])) seen += 1;
    for (const item of this.unseen.splice(0, seen)) this.naming.delete(item);
    return seen > 0;
  }
}

/** The tab's title for the rooms open, `shown` the one in view: `(3) Lounge · aiohttp-chat`,
 * the count of what all of them have unseen, `(3!)` when one of those names the reader.
 * @param {string | null} shown @param {Iterable<Unread<unknown>>} rooms */
export function titleFor(shown, rooms) {
  let count = 0;
  let mentions = 0;
  for (const unread of rooms) {
    count += unread.count;
    mentions += unread.mentions;
  }
  return texts.title(shown, count, mentions > 0);
}
