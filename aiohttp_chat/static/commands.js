// @ts-check
// What a typed line means, as in the terminal client (client_console.py's parse_line): a
// request to send, text to show, leaving, loading older messages, or nothing. Pure
// functions, no DOM.

import * as texts from "./texts.js";

export const RECENT = 20; // messages shown on entering a room, and by a bare /history
export const HISTORY_LIMIT_MAX = 100;
const QUIT_WORDS = new Set(["/quit", "/exit", "command close"]);
const QUOTED_CHARS = 20; // of a refused chat message, to say which one it was

/** @typedef {import("./chat.js").Message} Message */
/** @typedef {{ send: Message, show?: undefined, quit?: undefined, more?: undefined }
 *   | { show: string, send?: undefined, quit?: undefined, more?: undefined }
 *   | { quit: true, send?: undefined, show?: undefined, more?: undefined }
 *   | { more: number, send?: undefined, show?: undefined, quit?: undefined }} Action */

/** What `line` means: {send: request} | {show: text} | {quit: true} | {more: N} (the N
 * messages before the oldest shown: the page knows which) | null for an empty line.
 * @param {string} line @returns {Action | null} */
export function parseLine(line) {
  const text = line.replace(/[\r\n]+$/, "");
  if (QUIT_WORDS.has(text.trim())) return { quit: true };
  if (!text.trim()) return null;
  if (text.startsWith("//")) return say(text.slice(1));
  if (!text.startsWith("/")) return say(text);
  const space = text.indexOf(" ");
  const command = space < 0 ? text : text.slice(0, space);
  const argument = space < 0 ? "" : text.slice(space + 1).trim();
  switch (command) {
    case "/help":
      return { show: texts.HELP };
    case "/history":
    case "/more": {
      const limit = argument ? (/^\d+$/.test(argument) ? Number(argument) : 0) : RECENT;
      if (limit < 1 || limit > HISTORY_LIMIT_MAX) return { show: texts.historyUsage(command, HISTORY_LIMIT_MAX) };
      return command === "/more" ? { more: limit } : { send: { action: "history", limit } };
    }
    case "/rooms":
      return { send: { action: "room_list" } };
    case "/users":
      return { send: { action: "user_list", ...(argument ? { room: argument } : {}) } };
    case "/nick":
      if (!argument) return { show: texts.usage(command, "NAME") };
      return { send: { action: "set_nick", nick: argument } };
    case "/join":
      if (!argument) return { show: texts.usage(command, "ROOM") };
      return { send: { action: "join_room", room: argument } };
    default:
      return { show: texts.unknownCommand(command) };
  }
}

/** @param {string} message @returns {Action} */
function say(message) {
  return { send: { action: "chat_message", message } };
}

/** What the user typed to make `request`, to name it in a refusal.
 * @param {Message} request */
export function typed(request) {
  switch (request.action) {
    case "set_nick":
      return `/nick ${request.nick}`;
    case "join_room":
      return `/join ${request.room}`;
    case "user_list":
      return "room" in request ? `/users ${request.room}` : "/users";
    case "history":
      if ("before" in request) return request.limit === RECENT ? "/more" : `/more ${request.limit}`;
      return request.limit === RECENT ? "/history" : `/history ${request.limit}`;
    case "room_list":
      return "/rooms";
    case "chat_message": {
      const chars = [...request.message];
      const quoted = chars.length > QUOTED_CHARS ? `${chars.slice(0, QUOTED_CHARS).join("")}…` : request.message;
      return `"${quoted}"`;
    }
    default:
      return String(request.action);
  }
}
