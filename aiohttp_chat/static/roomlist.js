// @ts-check
// The other rooms, in the side list: every room with members that the page is not in, with
// its member count (protocol 1.2's `room_list`), most members first as the server sends
// them; a click joins one. Hidden against a server that has no list of rooms.

import { byId } from "./render.js";
import * as texts from "./texts.js";

/** @typedef {import("./chat.js").RoomCount} RoomCount */

// How often the list is asked for while the page is shown: rooms come and go slowly, and
// the list is asked for also whenever the side list is opened or /rooms typed.
export const REFRESH_SECONDS = 30;

/** Whether two room names are the same room as the page compares them: as the server keeps
 * names (their NFC form), exactly.
 * @param {string} a @param {string} b */
export function sameRoom(a, b) {
  return a.normalize("NFC") === b.normalize("NFC");
}

export class RoomDirectory {
  /** `join(room)`: the user picked a room of the list.
   * @param {Document} doc @param {(room: string) => void} join */
  constructor(doc, join) {
    this.section = byId(doc, "other-rooms");
    this.list = byId(doc, "room-list");
    this.none = byId(doc, "no-other-rooms");
    this.join = join;
    /** @type {RoomCount[] | null} the last list the server gave (null: none yet) */
    this.rooms = null;
    this.none.textContent = texts.NO_OTHER_ROOMS;
    this.section.hidden = true; // until a server says it has the list
  }

  /** The server's list, shown without the rooms `mine` says the page is in; null: the
   * server did not give it (a server without it: the list stays hidden; a passing refusal,
   * such as the rate limit's: the last list stays).
   * @param {RoomCount[] | null} rooms @param {(room: string) => boolean} mine */
  show(rooms, mine) {
    if (rooms === null) return;
    this.rooms = rooms;
    this.section.hidden = false;
    this.refilter(mine);
  }

  /** The rooms the page is in changed: the same list, without them.
   * @param {(room: string) => boolean} mine */
  refilter(mine) {
    const others = (this.rooms ?? []).filter(({ room }) => !mine(room));
    this.none.hidden = this.rooms === null || others.length > 0;
    this.list.replaceChildren(
      ...others.map(({ room, users }) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "join-room";
        button.dataset.room = room;
        button.setAttribute("aria-label", texts.joinRoom(room, users));
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = room;
        const count = document.createElement("span");
        count.className = "users";
        count.textContent = String(users);
        count.title = texts.memberCount(users);
        button.append(name, count);
        button.addEventListener("click", () => this.join(room));
        item.append(button);
        return item;
      }),
    );
  }
}
