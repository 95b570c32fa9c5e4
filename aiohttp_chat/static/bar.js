// @ts-check
// The page's bar and the frame around the logs: where you are, the connection's state, the
// member list's heading, for the room shown (each room has its own connection and members).

import { byId } from "./render.js";
import * as texts from "./texts.js";

/** @typedef {import("./connection.js").State} State */

export class Bar {
  /** @param {Document} doc */
  constructor(doc) {
    this.doc = doc;
    this.statusLine = byId(doc, "status");
    this.where = byId(doc, "where");
    this.membersToggle = byId(doc, "members-toggle");
    this.roomsToggle = byId(doc, "rooms-toggle");
    this.roomsToggle.textContent = texts.ROOMS; // until rooms are open: then how many
    this.retry = byId(doc, "retry");
    this.countdown = doc.createElement("span");
    this.countdown.className = "countdown";
    this.countdown.ariaHidden = "true";
  }

  /** @param {string | null} room @param {string | null} nick */
  place(room, nick) {
    this.where.textContent = room === null ? "" : texts.where(room, nick);
    this.where.hidden = room === null;
  }

  /** The connection's state; while waiting to retry, a countdown that screen readers skip
   * (the status is announced when it changes: once, not every second).
   * @param {State} state @param {number | string} [detail] */
  status(state, detail) {
    const said = texts.STATUS[state];
    const text = typeof said === "function" ? said(detail) : said;
    const shown = this.statusLine.firstChild;
    if (this.statusLine.dataset.state !== state || !(shown instanceof Text) || shown.data !== text) {
      this.statusLine.replaceChildren(text, this.countdown);
      this.statusLine.dataset.state = state;
    }
    this.countdown.textContent = state === "waiting" ? texts.retryIn(Number(detail)) : "";
    this.retry.hidden = state !== "waiting";
  }

  /** How many members the room shown has, whether that list is as last seen (offline), and
   * how many of them it lists (fewer in a room too big for one answer).
   * @param {number} count @param {boolean} stale @param {number} shown */
  members(count, stale, shown = count) {
    this.membersToggle.textContent = texts.members(count);
    const partial = byId(this.doc, "members-shown");
    partial.hidden = shown >= count;
    partial.textContent = shown < count ? texts.membersShown(count, shown) : "";
    byId(this.doc, "members").classList.toggle("stale", stale);
    byId(this.doc, "members-stale").hidden = !stale;
  }

  /** @param {number} count  rooms you are in */
  rooms(count) {
    this.roomsToggle.textContent = texts.roomsToggle(count);
  }
}
