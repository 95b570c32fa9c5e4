// @ts-check
// What the page knows of its chat and what each server message means, as the terminal
// client's client_view.py: the requests in flight, the messages shown (each once, across
// reconnects), the member list. No DOM and no socket: `received` gives back the requests a
// server message calls for, the page sends them and tells `sent` (as it does for what is
// typed), and `ui` is told what to show (entries, not text: a line can change later).

import { RECENT, typed } from "./commands.js";
import { Paging } from "./paging.js";
import * as texts from "./texts.js";

/** @typedef {{ [field: string]: any }} Message  a JSON object, to the server or from it */
/** @typedef {typeof Purpose[keyof typeof Purpose]} PurposeName */
/** @typedef {{ message: Message, purpose: PurposeName }} Request  one to make, and why */
/** @typedef {{ nick?: string, room?: string }} Refusals  the server's texts, by field */
/** @typedef {{ nick: string | null, room: string | null }} Place */
/** @typedef {{ room: string, users: number }} RoomCount  one room of `room_list` */
/** @typedef {import("./paging.js").PagingState} PagingState */

/**
 * One line of the conversation.
 * @typedef {object} Entry
 * @property {string} kind  "message", else its class: "system", "error", "divider", "help"
 * @property {string} text
 * @property {string | null} [user]
 * @property {unknown} [id]
 * @property {unknown} [time]
 * @property {boolean} [mine]
 * @property {boolean} [history]  from the room's history, not live
 * @property {"sending" | "sent" | "unconfirmed" | "failed"} [state]  of an own message
 * @property {string} [error]  why it failed
 * @property {{ label: string, line: string } | null} [offer]  a line to run, on a button
 * @property {boolean} [mention]  names the reader (attention.js decides)
 */

/**
 * What the chat tells the page to show.
 * @typedef {object} ChatUI
 * @property {(entry: Entry) => void} add  a line of the conversation
 * @property {(entry: Entry) => void} update  one that changed
 * @property {(names: string[], me: string | null, count: number | null) => void} members  the
 *   names known, and (a room too big for one answer) how many it has in all, else null
 * @property {(room: string | null, nick: string | null) => void} place  in a room, or renamed
 * @property {(errors: Refusals) => void} refused  the first joining failed
 * @property {(entries: Entry[]) => void} prepend  older lines, oldest first, above all others
 * @property {(state: PagingState) => void} paging  asking for older messages, or no longer
 * @property {(rooms: RoomCount[] | null) => void} rooms  the list of rooms; null: it was
 *   refused (by a server without it, or in passing, say by the rate limit: roomlist.js keeps
 *   the last list it had)
 */

export const DEFAULT_ROOM = "Default";
// The refusal of a room name alike to an existing room's (protocol 1.2) names that room.
const ALIKE_ROOM = /^Room name looks like an existing room: (.+)\.$/s;

/** The existing room a refusal names as alike to the one asked for; else null.
 * @param {string | undefined} text */
export function alikeRoom(text) {
  return ALIKE_ROOM.exec(text ?? "")?.[1] ?? null;
}
const SEEN_IDS = 5000; // message ids remembered to show each message once

// Why a request was sent, which decides how its reply is shown (client_view.Purpose).
export const Purpose = Object.freeze({
  USER: "user", // typed: every reply is shown
  STARTUP: "startup", // nick and room asked for on connecting: the greeting sums them up
  RECENT_ON_ENTRY: "recent", // history on entering a room
  CATCH_UP: "catch-up", // history after a reconnect: what was missed
  QUIET: "quiet", // the page's own: the member list, refreshed; never a line of its own
  OLDER: "older", // history before the oldest message shown: the log scrolled to its top
});
const { USER, STARTUP, RECENT_ON_ENTRY, CATCH_UP, QUIET, OLDER } = Purpose;

/** The rooms of a `room_list` reply, each checked: a peer's names are text, counts numbers.
 * @param {unknown} rooms @returns {RoomCount[]} */
export function roomCounts(rooms) {
  if (!Array.isArray(rooms)) return [];
  return rooms
    .filter((r) => r !== null && typeof r === "object" && typeof r.room === "string")
    .map((r) => ({ room: String(r.room), users: Number.isInteger(r.users) ? Number(r.users) : 0 }));
}

/** The line that tells of a refused request, offering the existing room that a refused room
 * name is alike to.
 * @param {Message} request @param {string} text @returns {Entry} */
export function refusal(request, text) {
  const existing = request.action === "join_room" ? alikeRoom(text) : null;
  const offer = existing ? { label: texts.joinExisting(existing), line: `/join ${existing}` } : null;
  return { kind: "error", text: texts.refused(typed(request), text), offer };
}

export class Chat {
  /** @param {ChatUI} ui */
  constructor(ui) {
    this.ui = ui;
    /** @type {Map<string, true>} `${room}\n${id}`, oldest first */
    this.seen = new Map();
    /** @type {Map<string | null, string>} room -> id of the newest message shown */
    this.last = new Map();
    /** @type {Place} */
    this.wanted = { nick: null, room: null };
    /** @type {string | null} to resume the connection with, once the server gave one */
    this.token = null;
    /** @type {Message} the connection's, as `connecting` announced them */
    this.limits = {};
    this.entered = false; // once in: refusals are lines, and a new connection catches up
    /** @type {string | null} */
    this.nick = null;
    /** @type {string | null} */
    this.room = null;
    /** @type {Set<string>} */
    this.members = new Set();
    /** @type {number | null} the room's members, when `members` holds only a page of them */
    this.memberTotal = null;
    /** @type {Entry[]} own messages sent on a connection that was lost unanswered */
    this.unconfirmed = [];
    /** @type {(Request & { entry: Entry | null })[]} in flight, oldest first */
    this.pending = [];
    /** @type {string | null} our nick, to take back once the server lets go of it */
    this.reclaim = null;
    this.startup = 0; // STARTUP requests in flight
    this.greeted = false; // `connecting` came
    /** @type {Refusals} */
    this.refusals = {};
    this.inRoom = false; // on this connection
    /** @type {{ user: string, room: unknown, entry: Entry | undefined } | undefined} */
    this.newcomer = undefined; // the last to join, and the line that says it
    /** @type {Entry | undefined} */
    this.lastEntry = undefined;
    this.paging = new Paging();
  }

  /** Join as `nick` in `room` (either empty: the server's choice) on the next connection.
   * @param {string | null} nick @param {string | null} room */
  begin(nick, room) {
    this.wanted = { nick, room };
    this.token = null;
    this.limits = {};
    this.entered = false;
    this.nick = this.room = null;
    this.members = new Set();
    this.memberTotal = null;
    this.unconfirmed = [];
    this.pending = [];
    this.reclaim = null;
  }

  /** The chat's URL for the next connection, `base` with what it asks for (protocol 1.2):
   * the wanted nick and room, entered in one step, and the token of a lost connection.
   * @param {string} base */
  url(base) {
    const { nick, room } = this.wanted;
    const query = new URLSearchParams();
    if (nick) query.set("nick", nick);
    if (room && room !== DEFAULT_ROOM) query.set("room", room);
    if (this.token) query.set("resume", this.token);
    const search = query.toString();
    return search ? `${base}?${search}` : base;
  }

  /** A new connection is open: its greeting (`connecting`) says where it is. */
  connected() {
    this.pending = [];
    this.startup = 0;
    this.greeted = false;
    this.refusals = {};
    this.inRoom = false;
  }

  /** What the server will say of the wanted nick and room: with protocol 1.2, the one
   * refusal that follows `connecting` if it did not grant them (the room's, if both); a
   * server without it is asked, room first (nicks are unique per room: asked for where it
   * will be used): the requests to make for that.
   * @param {boolean} inHandshake @returns {Request[]} */
  expectWanted(inHandshake) {
    const { nick, room } = this.wanted;
    const roomRequest = { action: "join_room", room };
    const nickRequest = { action: "set_nick", nick };
    const roomRefused = room && room !== DEFAULT_ROOM && room !== this.room;
    const nickRefused = nick && nick !== this.nick;
    if (inHandshake) {
      const message = roomRefused ? roomRequest : nickRefused ? nickRequest : null;
      if (message) this.sent(message, STARTUP); // (in the handshake's query)
      return [];
    }
    return [
      ...(roomRefused ? [{ message: roomRequest, purpose: STARTUP }] : []),
      ...(nickRefused ? [{ message: nickRequest, purpose: STARTUP }] : []),
    ];
  }

  /** Whether, after a refused first join, `nick` and `room` can be asked for on this same
   * connection (it is in a room already), so that the room hears no stranger leave: not
   * when both are to change, where each request could fail for the other's sake (the nick
   * is alike to one in the new room, or taken in this one); a new connection asks for both
   * in one step.
   * @param {string | null} nick @param {string | null} room */
  canRetry(nick, room) {
    return !(nick && nick !== this.nick && (room || DEFAULT_ROOM) !== this.room);
  }

  /** After a refused first join, the form was sent again: what to ask on this same
   * connection.
   * @param {string | null} nick @param {string | null} room @returns {Request[]} */
  retry(nick, room) {
    this.wanted = { nick, room };
    this.refusals = {};
    const requests = this.expectWanted(false);
    return requests.length || this.startup ? requests : this.enterWhenDue();
  }

  /** The connection was lost: own messages not yet answered may or may not have gone out. */
  disconnected() {
    for (const { purpose, entry } of this.pending) {
      if (purpose === USER && entry) {
        entry.state = "unconfirmed";
        this.unconfirmed.push(entry);
        this.ui.update(entry);
      }
    }
    this.pending = [];
    this.inRoom = false;
    this.paging.lost();
    this.ui.paging(this.paging.state);
    if (this.entered) this.wanted = { nick: this.nick, room: this.room }; // restored next
  }

  /** `message` went out, asked for by the chat or typed (`USER`). A chat message typed is
   * shown at once, and confirmed (or refused) by the reply.
   * @param {Message} message @param {PurposeName} purpose */
  sent(message, purpose = USER) {
    /** @type {Entry | null} */
    let entry = null;
    if (purpose === USER && message.action === "chat_message") {
      entry = { kind: "message", user: this.nick, text: message.message, mine: true, state: "sending" };
    }
    this.pending.push({ message, purpose, entry });
    if (purpose === STARTUP) this.startup += 1;
    if (purpose === OLDER) {
      this.paging.sent();
      this.ui.paging(this.paging.state);
    }
    if (entry) this.show(entry);
  }

  /** To ask for the `limit` messages before `oldest`, the id of the oldest message shown, if
   * there may be any: only in the room, one request at a time.
   * @param {unknown} oldest @param {number} [limit] @returns {Request[]} */
  older(oldest, limit) {
    const message = this.inRoom ? this.paging.request(this.room, oldest, limit) : null;
    return message ? [{ message, purpose: OLDER }] : [];
  }

  /** To ask for the list of rooms, quietly: for the side list only (`/rooms`, typed, is
   * sent as the user's request, and its reply is shown in the log too). @returns {Request[]} */
  roomList() {
    return [{ message: { action: "room_list" }, purpose: QUIET }];
  }

  /** `entry` is no longer shown (the log keeps a bounded number of lines): if paging back
   * brings its message again, it is shown again. @param {Entry} entry */
  forget(entry) {
    if (typeof entry.id === "string") this.seen.delete(`${this.room}\n${entry.id}`);
  }

  /** To refresh the member list (the connection's keepalive, too): a quiet room (protocol 1.2:
   * too big to hear arrivals and departures) changes its list by this only. @returns {Request[]} */
  refresh() {
    const message = { action: "user_list", ...(this.room ? { room: this.room } : {}) };
    return [{ message, purpose: QUIET }];
  }

  /** Whatever the server sent, as text: shown, and the requests it calls for.
   * @param {string} text @returns {Request[]} */
  received(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      message = null;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      this.line("error", texts.unexpected(text));
      return [];
    }
    return "success" in message ? this.reply(message) : this.event(message);
  }

  // ---------------------------------------------------------------------- replies

  /** @param {Message} message @returns {Request[]} */
  reply(message) {
    // Replies come in the order of the requests: the oldest of the action is answered.
    const index = this.pending.findIndex((p) => p.message.action === message.action);
    const { message: request, purpose, entry } =
      index < 0 ? { message: { action: message.action }, purpose: USER, entry: null }
                : this.pending.splice(index, 1)[0];
    if (typeof message.resume === "string") this.token = message.resume;
    /** @type {Request[]} */
    let requests = [];
    if (message.success === true) requests = this.succeeded(message, request, purpose, entry);
    else this.failed(String(message.message), request, purpose, entry);
    if (purpose === STARTUP) {
      this.startup -= 1;
      requests = [...requests, ...this.enterWhenDue()];
    }
    return requests;
  }

  /** @param {Message} reply @param {Message} request @param {PurposeName} purpose
   * @param {Entry | null} entry @returns {Request[]} */
  succeeded(reply, request, purpose, entry) {
    switch (reply.action) {
      case "set_nick": {
        const old = this.nick;
        if (purpose === USER) this.reclaim = null;
        this.nick = request.nick;
        if (old !== null && this.members.delete(old)) this.members.add(request.nick);
        if (purpose === USER) {
          this.line("system", texts.youAreNow(this.nick));
          this.showMembers();
          this.ui.place(this.room, this.nick);
        }
        break;
      }
      case "join_room":
        this.room = request.room;
        if (purpose === USER) {
          this.reclaim = null;
          this.line("system", texts.youAreIn(this.room));
          return this.enter();
        }
        break;
      case "user_list": {
        const count = Number.isInteger(reply.count) ? Number(reply.count) : null; // a first page
        if (reply.room === this.room && Array.isArray(reply.users)) {
          this.members = new Set(reply.users.map(String));
          this.memberTotal = count !== null && count > this.members.size ? count : null;
          this.showMembers();
        }
        if (purpose === USER) this.line("system", texts.inRoom(reply.room, reply.users ?? [], count));
        break;
      }
      case "chat_message":
        if (entry) {
          entry.user ??= this.nick; // sent before the server named us
          Object.assign(entry, { id: reply.id, time: reply.time, state: "sent" });
          this.firstTime(this.room, reply.id);
          this.ui.update(entry);
        }
        break;
      case "history":
        this.history(reply, purpose);
        break;
      case "room_list": {
        const rooms = roomCounts(reply.rooms);
        this.ui.rooms(rooms);
        if (purpose === USER) this.line("system", texts.roomList(rooms));
        break;
      }
      default:
        break;
    }
    return [];
  }

  /** @param {string} text @param {Message} request @param {PurposeName} purpose
   * @param {Entry | null} entry */
  failed(text, request, purpose, entry) {
    if (entry) {
      Object.assign(entry, { state: "failed", error: text });
      this.ui.update(entry);
    } else if (purpose === STARTUP && !this.entered) {
      this.refusals[request.action === "set_nick" ? "nick" : "room"] = text;
    } else if (purpose === STARTUP && request.action === "set_nick") {
      // Our nick, restored after a reconnect, is still held by our lost connection until the
      // server notices it is gone; it is taken back when the room hears that it left.
      this.reclaim = request.nick;
      this.line("error", texts.reclaiming(typed(request), text));
    } else if (purpose === USER || purpose === STARTUP) {
      this.show(refusal(request, text));
      if (request.action === "room_list") this.ui.rooms(null);
    } else if (purpose === OLDER) {
      this.paging.refused(); // a server without `before`: no more paging, quietly
      this.ui.paging(this.paging.state);
    } else if (request.action === "room_list") {
      this.ui.rooms(null); // a server without the list of rooms
    } // history and member lists asked for by the page: a server without them says no
  }

  /** @param {Message} reply @param {PurposeName} purpose */
  history(reply, purpose) {
    const room = String(reply.room);
    /** @type {Message[]} */
    let messages = (Array.isArray(reply.messages) ? reply.messages : []).filter(
      (m) => m !== null && typeof m === "object",
    );
    if (purpose === OLDER) {
      messages = messages.filter((m) => this.firstTime(room, m.id, false));
      const beginning = this.paging.answered(reply.complete === true, messages.length);
      const entries = messages.map((m) => this.historyEntry(m, true));
      if (beginning) entries.unshift({ kind: "divider", text: texts.beginningOf(room) });
      if (entries.length) this.ui.prepend(entries);
      this.ui.paging(this.paging.state);
      return;
    }
    if (purpose === USER) {
      for (const m of messages) this.firstTime(room, m.id);
    } else {
      // Each message once: skip what was shown live meanwhile, or sent unconfirmed.
      messages = messages.filter((m) => this.firstTime(room, m.id) && !this.confirmed(m));
    }
    let header = null;
    if (purpose === CATCH_UP) header = messages.length ? texts.missedIn(room) : null;
    else if (purpose === RECENT_ON_ENTRY) header = messages.length ? texts.recentIn(room) : null;
    else header = messages.length ? texts.lastIn(room) : texts.noneKept(room);
    if (header) this.line("divider", header);
    if (purpose === RECENT_ON_ENTRY && this.paging.entered(reply.complete === true)) {
      this.ui.paging(this.paging.state);
      if (messages.length) this.line("divider", texts.beginningOf(room));
    }
    for (const m of messages) this.show(this.historyEntry(m, purpose !== CATCH_UP));
    if (purpose === CATCH_UP && reply.complete !== true) this.line("system", texts.maybeMissing);
  }

  /** A message of a history reply, as a line. @param {Message} m @param {boolean} history
   * @returns {Entry} */
  historyEntry(m, history) {
    return {
      kind: "message",
      user: String(m.user),
      text: String(m.message),
      id: m.id,
      time: m.time,
      mine: m.user === this.nick,
      history,
    };
  }

  /** Whether history message `m` is an own message whose sending was not confirmed: if so,
   * that entry is confirmed with it instead of showing it twice.
   * @param {Message} m */
  confirmed(m) {
    const index = this.unconfirmed.findIndex((e) => e.user === m.user && e.text === m.message);
    if (index < 0) return false;
    const [entry] = this.unconfirmed.splice(index, 1);
    Object.assign(entry, { id: m.id, time: m.time, state: "sent" });
    this.ui.update(entry);
    return true;
  }

  // ---------------------------------------------------------------------- entering a room

  /** Once greeted and the first requests are answered: in the room, or the form again.
   * @returns {Request[]} */
  enterWhenDue() {
    if (this.greeted && this.startup === 0 && !this.inRoom) {
      if (!this.entered && Object.keys(this.refusals).length) {
        this.ui.refused(this.refusals);
        return [];
      }
      this.line("system", (this.entered ? texts.reconnected : texts.connected)(this.room, this.nick));
      return this.enter();
    }
    return [];
  }

  /** In a room (on connecting, or after /join): its members, and asking for its history.
   * @returns {Request[]} */
  enter() {
    const after = this.entered && !this.inRoom ? this.last.get(this.room) : undefined;
    this.inRoom = this.entered = true;
    this.members = new Set(this.nick === null ? [] : [this.nick]);
    this.memberTotal = null;
    this.showMembers();
    this.ui.place(this.room, this.nick);
    const history = after
      ? { message: { action: "history", room: this.room, after }, purpose: CATCH_UP }
      : { message: { action: "history", room: this.room, limit: RECENT }, purpose: RECENT_ON_ENTRY };
    return [...this.refresh(), history];
  }

  // ---------------------------------------------------------------------- broadcasts

  /** @param {Message} event @returns {Request[]} */
  event(event) {
    const user = String(event.user);
    switch (event.action) {
      case "connecting": {
        this.nick = user;
        this.room = String(event.room);
        this.token = typeof event.resume === "string" ? event.resume : null;
        this.limits = event.limits !== null && typeof event.limits === "object" ? event.limits : {};
        this.greeted = true;
        const requests = this.expectWanted("protocol" in event);
        return requests.length ? requests : this.enterWhenDue();
      }
      case "joined":
        if (this.memberTotal !== null && !this.members.has(user)) this.memberTotal += 1;
        this.members.add(user);
        this.showMembers();
        this.line("system", texts.joined(user, event.room));
        this.newcomer = { user, room: event.room, entry: this.lastEntry };
        break;
      case "left":
        if (this.memberTotal !== null) this.memberTotal -= 1;
        this.members.delete(user);
        this.showMembers();
        this.line("system", texts.left(user, event.room, event.shame === true));
        if (user === this.reclaim) return [{ message: { action: "set_nick", nick: user }, purpose: USER }];
        break;
      case "nick_changed": {
        this.members.delete(String(event.from_user));
        this.members.add(String(event.to_user));
        this.showMembers();
        const { entry, user: newcomer, room } = this.newcomer ?? {};
        if (entry !== undefined && newcomer === event.from_user && entry === this.lastEntry) {
          // A client that just came in under the server's default nick took its own: one line.
          entry.text = texts.joined(event.to_user, room);
          this.ui.update(entry);
        } else {
          this.line("system", texts.nickChanged(event.from_user, event.to_user));
        }
        break;
      }
      case "chat_message":
        if (this.firstTime(this.room, event.id)) {
          this.show({ kind: "message", user, text: String(event.message), id: event.id, time: event.time });
        }
        break;
      default:
        this.line("error", texts.unexpected(JSON.stringify(event)));
    }
    return [];
  }

  /** Note message `id` of `room`; whether it is new. Messages without an id always are.
   * `newest`: it is the newest message seen (not one from further back).
   * @param {string | null} room @param {unknown} id */
  firstTime(room, id, newest = true) {
    if (typeof id !== "string") return true;
    if (newest) this.last.set(room, id);
    const key = `${room}\n${id}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    const oldest = this.seen.keys().next();
    if (this.seen.size > SEEN_IDS && !oldest.done) this.seen.delete(oldest.value);
    return true;
  }

  showMembers() {
    const names = [...this.members].sort((a, b) => a.localeCompare(b));
    this.ui.members(names, this.nick, this.memberTotal);
  }

  /** @param {string} kind @param {string} text */
  line(kind, text) {
    this.show({ kind, text });
  }

  /** @param {Entry} entry */
  show(entry) {
    this.lastEntry = entry;
    this.ui.add(entry);
  }
}
