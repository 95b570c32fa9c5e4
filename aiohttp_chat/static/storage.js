// @ts-check
// What the browser remembers between visits (localStorage): the nick and room last used, for
// the join form, and the rooms the page is in, so that a reload brings them all back. Storage
// may be full or disabled (private browsing): then nothing is remembered, and nothing fails.

const PLACE = "aiohttp-chat"; // {nick, room}: the last used
const ROOMS = "aiohttp-chat-rooms"; // {rooms: [{nick, room}], active}: the rooms open

/** @typedef {{ nick: string, room: string }} Remembered */

/** @param {string} key */
function read(key) {
  try {
    const value = JSON.parse(localStorage.getItem(key) ?? "null");
    return value !== null && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

/** @param {string} key @param {unknown} value */
function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // full or disabled: the form just starts empty next time
  }
}

/** @param {any} saved @returns {Remembered} */
function place(saved) {
  return { nick: String(saved?.nick ?? ""), room: String(saved?.room ?? "") };
}

/** The nick and room last used. @returns {Remembered} */
export function recallPlace() {
  return place(read(PLACE));
}

/** @param {{ nick: string | null, room: string | null }} where */
export function rememberPlace(where) {
  write(PLACE, { nick: where.nick ?? "", room: where.room ?? "" });
}

/** The rooms the page was in, in the side list's order, and the one shown.
 * @returns {{ rooms: Remembered[], active: string }} */
export function recallRooms() {
  const saved = read(ROOMS);
  const rooms = (Array.isArray(saved.rooms) ? saved.rooms : []).map(place).filter((/** @type {Remembered} */ r) => r.room);
  return { rooms, active: String(saved.active ?? "") };
}

/** @param {{ nick: string | null, room: string }[]} rooms @param {string | null} active */
export function rememberRooms(rooms, active) {
  write(ROOMS, { rooms: rooms.map((r) => ({ nick: r.nick ?? "", room: r.room })), active: active ?? "" });
}
