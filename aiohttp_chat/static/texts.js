// @ts-check
// Every text the page itself shows, in one place (the server's own texts come over the wire).
// The wording follows the terminal client's (client_console.py), without its terminal markers.

export const HELP = `Commands:
  /nick NAME     change your nick in this room (3-20 characters)
  /join ROOM     open another room beside this one, with your nick (3-20 characters)
  /users [ROOM]  list who is in ROOM (default: your room)
  /history [N]   show the last N messages of your room again (default: 20)
  /more [N]      load the N messages before the oldest shown (default: 20; scrolling
                 to the top of the log loads them, too)
  /rooms         list the rooms with people in them, and how many
  /help          show this help
  /quit          leave this room (the other rooms you are in stay open)
Anything else is sent as a chat message; // sends one that starts with /.`;

/** @param {unknown} room @param {unknown} nick */
export const connected = (room, nick) => `Connected to ${room} as ${nick}. Type /help for commands.`;
/** @param {unknown} room @param {unknown} nick */
export const reconnected = (room, nick) => `Reconnected: in ${room} as ${nick}.`;
/** @param {unknown} nick */
export const youAreNow = (nick) => `You are now known as ${nick}`;
/** @param {unknown} room */
export const youAreIn = (room) => `You are now in ${room}`;
/** @param {unknown} user @param {unknown} room */
export const joined = (user, room) => `${user} joined ${room}`;
/** @param {unknown} user @param {unknown} room @param {boolean} shame */
export const left = (user, room, shame) => `${user} left ${room}${shame ? " (connection lost)" : ""}`;
/** @param {unknown} from @param {unknown} to */
export const nickChanged = (from, to) => `${from} is now known as ${to}`;
/** `/users`; `count`: how many the room has, when it is too big for one answer (protocol 1.2's
 * paged `user_list`: the first page is shown). @param {unknown} room @param {string[]} users
 * @param {number | null} count */
export const inRoom = (room, users, count = null) =>
  users.length
    ? `In ${room}: ${users.join(", ")}${count !== null && count > users.length ? ` … and ${number(count - users.length)} more (${number(count)} in all)` : ""}`
    : `Nobody is in ${room}`;
/** A count as people read it: 10,000. @param {number} count */
export const number = (count) => count.toLocaleString("en");
/** @param {unknown} what @param {unknown} text */
export const refused = (what, text) => `${what}: ${text}`;
/** @param {unknown} room */
export const joinExisting = (room) => `Join ${room}`;
/** @param {unknown} what @param {unknown} text */
export const reclaiming = (what, text) =>
  `${what}: ${text} It is taken back once the server has let go of the lost connection.`;
/** @param {unknown} message */
export const unexpected = (message) => `Unexpected message from the server: ${message}`;

/** @param {unknown} room */
export const recentIn = (room) => `Recent messages in ${room}`;
/** @param {unknown} room */
export const lastIn = (room) => `Last messages in ${room}`;
/** @param {unknown} room */
export const noneKept = (room) => `No messages kept in ${room}.`;
/** @param {unknown} room */
export const missedIn = (room) => `Missed in ${room} while away`;
export const maybeMissing = "Earlier messages may be missing.";
/** @param {unknown} room */
export const beginningOf = (room) => `Beginning of the history kept for ${room}`;
export const LOADING_OLDER = "Loading older messages…";
export const NO_OLDER = "No older messages can be loaded for this room.";

export const SENDING = "sending…";
export const UNCONFIRMED = "not confirmed: the connection was lost";
export const SEND_AGAIN = "Edit and send again";
export const NOT_CONNECTED = "Not connected: your line was kept; it can be sent once reconnected.";
/** @param {unknown} command @param {unknown} what */
export const usage = (command, what) => `Usage: ${command} ${what}`;
/** @param {unknown} command @param {number} max */
export const historyUsage = (command, max) => `Usage: ${command} [N], N from 1 to ${max}`;
/** @param {unknown} command */
export const unknownCommand = (command) => `Unknown command ${command}; /help lists the commands.`;

export const STATUS = {
  connecting: "Connecting…",
  open: "Connected",
  waiting: "Reconnecting…",
  closed: "Not connected",
  ended: (/** @type {unknown} */ why) => `Disconnected: ${why}`,
};
/** @param {number} seconds */
export const retryIn = (seconds) => (seconds ? ` next try in ${seconds} s` : " trying now");
/** @param {unknown} why */
export const lost = (why) => `Connection lost (${why}). Reconnecting…`;
/** @param {unknown} why */
export const ended = (why) => `Disconnected: ${why}. Reload the page to join again.`;
/** @param {number} seconds */
export const noAnswer = (seconds) => `no answer within ${seconds} s`;
/** @param {number} code @param {unknown} reason */
export const closedBy = (code, reason) => (reason ? `code ${code}: ${reason}` : `code ${code}`);
export const NO_CLOSE_FRAME = "closed without a close frame";
// How a close by the server is told (`why`, else closedBy) and whether it is `final`: coming
// back would only be refused again. By "code reason", else by code; any other: retried.
/** @type {Map<string, { why?: (code: number, reason: string) => string, final?: boolean }>} */
export const CLOSINGS = new Map([
  ["1006", { why: () => NO_CLOSE_FRAME }],
  // A policy close means "stop doing that" (Flooding): coming back would do it again.
  ["1008", { final: true }],
  // Too slow is the exception: the link was slow for a while, not the page at fault.
  ["1008 Too slow", {}],
]);
/** @param {number} count */
export const members = (count) => `Members (${number(count)})`;
/** Over the member list of a room too big for one answer: how many it has, how many are listed.
 * @param {number} count @param {number} shown */
export const membersShown = (count, shown) => `${number(count)} members, showing ${number(shown)}`;
/** @param {unknown} room @param {unknown} nick */
export const where = (room, nick) => `${room} · ${nick}`;
export const YOU = "(you)";

// Several rooms at once, the list of rooms (pane.js, panes.js, roomlist.js).
export const ROOMS = "Rooms"; // the button of the side list of rooms (on a phone)
/** The same, with how many rooms are open. @param {number} count */
export const roomsToggle = (count) => `${ROOMS} (${count})`;
/** The tab's title: the room shown, after the count of what is unseen (`!`: one names you).
 * @param {unknown} room @param {number} count @param {boolean} mention */
export const title = (room, count = 0, mention = false) =>
  `${count ? `(${count}${mention ? "!" : ""}) ` : ""}${room ? `${room} · ` : ""}aiohttp-chat`;
/** @param {unknown} room */
export const alreadyIn = (room) => `You are in ${room} already.`;
/** @param {unknown} room */
export const messagesIn = (room) => `Messages in ${room}`;
/** @param {unknown} room */
export const leaveRoom = (room) => `Leave ${room}`;
/** @param {number} users */
export const memberCount = (users) => `${users} ${users === 1 ? "member" : "members"}`;
/** @param {unknown} room @param {number} users */
export const joinRoom = (room, users) => `Join ${room} (${memberCount(users)})`;
/** /rooms in the log. @param {{ room: string, users: number }[]} rooms */
export const roomList = (rooms) =>
  rooms.length
    ? `Rooms: ${rooms.map(({ room, users }) => `${room} (${users})`).join(", ")}`
    : "No room has anyone in it.";
export const NO_OTHER_ROOMS = "No other room has anyone in it.";

// Mentions, unread messages, notifications (attention.js, unread.js, notify.js).
/** A room's unseen count, as its entry in a list of rooms shows it: `3`, `3!`, or nothing.
 * @param {number} count @param {number} mentions */
export const unreadBadge = (count, mentions) => (count ? `${count}${mentions ? "!" : ""}` : "");
/** The same, as a screen reader says it. @param {number} count @param {number} mentions */
export const unreadLabel = (count, mentions) =>
  count ? `${count} unread${mentions ? `, ${mentions} mentioning you` : ""}` : "";
/** The button that jumps to the first unseen message. @param {number} count @param {number} mentions */
export const newMessages = (count, mentions) =>
  `${count} new message${count === 1 ? "" : "s"}${mentions ? `, ${mentions} mentioning you` : ""}`;
export const NEW = "New"; // the divider before the first message that came while you were away
export const MENTIONS_YOU = "Mentions you: "; // said before such a message, not shown
export const NOTIFY = "Notify me of mentions";
export const NOTIFY_BLOCKED = "Notifications blocked";
export const NOTIFY_BLOCKED_HINT =
  "The browser was told not to show this site's notifications: allow them in its site settings.";
/** A desktop notification's title. @param {unknown} user @param {unknown} room */
export const mentionedBy = (user, room) => `${user} in ${room}`;
