// @ts-check
// The rooms the page is in: their panes in the side list's order, and the one shown. Showing
// one hides the one shown before; closing the one shown shows its neighbour.

import { byId } from "./render.js";
import { sameRoom } from "./roomlist.js";

/** @typedef {import("./pane.js").RoomPane} RoomPane */
/** @typedef {import("./pane.js").PaneObserver} PaneObserver */

export class Panes {
  /** @param {Document} doc */
  constructor(doc) {
    this.logs = byId(doc, "panes");
    this.memberLists = byId(doc, "member-lists");
    this.entries = byId(doc, "my-rooms");
    /** @type {RoomPane[]} in the side list's order */
    this.list = [];
    /** @type {RoomPane | null} the one shown */
    this.active = null;
    /** @type {Set<PaneObserver>} told of every pane's life (pane.js) */
    this.observers = new Set();
  }

  /** Follow every pane, those open now and those to come.
   * @param {PaneObserver} observer */
  observe(observer) {
    this.observers.add(observer);
    for (const pane of this.list) observer.opened?.(pane);
  }

  /** A new pane, at the end of the side list (not shown yet). @param {RoomPane} pane */
  add(pane) {
    this.list.push(pane);
    this.logs.append(pane.section);
    this.memberLists.append(pane.memberList);
    this.entries.append(pane.entry);
    for (const observer of this.observers) observer.opened?.(pane);
  }

  /** Show `pane`, hiding the one shown before. @param {RoomPane} pane */
  select(pane) {
    if (this.active === pane) return;
    this.active?.hide();
    this.active = pane;
    pane.show();
  }

  /** Close `pane` (its room is left). If it was the one shown, none is now: its neighbour,
   * given back, is the one to show (null: the last room was left).
   * @param {RoomPane} pane @returns {RoomPane | null} */
  close(pane) {
    const index = this.list.indexOf(pane);
    if (index >= 0) this.list.splice(index, 1);
    if (this.active === pane) this.active = null;
    pane.close();
    return this.list[Math.min(Math.max(index, 0), this.list.length - 1)] ?? null;
  }

  /** The pane of `room`, if the page is in it or on its way there. @param {string} room */
  find(room) {
    return this.list.find((pane) => sameRoom(pane.room, room)) ?? null;
  }

  /** The panes in their rooms (not those still joining or refused). */
  entered() {
    return this.list.filter((pane) => pane.entered);
  }
}
