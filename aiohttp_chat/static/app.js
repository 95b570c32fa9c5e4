// @ts-check
// The chat page: the join form, the side list of rooms, the room shown and the input line.
//
// The page can be in several rooms at once, one connection each (the protocol's nicks are
// per room): each room is a RoomPane (pane.js) with its own chat state, log, member list and
// scroll position, kept by Panes (panes.js), of which one is shown. `/join ROOM`, a room
// link (`/#ROOM`) and a click in the list of other rooms (roomlist.js) open ROOM beside the
// rooms open, with the nick of the room shown, or show it if the page is in it already.
// The rooms open are remembered (storage.js), so a reload brings them back.

import { PageAttention } from "./attentions.js";
import { loadSkeletonRules } from "./attention.js";
import { Bar } from "./bar.js";
import { DEFAULT_ROOM, Purpose, alikeRoom, refusal } from "./chat.js";
import { parseLine } from "./commands.js";
import { Notifier, NotifyButton } from "./notify.js";
import { RoomPane } from "./pane.js";
import { Panes } from "./panes.js";
import { REFRESH_SECONDS, RoomDirectory, sameRoom } from "./roomlist.js";
import * as storage from "./storage.js";
import * as texts from "./texts.js";
import { titleFor } from "./unread.js";

/** @typedef {import("./chat.js").Refusals} Refusals */
/** @typedef {import("./pane.js").Opener} Opener */
/** @typedef {import("./pane.js").PaneHost} PaneHost */

/** The page's element `id`, as the `kind` of element the code takes it for (index.html).
 * @template {HTMLElement} T @param {string} id @param {{ new (): T }} kind @returns {T} */
function element(id, kind) {
  const node = document.getElementById(id);
  if (!(node instanceof kind)) throw new Error(`#${id} is not a ${kind.name} in the page`);
  return node;
}
const $ = (/** @type {string} */ id) => element(id, HTMLElement);
const joinView = $("join");
const chatView = $("chat");
const joinForm = element("join-form", HTMLFormElement);
const sendForm = element("send-form", HTMLFormElement);
const line = element("line", HTMLTextAreaElement);
const sendError = $("send-error");
const membersToggle = $("members-toggle");
const roomsToggle = $("rooms-toggle");
const leaveButton = $("leave");
const roomExisting = $("room-existing");
const joinCancel = $("join-cancel");
const FIELDS = /** @type {const} */ (["nick", "room"]);
const fields = { nick: element("nick", HTMLInputElement), room: element("room", HTMLInputElement) };

const bar = new Bar(document);
const panes = new Panes(document);
const directory = new RoomDirectory(document, (room) => {
  closeSideLists();
  openRoom(room, newNick(), panes.active ?? "link");
});

// ------------------------------------------------------------------------ attention (attentions.js)
// Mentions, what is unseen (the title, each room's counts in the side list, the jump button,
// the "New" divider), desktop notifications of mentions, Tab completion: for every room.
const notifier = new Notifier();
const notifyButton = new NotifyButton(element("notify", HTMLButtonElement), notifier);
const attention = new PageAttention({
  notifier,
  select: (pane) => {
    if (panes.list.includes(pane)) select(pane);
  },
  changed: () => showTitle(),
});
panes.observe(attention);
loadSkeletonRules().catch(() => {}); // without it, names are compared by their folded form

/** The pane the join form is shown for: its first joining was refused, and it stays
 * connected so that the form's answer can be asked on the same connection. */
/** @type {RoomPane | null} */
let formPane = null;

/** @type {PaneHost} */
const host = {
  placed: (pane) => {
    if (pane === panes.active) showPlace();
    rememberRooms();
    directory.refilter(isMine);
    refreshRooms();
  },
  refused: (pane, errors) => refused(pane, errors),
  changed: (pane) => {
    if (pane === panes.active) showState(pane);
  },
  rooms: (rooms) => directory.show(rooms, isMine),
  select: (pane) => {
    closeSideLists();
    select(pane);
  },
  leave: (pane) => leave(pane),
  retry: (text) => {
    line.value = text;
    fit();
    line.focus();
  },
  run: (typed) => {
    line.value = typed;
    sendForm.requestSubmit();
  },
  observers: panes.observers,
};

// ------------------------------------------------------------------------ the rooms

/** Open `room` (empty: the server's choice) as `nick` (null: the server's) beside the rooms
 * open, or show its pane if the page is in it already; shown unless `show` is false.
 * @param {string} room @param {string | null} nick @param {Opener} opener */
function openRoom(room, nick, opener, show = true) {
  const existing = panes.find(room || DEFAULT_ROOM);
  if (existing !== null && existing !== formPane) {
    if (show) select(existing);
    return existing;
  }
  const pane = new RoomPane(host, { nick, room: room || null }, opener);
  panes.add(pane);
  if (show) select(pane);
  pane.start();
  bar.rooms(panes.list.length);
  return pane;
}

/** The nick a room opened now asks for: that of the room shown, else the last used. */
function newNick() {
  return panes.active?.nick ?? (storage.recallPlace().nick || null);
}

/** Show `pane`, the input line keeping each room's unsent text. @param {RoomPane} pane */
function select(pane) {
  const before = panes.active;
  if (before !== pane) {
    if (before !== null) before.draft = line.value;
    panes.select(pane);
    line.value = pane.draft;
    fit();
    sendError.textContent = "";
  }
  showChat();
  showPlace();
  showState(pane);
  rememberRooms();
  line.focus();
}

/** Leave the room of `pane`: its connection closed politely; the next room is shown, or,
 * after the last, the join form with its nick and room. @param {RoomPane} pane */
function leave(pane) {
  if (pane === formPane) formPane = null;
  if (pane.entered) storage.rememberPlace({ nick: pane.nick, room: pane.room });
  const next = panes.close(pane);
  afterClosing(next);
  if (panes.active === null) {
    if (next !== null) {
      select(next);
    } else {
      history.replaceState(null, "", location.pathname + location.search); // in no room
      showJoinForm(storage.recallPlace());
    }
  }
}

/** @param {RoomPane | null} next */
function afterClosing(next) {
  rememberRooms();
  directory.refilter(isMine);
  bar.rooms(panes.list.length);
  if (next !== null) refreshRooms();
}

/** The first joining of `pane` was refused. Opened from the form, or when there is no other
 * room to tell it in, the form says why beside its fields; otherwise the room it was opened
 * from (or the one shown) says so, offering a room alike to the one asked for, and the
 * refused connection is closed.
 * @param {RoomPane} pane @param {Refusals} errors */
function refused(pane, errors) {
  const others = panes.list.filter((p) => p !== pane);
  const opener = pane.opener;
  if (opener === "form" || others.length === 0) {
    formPane = pane;
    showJoinForm(pane.chat.wanted, errors);
    return;
  }
  const room = pane.chat.wanted.room ?? DEFAULT_ROOM;
  const teller =
    typeof opener === "object" && !opener.closed ? opener : panes.active !== pane && panes.active ? panes.active : others[0];
  const next = panes.close(pane);
  afterClosing(next);
  if (panes.active === null || teller !== panes.active) select(teller);
  for (const text of [errors.room, errors.nick]) {
    if (text !== undefined) teller.chat.show(refusal({ action: "join_room", room }, text));
  }
}

/** Whether the page is in `room` (or on its way there). @param {string} room */
function isMine(room) {
  return panes.find(room) !== null;
}

function rememberRooms() {
  const active = panes.active?.entered ? panes.active.room : null;
  storage.rememberRooms(panes.entered().map((p) => ({ nick: p.nick, room: p.room })), active);
}

/** Ask for the list of rooms, on the connection of the room shown if it can. */
function refreshRooms() {
  const open = (/** @type {RoomPane | null} */ p) => p !== null && p.entered && p.connection.isOpen;
  const pane = open(panes.active) ? panes.active : (panes.list.find(open) ?? null);
  if (pane !== null) pane.send(pane.chat.roomList());
}

// ------------------------------------------------------------------------ what is shown

function roomInUrl() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return "";
  }
}

function showChat() {
  joinView.hidden = true;
  chatView.hidden = false;
  leaveButton.hidden = membersToggle.hidden = roomsToggle.hidden = false;
  notifyButton.show(true);
}

/** Where the room shown is, in the bar, the title and the URL. */
function showPlace() {
  const pane = panes.active;
  const room = pane !== null && pane.entered ? pane.room : null;
  bar.place(room, pane?.nick ?? null);
  bar.rooms(panes.list.length);
  showTitle();
  if (pane === null || room === null) return;
  storage.rememberPlace({ nick: pane.nick, room });
  if (roomInUrl() !== room) history.replaceState(null, "", `#${encodeURIComponent(room)}`);
}

/** The tab's title: the room shown, after what every room open has unseen. */
function showTitle() {
  const pane = panes.active;
  const room = !chatView.hidden && pane !== null && pane.entered ? pane.room : null;
  document.title = chatView.hidden ? texts.title(null) : titleFor(room, attention.unreads());
}

/** The connection and members of the room shown. @param {RoomPane} pane */
function showState(pane) {
  bar.status(pane.state, pane.detail);
  bar.members(pane.memberCount, pane.stale, pane.membersShown);
}

/** @param {{ nick?: string | null, room?: string | null }} values @param {Refusals} errors
 * @param {"nick" | "room"} focus  the field to start in, if none is in error */
function showJoinForm(values, errors = {}, focus = "nick") {
  closeSideLists();
  chatView.hidden = true;
  joinView.hidden = false;
  leaveButton.hidden = membersToggle.hidden = roomsToggle.hidden = true;
  notifyButton.show(false);
  joinCancel.hidden = !panes.list.some((p) => p !== formPane);
  bar.place(null, null);
  document.title = texts.title(null);
  for (const field of FIELDS) {
    const input = fields[field];
    input.value = values[field] ?? "";
    $(`${field}-error`).textContent = errors[field] ?? "";
    input.toggleAttribute("aria-invalid", field in errors);
  }
  // A room name alike to an existing room's: that room, one click away.
  const existing = alikeRoom(errors.room);
  roomExisting.hidden = existing === null;
  roomExisting.textContent = existing === null ? "" : texts.joinExisting(existing);
  roomExisting.dataset.room = existing ?? "";
  fields[FIELDS.find((field) => field in errors) ?? focus].focus();
}

/** On a phone the side list and the member list lie over the log: one at a time. */
function closeSideLists() {
  for (const toggle of [roomsToggle, membersToggle]) toggle.setAttribute("aria-expanded", "false");
  chatView.classList.remove("show-rooms", "show-members");
}

/** @param {HTMLElement} toggle @param {string} shown  the class that shows its list */
function toggleSideList(toggle, shown) {
  const open = toggle.getAttribute("aria-expanded") !== "true";
  closeSideLists();
  toggle.setAttribute("aria-expanded", String(open));
  chatView.classList.toggle(shown, open);
  return open;
}

// ------------------------------------------------------------------------ joining

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = fields.nick.value.trim();
  const room = fields.room.value.trim();
  storage.rememberPlace({ nick, room });
  const pane = formPane;
  formPane = null;
  if (pane !== null && !pane.closed) {
    if (pane.connection.isOpen && !pane.entered && pane.chat.canRetry(nick || null, room || null)) {
      // After a refusal: asked again on the connection that is there (in a room already).
      select(pane);
      pane.send(pane.chat.retry(nick || null, room || null));
      return;
    }
    afterClosing(panes.close(pane));
  }
  openRoom(room, nick || null, "form");
});

roomExisting.addEventListener("click", () => {
  fields.room.value = roomExisting.dataset.room ?? "";
  joinForm.requestSubmit();
});

// Back from the form to the rooms open (a refused one given up).
joinCancel.addEventListener("click", () => {
  const pane = formPane;
  formPane = null;
  const next = pane !== null ? panes.close(pane) : null;
  afterClosing(next);
  const shown = panes.active ?? next ?? panes.list[0];
  if (shown) select(shown);
});

$("join-another").addEventListener("click", () => {
  const nick = panes.active?.nick ?? storage.recallPlace().nick;
  showJoinForm({ nick, room: "" }, {}, "room");
});

leaveButton.addEventListener("click", () => {
  if (panes.active !== null) leave(panes.active);
});

// ------------------------------------------------------------------------ the input line

/** @type {string[]} what was sent, for Up and Down, as in the terminal client */
const typedLines = [];
let browsing = 0;

/** The line was taken: into the lines typed, and the input emptied. */
function taken() {
  typedLines.push(line.value);
  browsing = typedLines.length;
  line.value = "";
  fit();
}

sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const pane = panes.active;
  const action = parseLine(line.value);
  sendError.textContent = "";
  if (action === null || pane === null) return;
  if (action.quit) {
    line.value = "";
    return leave(pane);
  }
  if (action.more !== undefined) {
    pane.more(action.more);
  } else if (action.send === undefined) {
    pane.render.add({ kind: "help", text: action.show, mine: true });
  } else if (action.send.action === "join_room") {
    const room = String(action.send.room);
    taken();
    if (sameRoom(room, pane.room) && pane.entered) pane.chat.line("system", texts.alreadyIn(pane.room));
    else openRoom(room, pane.nick, pane);
    return;
  } else if (!pane.send([{ message: action.send, purpose: Purpose.USER }])) {
    sendError.textContent = texts.NOT_CONNECTED; // the line stays, to send later
    return;
  }
  taken();
});

/** The input grows with its lines (Shift+Enter, a paste), up to a few; then it scrolls. */
const MOST_ROWS = 6;
function fit() {
  line.style.height = "auto";
  const style = getComputedStyle(line);
  const most = parseFloat(style.lineHeight) * MOST_ROWS + parseFloat(style.paddingTop) * 2 + 2;
  line.style.height = `${Math.min(line.scrollHeight + 2, most || line.scrollHeight + 2)}px`;
}
line.addEventListener("input", fit);

line.addEventListener("keydown", (event) => {
  // A nick of the room shown completed; else Tab moves the focus on.
  if (panes.active !== null && attention.tab(panes.active, event, line)) return fit();
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault(); // Enter sends; Shift+Enter is a line break in the message
    sendForm.requestSubmit();
    return;
  }
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  if (line.value.includes("\n")) return; // moving between its lines, not through history
  const next = browsing + (event.key === "ArrowUp" ? -1 : 1);
  if (next < 0 || next > typedLines.length) return;
  event.preventDefault();
  browsing = next;
  line.value = typedLines[next] ?? "";
  fit();
});

membersToggle.addEventListener("click", () => toggleSideList(membersToggle, "show-members"));
roomsToggle.addEventListener("click", () => {
  if (toggleSideList(roomsToggle, "show-rooms")) refreshRooms();
});

// ------------------------------------------------------------------------ the page's life

window.addEventListener("hashchange", () => {
  const room = roomInUrl();
  if (!room || (panes.active !== null && sameRoom(room, panes.active.room))) return;
  openRoom(room, newNick(), panes.active ?? "link");
});
window.addEventListener("online", () => {
  for (const pane of panes.list) pane.connection.retryNow();
});
$("retry").addEventListener("click", () => panes.active?.connection.retryNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  for (const pane of panes.list) pane.connection.retryNow();
  refreshRooms();
});
setInterval(() => {
  if (document.visibilityState === "visible" && !chatView.hidden) refreshRooms();
}, REFRESH_SECONDS * 1000);
// Leaving the page closes every room politely; coming back to it (the back button) resumes.
window.addEventListener("pagehide", () => {
  for (const pane of panes.list) pane.suspend();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) for (const pane of panes.list) pane.resume();
});

// The rooms the page was in come back, the one in the URL shown (opened if it was not among
// them). A room link (`/#Lounge`) on its own goes straight in under the remembered nick; on
// a first visit, with no nick remembered, the form asks for one, the room filled in.
const saved = storage.recallRooms();
const linked = roomInUrl();
for (const { nick, room } of saved.rooms) openRoom(room, nick || null, "restore", false);
const restored = (linked && panes.find(linked)) || panes.find(saved.active) || panes.list[0];
if (restored) select(restored);
const place = storage.recallPlace();
if (linked && (restored || place.nick)) openRoom(linked, restored?.nick ?? place.nick, restored ?? "link");
else if (!restored) showJoinForm(linked ? { nick: "", room: linked } : place);

// The rooms open, for the parts of the page that follow every room (pane.js's PaneObserver:
// `panes.observe(observer)`), and for the browser tests, which follow them the same way.
export { panes };
