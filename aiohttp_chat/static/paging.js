// @ts-check
// Paging back through a room's history (protocol 1.2's `history` with `before`): when to ask
// for the page before the oldest message shown, and when the beginning is reached. A pure
// rule, no DOM and no socket: chat.js asks it and tells it what came back.
//
// One request at a time; none while the oldest message shown is unknown; none once the
// server said nothing older is kept (`complete`), nor once it could not answer (a server
// without `before` refuses it, or answers with nothing new: paging stops quietly).

export const PAGE = 50; // messages asked for each time

/** @typedef {"more" | "asked" | "beginning" | "stopped"} PagingState */

export class Paging {
  constructor() {
    /** @type {PagingState} */
    this.state = "more";
  }

  /** The request for the `limit` messages before `oldest` (the id of the oldest message
   * shown), or null: one in flight already, nothing older, or the oldest unknown.
   * @param {string | null} room @param {unknown} oldest */
  request(room, oldest, limit = PAGE) {
    if (this.state !== "more" || typeof oldest !== "string" || !oldest) return null;
    return { action: "history", ...(room ? { room } : {}), before: oldest, limit };
  }

  /** The request went out: no other until it is answered (or the connection lost). */
  sent() {
    if (this.state === "more") this.state = "asked";
  }

  /** The recent messages shown on entering the room came; `complete`: nothing older is kept.
   * Whether that is the beginning (to say so).
   * @param {boolean} complete */
  entered(complete) {
    if (this.state !== "more" || !complete) return false;
    this.state = "beginning";
    return true;
  }

  /** A page came, with `fresh` messages not shown before. Whether it is the beginning.
   * @param {boolean} complete @param {number} fresh */
  answered(complete, fresh) {
    if (this.state !== "asked") return false;
    if (complete) {
      this.state = "beginning";
      return true;
    }
    // Nothing new and yet not the beginning: a server that does not know `before` answered
    // with its newest messages, and asking again would bring the same.
    this.state = fresh ? "more" : "stopped";
    return false;
  }

  /** The server refused the request (a server without `before`): stop, quietly. */
  refused() {
    if (this.state === "asked") this.state = "stopped";
  }

  /** The connection was lost with a request unanswered: it may be asked again. */
  lost() {
    if (this.state === "asked") this.state = "more";
  }
}
