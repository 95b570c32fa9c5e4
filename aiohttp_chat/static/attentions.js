// @ts-check
// The attention of every room the page is in, and what the page shows of it all: one
// Attention (attention.js) per pane, told of its messages, of its pane shown or hidden and
// of its log scrolled; each room's unseen and mention counts in its side-list entry; what
// the tab's title counts (unread.js's `titleFor`); desktop notifications of mentions through
// the page's one Notifier, a click on one showing the room it came from; Tab in the input
// line completing the nicks of the room shown. A PaneObserver (pane.js): `panes.observe`.

import { Attention } from "./attention.js";
import * as texts from "./texts.js";

/** @typedef {import("./pane.js").RoomPane} RoomPane */
/** @typedef {import("./pane.js").PaneObserver} PaneObserver */
/** @typedef {import("./pane.js").Arrival} Arrival */
/** @typedef {import("./chat.js").Entry} Entry */
/** @typedef {import("./notify.js").Notifier} Notifier */
/** @typedef {import("./unread.js").Unread<Entry>} Unread */

/**
 * What the page's attention asks of the page.
 * @typedef {object} AttentionHost
 * @property {Notifier} notifier  the page's one
 * @property {(pane: RoomPane) => void} select  show `pane` (its notification was clicked)
 * @property {() => void} changed  some room's unseen count did: the title
 */

/** A room's counts, in its side-list entry: `3` or `3!` to see, said as "3 unread, 1
 * mentioning you" to a screen reader. @param {HTMLElement} counts @param {Unread} unread */
export function drawCounts(counts, unread) {
  const { count, mentions } = unread;
  counts.replaceChildren();
  counts.toggleAttribute("data-mention", mentions > 0);
  if (!count) return;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.ariaHidden = "true";
  badge.textContent = texts.unreadBadge(count, mentions);
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = ` (${texts.unreadLabel(count, mentions)})`;
  counts.append(badge, label);
}

/** @implements {PaneObserver} */
export class PageAttention {
  /** @param {AttentionHost} host */
  constructor(host) {
    this.host = host;
    /** @type {Map<RoomPane, Attention>} */
    this.attentions = new Map();
    document.addEventListener("visibilitychange", () => {
      for (const attention of this.attentions.values()) attention.look();
    });
  }

  /** The Attention of `pane`, if it is open. @param {RoomPane} pane */
  of(pane) {
    return this.attentions.get(pane) ?? null;
  }

  /** What every room open has unseen, for the title. @returns {Unread[]} */
  unreads() {
    return [...this.attentions.values()].map((attention) => attention.unread);
  }

  /** Tab in the input line of `pane`'s room: whether it completed a nick there.
   * @param {RoomPane} pane @param {KeyboardEvent} event
   * @param {HTMLTextAreaElement | HTMLInputElement} input */
  tab(pane, event, input) {
    return this.of(pane)?.tab(event, input) ?? false;
  }

  /** @param {RoomPane} pane */
  opened(pane) {
    const { host } = this;
    const attention = new Attention(pane.render, {
      me: () => pane.nick,
      room: () => pane.room,
      members: () => pane.chat.members,
      changed: () => {
        drawCounts(pane.counts, attention.unread);
        host.changed();
      },
      notify: (title, body) => host.notifier.show(title, body, () => host.select(pane)),
    });
    this.attentions.set(pane, attention);
    attention.show(pane.visible);
  }

  /** @param {RoomPane} pane @param {Entry} entry @param {Arrival} how */
  adding(pane, entry, how) {
    this.of(pane)?.adding(entry, how);
  }

  /** @param {RoomPane} pane @param {Entry} entry @param {Arrival} how */
  message(pane, entry, how) {
    this.of(pane)?.added(entry, how);
  }

  /** @param {RoomPane} pane @param {Entry[]} entries */
  dropped(pane, entries) {
    this.of(pane)?.dropped(entries);
  }

  /** @param {RoomPane} pane */
  shown(pane) {
    this.of(pane)?.show(true);
  }

  /** @param {RoomPane} pane */
  hidden(pane) {
    this.of(pane)?.show(false);
  }

  /** @param {RoomPane} pane */
  scrolled(pane) {
    this.of(pane)?.look();
  }

  /** @param {RoomPane} pane */
  closed(pane) {
    this.attentions.delete(pane);
    this.host.changed();
  }
}
