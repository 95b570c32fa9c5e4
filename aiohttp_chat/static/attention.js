// @ts-check
// What a room's pane does so that its reader misses nothing: it marks the messages that name
// them (mentions.js), counts what arrives while they are not looking (unread.js: the tab
// hidden, the log scrolled up, another room shown), moves the "New" divider, offers the jump
// to the first unseen message, asks for a desktop notification of a mention while the tab
// is hidden or another room is shown, and completes nicks with Tab (completion.js). One per
// room's pane, beside its Render, told of its messages before and after they are drawn
// (attentions.js follows every pane for it); the pane says its room, nick and members.

import { Activity, Completion } from "./completion.js";
import { mentions, useRules } from "./mentions.js";
import * as texts from "./texts.js";
import { Unread, isNews } from "./unread.js";

/** @typedef {import("./chat.js").Entry} Entry */
/** @typedef {import("./render.js").Render} Render */

/**
 * What an Attention asks of its page.
 * @typedef {object} Pane
 * @property {() => string | null} me  the reader's nick in the room
 * @property {() => string | null} room
 * @property {() => ReadonlySet<string>} members  of the room
 * @property {() => void} changed  its unseen count did: the title and the list of rooms
 * @property {(title: string, body: string) => void} notify  a desktop notification, if on
 */

export const SKELETON_RULES = new URL("./confusables.json", import.meta.url);

/** Load the server's alike rule for names, once for every pane: until it is in, mentions
 * are found by the folded form of names (`Alice`, `ALICE`), not yet their look-alikes. */
export async function loadSkeletonRules() {
  const response = await fetch(SKELETON_RULES);
  if (!response.ok) throw new Error(`${SKELETON_RULES.pathname}: ${response.status}`);
  useRules(await response.json());
}

export class Attention {
  /** @param {Render} render  the pane's @param {Pane} pane */
  constructor(render, pane) {
    this.render = render;
    this.pane = pane;
    /** @type {Unread<Entry>} */
    this.unread = new Unread();
    this.activity = new Activity(() => this.pane.members());
    this.completion = new Completion();
    this.shown = true; // the pane is in view (of several rooms open, one is)
    this.away = false; // of the message being added: whether the reader was looking
    render.jumpButton.addEventListener("click", () => this.jump());
  }

  /** Whether the reader is looking at the end of the pane's log. */
  looking() {
    return this.shown && document.visibilityState === "visible" && this.render.atBottom();
  }

  /** A chat message about to be drawn (the pane's `adding`): marked if it names the reader,
   * its sender active (unless it is history paged back: `older`).
   * @param {Entry} entry @param {{ own: boolean, older?: boolean }} how */
  adding(entry, { own, older = false }) {
    if (!own) entry.mention = mentions(entry.text, this.pane.me());
    if (entry.user && !older) this.activity.spoke(entry.user);
    this.away = !this.looking(); // before the log follows the new line, if it does
  }

  /** The message is drawn (the pane's `message`): counted if it is news the reader was not
   * looking at; a mention notified if the tab is hidden or another room's pane is shown.
   * @param {Entry} entry @param {{ live: boolean, older?: boolean }} how */
  added(entry, { live, older = false }) {
    if (!this.away || !live || older || !isNews(entry)) return;
    if (this.unread.arrived(entry, { mention: entry.mention })) this.render.markNew(entry);
    if (entry.mention && (document.visibilityState === "hidden" || !this.shown)) {
      this.pane.notify(texts.mentionedBy(entry.user, this.pane.room() ?? ""), entry.text);
    }
    this.look(); // in view after all (the log does not scroll yet), or counted
    this.changed();
  }

  /** Lines the log no longer keeps: what of them was unseen is not counted any more.
   * @param {Entry[]} entries */
  dropped(entries) {
    if (this.unread.forget(entries)) this.changed();
  }

  /** The reader may see more of the log now (scrolled, came back to the tab, the pane
   * shown): what is in view is seen. */
  look() {
    if (!this.shown || document.visibilityState !== "visible") return;
    if (this.unread.seen((entry) => this.render.inView(entry))) this.changed();
  }

  /** The pane is shown, or another room's is. @param {boolean} shown */
  show(shown) {
    this.shown = shown;
    this.look();
  }

  /** To the first message not seen yet. */
  jump() {
    const first = this.unread.first;
    if (first) this.render.scrollTo(first);
    this.look();
  }

  changed() {
    const { count, mentions: naming } = this.unread;
    this.render.showJump(count ? texts.newMessages(count, naming) : null);
    this.pane.changed();
  }

  /** Tab in the pane's input: whether it completed a nick there (else Tab does what it
   * always does: the focus moves on, no keyboard user is trapped).
   * @param {KeyboardEvent} event @param {HTMLTextAreaElement | HTMLInputElement} input */
  tab(event, input) {
    const plain = !(event.shiftKey || event.ctrlKey || event.altKey || event.metaKey);
    const caret = input.selectionStart ?? 0;
    if (event.key !== "Tab" || !plain || event.isComposing || caret !== input.selectionEnd) {
      return false;
    }
    const names = this.activity.ranked(this.pane.me());
    const line = this.completion.tab({ value: input.value, caret }, names);
    if (line === null) return false;
    event.preventDefault();
    input.value = line.value;
    input.setSelectionRange(line.caret, line.caret);
    return true;
  }
}
