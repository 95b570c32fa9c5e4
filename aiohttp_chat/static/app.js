// @ts-check
// The chat page: the join form, the conversation and the input line, wired to one
// reconnecting connection (connection.js) and the chat's state (chat.js).

import { Attention, loadSkeletonRules } from "./attention.js";
import { Chat, Purpose, alikeRoom } from "./chat.js";
import { parseLine } from "./commands.js";
import { Connection, chatUrl } from "./connection.js";
import { Notifier, NotifyButton } from "./notify.js";
import { Render } from "./render.js";
import * as texts from "./texts.js";
import { titleFor } from "./unread.js";

/** @typedef {import("./chat.js").Refusals} Refusals */

const STORE = "aiohttp-chat"; // localStorage key: the last {nick, room}

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
const leaveButton = $("leave");
const roomExisting = $("room-existing");
const FIELDS = /** @type {const} */ (["nick", "room"]);
const fields = { nick: element("nick", HTMLInputElement), room: element("room", HTMLInputElement) };

const render = new Render(
  document,
  (text) => {
    line.value = text;
    fit();
    line.focus();
  },
  (typed) => {
    line.value = typed;
    sendForm.requestSubmit();
  },
);
// ------------------------------------------------------------------------ attention (attention.js)
// Mentions, what is unseen (the title, the jump button, the "New" divider), desktop
// notifications of mentions, Tab completion: for the room's pane.
const notifier = new Notifier();
const notifyButton = new NotifyButton(element("notify", HTMLButtonElement), notifier);
const attention = new Attention(render, {
  me: () => chat.nick,
  room: () => chat.room,
  members: () => chat.members,
  changed: () => showTitle(),
  notify: (title, body) => notifier.show(title, body),
});
function showTitle() {
  if (!chatView.hidden) document.title = titleFor(chat.room, [attention.unread]);
}
loadSkeletonRules().catch(() => {}); // without it, names are compared by their folded form
// ------------------------------------------------------------------------

const connection = new Connection(() => chat.url(chatUrl(location)), {
  open: () => chat.connected(),
  message: (text) => send(chat.received(text)),
  keepalive: () => send(chat.refresh()),
  lost: (why) => {
    chat.disconnected();
    render.membersStale(true);
    render.add({ kind: "system", text: texts.lost(why) });
  },
  ended: (why) => {
    chat.disconnected();
    render.membersStale(true);
    render.add({ kind: "error", text: texts.ended(why) });
  },
  state: (state, detail) => render.status(state, detail),
});
const chat = new Chat({
  add: (entry) => attention.add(entry),
  update: (entry) => attention.update(entry),
  members: (names, me) => render.members(names, me),
  place: (room, nick) => {
    render.place(room, nick);
    remember({ nick, room });
    showTitle();
    if (roomInUrl() !== room) history.replaceState(null, "", `#${encodeURIComponent(String(room))}`);
  },
  refused: (errors) => showJoinForm(chat.wanted, errors), // still connected: see the form
});

/** Send what the chat asks for (or what is typed), telling it what went out; false as soon
 * as one cannot go (not connected).
 * @param {import("./chat.js").Request[]} requests */
function send(requests) {
  for (const { message, purpose } of requests) {
    if (!connection.send(message)) return false;
    chat.sent(message, purpose);
  }
  return true;
}

// ------------------------------------------------------------------------ joining and leaving

function recalled() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE) ?? "{}");
    return { nick: String(saved.nick ?? ""), room: String(saved.room ?? "") };
  } catch {
    return { nick: "", room: "" };
  }
}

/** @param {{ nick: string | null, room: string | null }} place */
function remember(place) {
  try {
    localStorage.setItem(STORE, JSON.stringify(place));
  } catch {
    // storage full or disabled (private browsing): the form just starts empty next time
  }
}

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
  leaveButton.hidden = membersToggle.hidden = false;
  notifyButton.show(true);
}

/** @param {string} nick @param {string} room */
function join(nick, room) {
  if (connection.isOpen) connection.stop(); // (one left after a refused join)
  showChat();
  render.clear();
  attention.clear();
  chat.begin(nick || null, room || null);
  connection.start();
  line.focus();
}

/** @param {{ nick?: string | null, room?: string | null }} values @param {Refusals} errors */
function showJoinForm(values, errors = {}) {
  chatView.hidden = true;
  joinView.hidden = false;
  leaveButton.hidden = membersToggle.hidden = true;
  notifyButton.show(false);
  $("where").hidden = true;
  document.title = "aiohttp-chat";
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
  fields[FIELDS.find((field) => field in errors) ?? "nick"].focus();
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = fields.nick.value.trim();
  const room = fields.room.value.trim();
  remember({ nick, room });
  if (connection.isOpen && !chat.entered && chat.canRetry(nick || null, room || null)) {
    // After a refusal: asked again on the connection that is there (in a room already).
    showChat();
    send(chat.retry(nick || null, room || null));
  } else {
    join(nick, room);
  }
});

function leave() {
  connection.stop();
  showJoinForm(recalled());
}

leaveButton.addEventListener("click", leave);

roomExisting.addEventListener("click", () => {
  fields.room.value = roomExisting.dataset.room ?? "";
  joinForm.requestSubmit();
});

// ------------------------------------------------------------------------ the input line

/** @type {string[]} what was sent, for Up and Down, as in the terminal client */
const typedLines = [];
let browsing = 0;

sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const action = parseLine(line.value);
  sendError.textContent = "";
  if (action === null) return;
  if (action.quit) return leave();
  if (action.send === undefined) {
    render.add({ kind: "help", text: action.show, mine: true });
  } else if (!send([{ message: action.send, purpose: Purpose.USER }])) {
    sendError.textContent = texts.NOT_CONNECTED; // the line stays, to send later
    return;
  }
  typedLines.push(line.value);
  browsing = typedLines.length;
  line.value = "";
  fit();
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
  if (attention.tab(event, line)) return fit(); // a nick completed; else Tab moves the focus
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

membersToggle.addEventListener("click", () => {
  const open = membersToggle.getAttribute("aria-expanded") !== "true";
  membersToggle.setAttribute("aria-expanded", String(open));
  chatView.classList.toggle("show-members", open);
});

// ------------------------------------------------------------------------ the page's life

window.addEventListener("hashchange", () => {
  const room = roomInUrl();
  if (!room) return;
  if (chatView.hidden) join(recalled().nick, room);
  else if (room !== chat.room) send([{ message: { action: "join_room", room }, purpose: Purpose.USER }]);
});
window.addEventListener("online", () => connection.retryNow());
$("retry").addEventListener("click", () => connection.retryNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") connection.retryNow();
});
// Leaving the page closes the chat politely; coming back to it (the back button) resumes.
window.addEventListener("pagehide", () => {
  if (!chatView.hidden) connection.stop();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && !chatView.hidden) {
    chat.disconnected();
    connection.start();
  }
});

// A room link (`/#Lounge`) goes straight in under the remembered nick; on a first visit,
// with no nick remembered, the form asks for one, the room filled in.
const saved = recalled();
const room = roomInUrl();
if (room && saved.nick) join(saved.nick, room);
else showJoinForm(room ? { nick: "", room } : saved);
