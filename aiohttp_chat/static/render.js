// @ts-check
// What one room's chat looks like: its conversation (the log) and its member list.
// Every string from the server or a peer goes in as text (textContent), never as HTML.

import { linkParts } from "./links.js";
import * as texts from "./texts.js";

/** @typedef {import("./chat.js").Entry} Entry */

const MAX_ENTRIES = 2000; // older lines are dropped, so a tab left open stays small
// Scrolled up, reading, the older lines stay, up to this many: then the oldest go all the
// same (the line read staying where it is), or a busy room left so would grow without end.
const MOST_ENTRIES = 2 * MAX_ENTRIES;
const NEAR_BOTTOM = 48; // px: closer than this to the end, the log follows new lines

/** Where a log was scrolled to while it is not shown (a hidden log has no layout): at the end
 * (to follow what came meanwhile), or a line and how far below the log's top it was.
 * @typedef {{ bottom: true } | { bottom: false, anchor: Element | null, offset: number }} Parked */

const todayFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const otherDayFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** `07:33` today, `Nov 23, 07:33` on another day, in local time.
 * @param {Date} date */
export function shortTime(date, now = new Date()) {
  const sameDay = date.toDateString() === now.toDateString();
  return (sameDay ? todayFormat : otherDayFormat).format(date);
}

/** A stable colour for a nick: a hue from its characters.
 * @param {string} nick */
function hue(nick) {
  let hash = 0;
  for (const char of nick) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  return hash % 360;
}

/** `text` as nodes: its web addresses as links that open in a new tab (links.js), all the
 * rest as text.
 * @param {string} text @returns {(string | HTMLAnchorElement)[]} */
function withLinks(text) {
  return linkParts(text).map((part) => {
    if (part.href === undefined) return part.text;
    const link = element("a", "", part.text);
    link.href = part.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    link.title = part.href; // where it goes, as the browser reads it, on hovering
    return link;
  });
}

/** A new element with a class and a text, both optional.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Render {
  /** `log` and `memberList`: the room's own elements. `retry(text)`: the user wants to send a
   * refused or unconfirmed message again; `run(line)`: to do what an entry offers (a line, as
   * if typed); `dropped(entries)`: lines the log no longer keeps, oldest first.
   * @param {HTMLElement} log @param {HTMLElement} memberList
   * @param {(text: string) => void} retry @param {(line: string) => void} run
   * @param {(entries: Entry[]) => void} [dropped] */
  constructor(log, memberList, retry, run, dropped = () => {}) {
    this.log = log;
    this.memberList = memberList;
    this.retry = retry;
    this.run = run;
    this.dropped = dropped;
    /** @type {WeakMap<Entry, HTMLLIElement>} entry -> its <li> */
    this.nodes = new WeakMap();
    /** @type {WeakMap<Element, Entry>} <li> -> its entry */
    this.entries = new WeakMap();
    /** @type {Parked | null} while the log is not shown */
    this.parked = null;
    this.loadingLine = element("li", "system loading", texts.LOADING_OLDER);
    // Where the reader left off: before the first message that came while they were away.
    this.newDivider = element("li", "divider new", texts.NEW);
    // Over the end of the log (placed after it), scrolled up while messages came: to the
    // first of them.
    this.jumpButton = element("button", "jump");
    this.jumpButton.type = "button";
    this.jumpButton.hidden = true;
  }

  /** A line at the end. Following the end, the log keeps its last MAX_ENTRIES lines;
   * scrolled up, reading, nothing moves and nothing is dropped, up to MOST_ENTRIES lines.
   * @param {Entry} entry */
  add(entry) {
    const follow = entry.mine || this.atBottom();
    this.log.append(this.made(entry));
    if (follow) {
      this.dropOldest(MAX_ENTRIES);
      this.toEnd();
    } else if (this.log.childElementCount > MOST_ENTRIES) {
      this.keepInPlace(() => this.dropOldest(MAX_ENTRIES));
    }
  }

  /** The oldest lines dropped until `kept` are left (the loading line and the "New"
   * divider stay: they are not lines of the room). @param {number} kept */
  dropOldest(kept) {
    /** @type {Entry[]} */
    const gone = [];
    while (this.log.childElementCount > kept) {
      let first = this.log.firstElementChild;
      while (first === this.loadingLine || first === this.newDivider) first = first.nextElementSibling;
      if (first === null) break;
      first.remove();
      const entry = this.entries.get(first);
      if (entry) gone.push(entry);
    }
    if (gone.length) this.dropped(gone);
  }

  /** Older lines above all others, the line at the top of the log staying where it is.
   * @param {Entry[]} entries */
  prepend(entries) {
    const nodes = entries.map((entry) => this.made(entry));
    const loading = this.loadingLine.isConnected; // it stays at the top
    this.keepInPlace(() => (loading ? this.loadingLine.after(...nodes) : this.log.prepend(...nodes)));
  }

  /** While older messages are being asked for, a line at the top says so.
   * @param {boolean} loading */
  loading(loading) {
    if (loading === this.loadingLine.isConnected) return;
    this.keepInPlace(() => (loading ? this.log.prepend(this.loadingLine) : this.loadingLine.remove()));
  }

  /** The id of the oldest message shown (the first in the log with one), or null. */
  oldestId() {
    for (let node = this.log.firstElementChild; node !== null; node = node.nextElementSibling) {
      const entry = this.entries.get(node);
      if (entry?.kind === "message" && typeof entry.id === "string") return entry.id;
    }
    return null;
  }

  /** @param {Entry} entry */
  update(entry) {
    const old = this.nodes.get(entry);
    if (!old) return;
    old.replaceWith(this.made(entry));
  }

  /** The node of `entry`, made anew, and remembered both ways. @param {Entry} entry */
  made(entry) {
    const node = this.entry(entry);
    this.nodes.set(entry, node);
    this.entries.set(node, entry);
    return node;
  }

  /** The "New" divider, moved to just before `entry`.
   * @param {Entry} entry */
  markNew(entry) {
    this.nodes.get(entry)?.before(this.newDivider);
  }

  /** Whether `entry` has been in view: its end above the end of the log's visible part (or
   * it is no longer shown at all).
   * @param {Entry} entry */
  inView(entry) {
    const node = this.nodes.get(entry);
    if (!node?.isConnected) return true;
    return node.getBoundingClientRect().bottom <= this.log.getBoundingClientRect().bottom + 1;
  }

  /** Scroll the log so that `entry` (with the "New" divider before it, if it is there) is
   * at the top.
   * @param {Entry} entry */
  scrollTo(entry) {
    const node = this.nodes.get(entry);
    if (!node?.isConnected) return;
    const top = node.previousElementSibling === this.newDivider ? this.newDivider : node;
    this.log.scrollTop += top.getBoundingClientRect().top - this.log.getBoundingClientRect().top;
  }

  /** The button to the first unseen message, saying `text`; hidden when null.
   * @param {string | null} text */
  showJump(text) {
    if (!this.jumpButton.isConnected) this.log.after(this.jumpButton); // (a pane made later)
    this.jumpButton.hidden = text === null;
    this.jumpButton.textContent = text ?? "";
  }

  atBottom() {
    if (this.parked) return this.parked.bottom;
    const log = this.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM;
  }

  /** Whether the log is scrolled to within `margin` px of its top (a log shorter than its
   * box is). @param {number} margin */
  nearTop(margin) {
    return this.parked === null && this.log.scrollTop <= margin;
  }

  toEnd() {
    if (this.parked) this.parked = { bottom: true };
    else this.log.scrollTop = this.log.scrollHeight;
  }

  /** Run `change` (lines added or removed above), keeping the first line in view where it
   * was: reading on is not disturbed (if it is gone, the oldest line left is at the top).
   * @param {() => void} change */
  keepInPlace(change) {
    if (this.parked) {
      change(); // the parked anchor keeps its place by itself
      return;
    }
    const { anchor, offset } = this.anchor();
    change();
    if (anchor?.isConnected) this.log.scrollTop += this.offsetOf(anchor) - offset;
    else if (anchor) this.log.scrollTop = 0;
  }

  /** The first line in view (not the loading line), and how far below the log's top it is. */
  anchor() {
    const top = this.log.getBoundingClientRect().top;
    for (let node = this.log.firstElementChild; node !== null; node = node.nextElementSibling) {
      if (node === this.loadingLine) continue;
      const box = node.getBoundingClientRect();
      if (box.bottom > top) return { anchor: node, offset: box.top - top };
    }
    return { anchor: null, offset: 0 };
  }

  /** @param {Element} node */
  offsetOf(node) {
    return node.getBoundingClientRect().top - this.log.getBoundingClientRect().top;
  }

  /** The log is about to be hidden: remember where it was scrolled to. */
  park() {
    if (this.parked) return;
    this.parked = this.atBottom() ? { bottom: true } : { bottom: false, ...this.anchor() };
  }

  /** The log is shown again: back where it was, or at the end if it followed the end. */
  unpark() {
    const parked = this.parked;
    this.parked = null;
    if (parked === null) return;
    if (parked.bottom) this.toEnd();
    else if (parked.anchor?.isConnected) this.log.scrollTop += this.offsetOf(parked.anchor) - parked.offset;
    else if (parked.anchor) this.log.scrollTop = 0; // its line dropped meanwhile: the oldest left
  }

  /** @param {Entry} entry @returns {HTMLLIElement} */
  entry(entry) {
    if (entry.kind !== "message") return this.offering(element("li", entry.kind, entry.text), entry);
    const classes = ["message"];
    if (entry.mine) classes.push("mine");
    if (entry.history) classes.push("history");
    if (entry.state) classes.push(entry.state);
    if (entry.mention) classes.push("mention");
    const node = element("li", classes.join(" "));
    if (entry.mention) node.append(element("span", "visually-hidden", texts.MENTIONS_YOU));
    node.append(this.time(entry.time));
    const user = element("span", "user", entry.user ?? "");
    user.style.setProperty("--hue", String(hue(entry.user ?? "")));
    const text = element("span", "text");
    text.append(...withLinks(entry.text));
    node.append(user, element("span", "visually-hidden", ": "), text);
    const notes = { sending: texts.SENDING, unconfirmed: texts.UNCONFIRMED, failed: entry.error };
    const note = entry.state === undefined || entry.state === "sent" ? undefined : notes[entry.state];
    if (note) node.append(element("span", "note", note));
    if (entry.state === "failed" || entry.state === "unconfirmed") {
      const again = element("button", "again", texts.SEND_AGAIN);
      again.type = "button";
      again.addEventListener("click", () => this.retry(entry.text));
      node.append(again);
    }
    return node;
  }

  /** `node` with a button for what `entry` offers to do, if anything.
   * @param {HTMLLIElement} node @param {Entry} entry */
  offering(node, entry) {
    if (entry.offer) {
      const button = element("button", "again", entry.offer.label);
      button.type = "button";
      const { line } = entry.offer;
      button.addEventListener("click", () => this.run(line));
      node.append(button);
    }
    return node;
  }

  /** @param {unknown} iso */
  time(iso) {
    const node = element("time");
    const date = typeof iso === "string" ? new Date(iso) : null;
    if (typeof iso !== "string" || date === null || Number.isNaN(date.getTime())) {
      node.textContent = "··:··";
      return node;
    }
    node.dateTime = iso;
    node.textContent = shortTime(date);
    node.title = fullFormat.format(date);
    return node;
  }

  /** @param {string[]} names @param {string | null} me */
  members(names, me) {
    this.memberList.replaceChildren(
      ...names.map((name) => {
        const item = element("li", name === me ? "me" : "", name);
        item.dataset.nick = name;
        if (name === me) item.append(element("span", "you", ` ${texts.YOU}`));
        return item;
      }),
    );
  }
}

/** The page's element with `id`: the page has every one the code names.
 * @param {Document} doc @param {string} id @returns {HTMLElement} */
export function byId(doc, id) {
  const node = doc.getElementById(id);
  if (node === null) throw new Error(`#${id} is not in the page`);
  return node;
}
