// What the page knows of its chat and what each server message means, as the terminal
// client's view.py: the requests in flight, the messages shown (each once, across
// reconnects), the member list. No DOM and no socket: `send` sends a request (false while
// not connected) and `ui` is told what to show.

import { RECENT, typed } from "./commands.js";
import * as texts from "./texts.js";

export const DEFAULT_ROOM = "Default";
// The refusal of a room name alike to an existing room's (protocol 1.2) names that room.
const ALIKE_ROOM = /^Room name looks like an existing room: (.+)\.$/s;

/** The existing room a refusal names as alike to the one asked for; else null. */
export function alikeRoom(text) {
  return ALIKE_ROOM.exec(text ?? "")?.[1] ?? null;
}
const SEEN_IDS = 5000; // message ids remembered to show each message once

// Why a request was sent, which decides how its reply is shown.
const USER = "user"; // typed: every reply is shown
const STARTUP = "startup"; // nick and room asked for on connecting: the greeting sums them up
const RECENT_ON_ENTRY = "recent"; // history on entering a room
const CATCH_UP = "catch-up"; // history after a reconnect: what was missed
const QUIET = "quiet"; // the member list, fetched and refreshed; never a line of its own

export class Chat {
  /**
   * `ui`: add(entry) and update(entry) for the conversation; members(names, me);
   * place(room, nick) once in a room or renamed; refused(errors) when the first joining
   * failed, with the server's text by field ({nick, room}).
   */
  constructor(send, ui) {
    this.send = send;
    this.ui = ui;
    this.seen = new Map(); // `${room}\n${id}` -> true, oldest first
    this.last = new Map(); // room -> id of the newest message shown
    this.begin(null, null);
  }

  /** Join as `nick` in `room` (either empty: the server's choice) on the next connection. */
  begin(nick, room) {
    this.wanted = { nick, room };
    this.token = null; // to resume the connection with, once the server gave one
    this.limits = {};
    this.entered = false; // once in: refusals are lines, and a new connection catches up
    this.nick = this.room = null;
    this.members = new Set();
    this.unconfirmed = []; // own messages sent on a connection that was lost unanswered
    this.pending = [];
    this.reclaim = null; // our nick, to take back once the server lets go of it
  }

  /** The chat's URL for the next connection, `base` with what it asks for (protocol 1.2):
   * the wanted nick and room, entered in one step, and the token of a lost connection. */
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
   * will be used). */
  expectWanted(inHandshake) {
    const { nick, room } = this.wanted;
    const roomRequest = { action: "join_room", room };
    const nickRequest = { action: "set_nick", nick };
    const roomRefused = room && room !== DEFAULT_ROOM && room !== this.room;
    const nickRefused = nick && nick !== this.nick;
    if (inHandshake) {
      const request = roomRefused ? roomRequest : nickRefused ? nickRequest : null;
      if (request) {
        this.pending.push({ request, purpose: STARTUP, entry: null });
        this.startup += 1;
      }
      return;
    }
    if (roomRefused) this.ask(roomRequest, STARTUP);
    if (nickRefused) this.ask(nickRequest, STARTUP);
  }

  /** Whether, after a refused first join, `nick` and `room` can be asked for on this same
   * connection (it is in a room already), so that the room hears no stranger leave: not
   * when both are to change, where each request could fail for the other's sake (the nick
   * is alike to one in the new room, or taken in this one); a new connection asks for both
   * in one step. */
  canRetry(nick, room) {
    return !(nick && nick !== this.nick && (room || DEFAULT_ROOM) !== this.room);
  }

  /** After a refused first join, the form was sent again: ask on this same connection. */
  retry(nick, room) {
    this.wanted = { nick, room };
    this.refusals = {};
    this.expectWanted(false);
    if (this.startup === 0) this.enterWhenDue();
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
    if (this.entered) this.wanted = { nick: this.nick, room: this.room }; // restored next
  }

  /** Send a chat message; shown at once, confirmed (or refused) by the reply. */
  say(message) {
    const entry = { kind: "message", user: this.nick, text: message, mine: true, state: "sending" };
    if (!this.ask({ action: "chat_message", message }, USER, entry)) return false;
    this.show(entry);
    return true;
  }

  /** Send a typed command's request; false when not connected. */
  command(request) {
    return this.ask(request, USER);
  }

  /** Refresh the member list (the connection's keepalive, too). */
  refresh() {
    this.ask({ action: "user_list", ...(this.room ? { room: this.room } : {}) }, QUIET);
  }

  ask(request, purpose, entry = null) {
    if (!this.send(request)) return false;
    this.pending.push({ request, purpose, entry });
    if (purpose === STARTUP) this.startup += 1;
    return true;
  }

  /** Whatever the server sent, as text. */
  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      message = null;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      this.line("error", texts.unexpected(text));
    } else if ("success" in message) {
      this.reply(message);
    } else {
      this.event(message);
    }
  }

  // ---------------------------------------------------------------------- replies

  reply(message) {
    // Replies come in the order of the requests: the oldest of the action is answered.
    const index = this.pending.findIndex((p) => p.request.action === message.action);
    const { request, purpose, entry } =
      index < 0 ? { request: { action: message.action }, purpose: USER, entry: null }
                : this.pending.splice(index, 1)[0];
    if (typeof message.resume === "string") this.token = message.resume;
    if (message.success === true) this.succeeded(message, request, purpose, entry);
    else this.failed(String(message.message), request, purpose, entry);
    if (purpose === STARTUP) {
      this.startup -= 1;
      this.enterWhenDue();
    }
  }

  succeeded(reply, request, purpose, entry) {
    switch (reply.action) {
      case "set_nick": {
        const old = this.nick;
        if (purpose === USER) this.reclaim = null;
        this.nick = request.nick;
        if (this.members.delete(old)) this.members.add(this.nick);
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
          this.enter();
        }
        break;
      case "user_list":
        if (reply.room === this.room && Array.isArray(reply.users)) {
          this.members = new Set(reply.users.map(String));
          this.showMembers();
        }
        if (purpose === USER) this.line("system", texts.inRoom(reply.room, reply.users ?? []));
        break;
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
      default:
        break;
    }
  }

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
      const existing = request.action === "join_room" ? alikeRoom(text) : null;
      const offer = existing && { label: texts.joinExisting(existing), line: `/join ${existing}` };
      this.show({ kind: "error", text: texts.refused(typed(request), text), offer });
    } // history and member lists asked for by the page: a server without them says no
  }

  history(reply, purpose) {
    const room = String(reply.room);
    let messages = (Array.isArray(reply.messages) ? reply.messages : []).filter(
      (m) => m !== null && typeof m === "object",
    );
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
    for (const m of messages) {
      this.show({
        kind: "message",
        user: String(m.user),
        text: String(m.message),
        id: m.id,
        time: m.time,
        mine: m.user === this.nick,
        history: purpose !== CATCH_UP,
      });
    }
    if (purpose === CATCH_UP && reply.complete !== true) this.line("system", texts.maybeMissing);
  }

  /** Whether history message `m` is an own message whose sending was not confirmed: if so,
   * that entry is confirmed with it instead of showing it twice. */
  confirmed(m) {
    const index = this.unconfirmed.findIndex((e) => e.user === m.user && e.text === m.message);
    if (index < 0) return false;
    const [entry] = this.unconfirmed.splice(index, 1);
    Object.assign(entry, { id: m.id, time: m.time, state: "sent" });
    this.ui.update(entry);
    return true;
  }

  // ---------------------------------------------------------------------- entering a room

  enterWhenDue() {
    if (this.greeted && this.startup === 0 && !this.inRoom) {
      if (!this.entered && Object.keys(this.refusals).length) {
        this.ui.refused(this.refusals);
        return;
      }
      this.line("system", (this.entered ? texts.reconnected : texts.connected)(this.room, this.nick));
      this.enter();
    }
  }

  /** In a room (on connecting, or after /join): its members and its history. */
  enter() {
    const after = this.entered && !this.inRoom ? this.last.get(this.room) : undefined;
    this.inRoom = this.entered = true;
    this.members = new Set([this.nick]);
    this.showMembers();
    this.ui.place(this.room, this.nick);
    this.refresh();
    if (after) this.ask({ action: "history", room: this.room, after }, CATCH_UP);
    else this.ask({ action: "history", room: this.room, limit: RECENT }, RECENT_ON_ENTRY);
  }

  // ---------------------------------------------------------------------- broadcasts

  event(event) {
    const user = String(event.user);
    switch (event.action) {
      case "connecting":
        this.nick = user;
        this.room = String(event.room);
        this.token = typeof event.resume === "string" ? event.resume : null;
        this.limits = event.limits !== null && typeof event.limits === "object" ? event.limits : {};
        this.greeted = true;
        this.expectWanted("protocol" in event);
        this.enterWhenDue();
        break;
      case "joined":
        this.members.add(user);
        this.showMembers();
        this.line("system", texts.joined(user, event.room));
        this.newcomer = { user, room: event.room, entry: this.lastEntry };
        break;
      case "left":
        this.members.delete(user);
        this.showMembers();
        this.line("system", texts.left(user, event.room, event.shame === true));
        if (user === this.reclaim) this.command({ action: "set_nick", nick: user });
        break;
      case "nick_changed": {
        this.members.delete(String(event.from_user));
        this.members.add(String(event.to_user));
        this.showMembers();
        const { newcomer } = this;
        if (newcomer?.user === event.from_user && newcomer.entry === this.lastEntry) {
          // A client that just came in under the server's default nick took its own: one line.
          newcomer.entry.text = texts.joined(event.to_user, newcomer.room);
          this.ui.update(newcomer.entry);
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
  }

  /** Note message `id` of `room`; whether it is new. Messages without an id always are. */
  firstTime(room, id) {
    if (typeof id !== "string") return true;
    this.last.set(room, id);
    const key = `${room}\n${id}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.keys().next().value);
    return true;
  }

  showMembers() {
    this.ui.members([...this.members].sort((a, b) => a.localeCompare(b)), this.nick);
  }

  line(kind, text) {
    this.show({ kind, text });
  }

  show(entry) {
    this.lastEntry = entry;
    this.ui.add(entry);
  }
}
