// @ts-check
// One room the page is in: its own connection (the protocol's nicks are per room), its own
// chat state, log, member list, scroll position and entry in the side list of rooms. The page
// holds one RoomPane per room (panes.js) and shows one at a time; a hidden one stays
// connected and keeps everything as it was.
//
// Other parts of the page follow every pane through a PaneObserver (unread counts, for one):
// each message shown, the pane shown or hidden, its log scrolled, the pane closed. The side
// list's entry has a `counts` element for them to fill.

import { Chat, DEFAULT_ROOM } from "./chat.js";
import { Connection, chatUrl } from "./connection.js";
import { Render, element } from "./render.js";
import * as texts from "./texts.js";

/** @typedef {import("./chat.js").Entry} Entry */
/** @typedef {import("./chat.js").Request} Request */
/** @typedef {import("./chat.js").Place} Place */
/** @typedef {import("./chat.js").Refusals} Refusals */
/** @typedef {import("./chat.js").RoomCount} RoomCount */
/** @typedef {import("./connection.js").State} State */

// Older messages are asked for once the log is scrolled to within this many px of its top,
// a little before it, so that reading back rarely waits.
const TOP_MARGIN = 160;

/**
 * How a message was shown: `live` as it happened (or as missed while the connection was
 * lost), not from history (on entering, /history, or paged back); `own` sent by you;
 * `older` paged back, at the top of the log.
 * @typedef {{ live: boolean, own: boolean, older: boolean }} Arrival
 */

/**
 * What another part of the page may follow of every pane; each method is optional.
 * @typedef {object} PaneObserver
 * @property {(pane: RoomPane) => void} [opened]  made, its side-list entry in place
 * @property {(pane: RoomPane, entry: Entry, how: Arrival) => void} [adding]  a chat message
 *   about to be drawn at the end of its log: it may still be marked (a mention, say); the
 *   log is as before it (`pane.atBottom()`)
 * @property {(pane: RoomPane, entry: Entry, how: Arrival) => void} [message]  a chat message
 *   shown in its log, at the end or (paged back) at the top (the entry: see chat.js;
 *   `pane.render.nodes.get(entry)` is its <li>)
 * @property {(pane: RoomPane, entries: Entry[]) => void} [dropped]  lines its log no longer
 *   keeps (its oldest: it keeps a bounded number)
 * @property {(pane: RoomPane) => void} [placed]  in its room (`pane.room`), or renamed
 * @property {(pane: RoomPane) => void} [shown]  now the pane shown (`pane.visible`)
 * @property {(pane: RoomPane) => void} [hidden]  another is shown now
 * @property {(pane: RoomPane) => void} [scrolled]  its log scrolled (`pane.atBottom()`)
 * @property {(pane: RoomPane) => void} [closed]  left: gone from the page
 */

/**
 * What a pane asks of the page around it.
 * @typedef {object} PaneHost
 * @property {(pane: RoomPane) => void} placed  in its room, or renamed
 * @property {(pane: RoomPane, errors: Refusals) => void} refused  its first joining failed
 * @property {(pane: RoomPane) => void} changed  its connection state or members changed
 * @property {(rooms: RoomCount[] | null) => void} rooms  the list of rooms came
 * @property {(pane: RoomPane) => void} select  the user picked it in the side list
 * @property {(pane: RoomPane) => void} leave  the user left it in the side list
 * @property {(text: string) => void} retry  to edit and send `text` again
 * @property {(line: string) => void} run  to run `line` as if typed
 * @property {Iterable<PaneObserver>} observers
 */

/** Where a pane was opened from: the join form, the rooms remembered by the browser, a room
 * link (`/#Lounge`), or another pane (`/join`, a click in the list of rooms).
 * @typedef {"form" | "restore" | "link" | RoomPane} Opener */

export class RoomPane {
  /** @param {PaneHost} host @param {Place} wanted @param {Opener} opener */
  constructor(host, wanted, opener) {
    this.host = host;
    this.opener = opener;
    this.visible = false;
    this.closed = false;
    this.draft = ""; // the input line's text while another pane is shown
    /** @type {State} */
    this.state = "closed";
    /** @type {number | string | undefined} */
    this.detail = undefined;
    this.memberCount = 0; // the room's, on all the nodes
    this.membersShown = 0; // of them, in its list (fewer in a room too big for one answer)
    this.stale = false; // the member list as last seen, while offline
    this.reveal = false; // older messages asked for by /more: scrolled to once they come

    // Its log, in the page's stack of logs; its member list, in the members' column.
    this.section = element("section", "pane");
    this.section.hidden = true;
    this.log = element("ol", "log");
    this.log.setAttribute("role", "log");
    this.log.setAttribute("aria-live", "polite");
    this.log.tabIndex = 0;
    this.section.append(this.log);
    this.memberList = element("ul", "member-list");
    this.memberList.hidden = true;

    // Its entry in the side list: its name (a click shows it), counts, and a leave control.
    this.entry = element("li", "room-entry");
    this.switchButton = element("button", "switch");
    this.switchButton.type = "button";
    this.nameLabel = element("span", "name");
    /** Filled by other parts of the page (unread and mention counts). */
    this.counts = element("span", "counts");
    this.switchButton.append(this.nameLabel, this.counts);
    this.leaveButton = element("button", "leave-room", "×");
    this.leaveButton.type = "button";
    this.entry.append(this.switchButton, this.leaveButton);
    this.switchButton.addEventListener("click", () => host.select(this));
    this.leaveButton.addEventListener("click", () => host.leave(this));
    this.log.addEventListener("scroll", () => {
      this.checkTop();
      this.notify((o) => o.scrolled?.(this));
    });

    this.render = new Render(
      this.log,
      this.memberList,
      (text) => host.retry(text),
      (line) => host.run(line),
      (entries) => {
        for (const entry of entries) this.chat.forget(entry);
        this.notify((o) => o.dropped?.(this, entries));
      },
    );
    this.chat = new Chat({
      add: (entry) => {
        const how = entry.kind === "message" ? this.arrival(entry, !entry.history) : null;
        if (how) this.notify((o) => o.adding?.(this, entry, how));
        this.render.add(entry);
        if (how) this.notify((o) => o.message?.(this, entry, how));
      },
      update: (entry) => this.render.update(entry),
      prepend: (entries) => {
        const arrived = entries.filter((entry) => entry.kind === "message");
        for (const entry of arrived) this.notify((o) => o.adding?.(this, entry, this.arrival(entry, false, true)));
        this.render.prepend(entries);
        if (this.reveal) this.log.scrollTop = 0; // asked for by /more: shown
        this.reveal = false;
        for (const entry of arrived) this.notify((o) => o.message?.(this, entry, this.arrival(entry, false, true)));
      },
      paging: (state) => {
        this.render.loading(state === "asked");
        if (state !== "asked") this.reveal = false;
      },
      members: (names, me, count) => {
        this.render.members(names, me);
        this.memberCount = count ?? names.length;
        this.membersShown = names.length;
        this.stale = false;
        host.changed(this);
      },
      place: () => {
        this.named();
        host.placed(this);
        this.notify((o) => o.placed?.(this));
      },
      refused: (errors) => host.refused(this, errors),
      rooms: (rooms) => host.rooms(rooms),
    });
    this.connection = new Connection(() => this.chat.url(chatUrl(location)), {
      open: () => this.chat.connected(),
      message: (text) => {
        this.send(this.chat.received(text));
        this.checkTop();
      },
      keepalive: () => this.send(this.chat.refresh()),
      lost: (why) => this.offline("system", texts.lost(why)),
      ended: (why) => this.offline("error", texts.ended(why)),
      state: (state, detail) => {
        this.state = state;
        this.detail = detail;
        this.entry.dataset.state = state;
        host.changed(this);
      },
    });
    this.chat.begin(wanted.nick || null, wanted.room || null);
    this.named();
  }

  /** The room: the server's name for it once in, else the one asked for (a connection
   * whose joining was refused is elsewhere, but not in the room of this pane). */
  get room() {
    return (this.chat.entered ? this.chat.room : this.chat.wanted.room) || DEFAULT_ROOM;
  }

  /** The nick: the server's once in the room, else the one asked for (null: the server's
   * choice). */
  get nick() {
    return this.chat.entered ? this.chat.nick : (this.chat.wanted.nick ?? this.chat.nick);
  }

  /** Whether it has been in its room (refusals of the first joining are not yet that). */
  get entered() {
    return this.chat.entered;
  }

  /** Connect, and keep connected until closed. */
  start() {
    this.connection.start();
  }

  /** Send what the chat asks for (or what is typed), telling it what went out; false as soon
   * as one cannot go (not connected).
   * @param {Request[]} requests */
  send(requests) {
    for (const { message, purpose } of requests) {
      if (!this.connection.send(message)) return false;
      this.chat.sent(message, purpose);
    }
    return true;
  }

  /** Show this pane (the page hides the one shown before). */
  show() {
    if (this.visible) return;
    this.visible = true;
    this.section.hidden = this.memberList.hidden = false;
    this.render.unpark();
    this.switchButton.setAttribute("aria-current", "true");
    this.notify((o) => o.shown?.(this));
    this.checkTop();
  }

  hide() {
    if (!this.visible) return;
    this.render.park(); // while it still has a layout to measure
    this.visible = false;
    this.section.hidden = this.memberList.hidden = true;
    this.switchButton.removeAttribute("aria-current");
    this.notify((o) => o.hidden?.(this));
  }

  /** Leave the room: its connection closed politely (the room hears a polite `left`), its
   * log, members and entry gone. */
  close() {
    if (this.closed) return;
    this.hide();
    this.closed = true;
    this.connection.stop();
    this.section.remove();
    this.memberList.remove();
    this.entry.remove();
    this.notify((o) => o.closed?.(this));
  }

  /** The page is left (or put in the back/forward cache): closed politely, kept to resume. */
  suspend() {
    this.connection.stop();
  }

  /** The page came back from the back/forward cache. */
  resume() {
    this.chat.disconnected();
    this.connection.start();
  }

  /** Whether its log is scrolled to its end (a hidden pane: where it was left). */
  atBottom() {
    return this.render.atBottom();
  }

  /** Scroll its log to the end. */
  scrollToEnd() {
    this.render.toEnd();
  }

  /** Ask for the `limit` messages before the oldest shown, if there may be any; whether
   * they were asked for. @param {number} [limit] */
  older(limit) {
    const requests = this.chat.older(this.render.oldestId(), limit);
    return requests.length > 0 && this.send(requests);
  }

  /** /more: the `limit` messages before the oldest shown, shown at the top of the log once
   * they come; at the beginning, the log scrolled to it. @param {number} limit */
  more(limit) {
    const { state } = this.chat.paging;
    if (state === "asked") return; // on their way
    if (state === "beginning") this.log.scrollTop = 0;
    else if (this.older(limit)) this.reveal = true;
    else this.chat.line("system", texts.NO_OLDER);
  }

  /** Shown and scrolled to the top (or too short to scroll): the older messages, if any. */
  checkTop() {
    if (this.visible && this.chat.paging.state === "more" && this.render.nearTop(TOP_MARGIN)) {
      this.older();
    }
  }

  named() {
    this.nameLabel.textContent = this.room;
    this.log.setAttribute("aria-label", texts.messagesIn(this.room));
    this.leaveButton.setAttribute("aria-label", texts.leaveRoom(this.room));
    this.leaveButton.title = texts.leaveRoom(this.room);
  }

  /** @param {string} kind @param {string} text */
  offline(kind, text) {
    this.chat.disconnected();
    this.stale = true;
    this.host.changed(this);
    this.chat.show({ kind, text });
  }

  /** @param {Entry} entry @param {boolean} live @param {boolean} [older] @returns {Arrival} */
  arrival(entry, live, older = false) {
    return { live, own: entry.mine === true, older };
  }

  /** @param {(observer: PaneObserver) => void} tell */
  notify(tell) {
    for (const observer of this.host.observers) tell(observer);
  }
}
