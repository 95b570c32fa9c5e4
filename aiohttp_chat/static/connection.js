// @ts-check
// One WebSocket to the chat that comes back by itself.
//
// Like python-websockets' `connect()` used as an async iterator, and like the terminal client:
// a lost connection is retried with exponential backoff and jitter, a policy close (Flooding)
// is final, and the chat on top never knows it is being retried. It is told `open` for each
// new connection, `message` for each text received, `lost` once per outage, `ended` when no
// retry can help, and `state` whenever what the status line should say changes.

import * as texts from "./texts.js";

const BACKOFF_FIRST = 0.5; // seconds before reconnecting, at most, the first time
const BACKOFF_MAX = 30; // ... doubling up to this
const KEEPALIVE = 30; // seconds between keepalive requests while connected
const ANSWER_WITHIN = 10; // seconds the server has to answer one before the link counts as dead
const NORMAL_CLOSURE = 1000;

/** Seconds to wait before attempt number `failures`: doubling, capped, half of it random.
 * @param {number} failures */
export function backoff(failures) {
  const ceiling = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

/** Why the server closed a connection with `code` and `reason`, for the user, and whether
 * that is final (texts.CLOSINGS).
 * @param {number} code @param {string} reason @returns {{ why: string, final: boolean }} */
export function closing(code, reason) {
  const how = texts.CLOSINGS.get(`${code} ${reason}`) ?? texts.CLOSINGS.get(String(code)) ?? {};
  return { why: (how.why ?? texts.closedBy)(code, reason), final: how.final === true };
}

/** The chat's URL on the page's own host: wss: when the page came over https:.
 * @param {Location | URL} location */
export function chatUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/chat`;
}

/**
 * What a connection tells the chat on top of it.
 * @typedef {object} ConnectionEvents
 * @property {() => void} open  a new connection is open
 * @property {(text: string) => void} message  a text received
 * @property {() => void} keepalive  time to ask the server something
 * @property {(why: string) => void} lost  once per outage
 * @property {(why: string) => void} ended  no retry can help
 * @property {(name: State, detail?: number | string) => void} state  what the status line
 *   should say (detail: seconds to the next try, or why it ended)
 */
/** @typedef {"connecting" | "open" | "waiting" | "closed" | "ended"} State */

export class Connection {
  /** `url()`: the URL of the next connection (it may ask for more each time).
   * @param {() => string} url @param {ConnectionEvents} on */
  constructor(url, on) {
    this.url = url;
    this.on = on;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.stopped = true;
    this.failures = 0;
    /** @type {Set<ReturnType<typeof setTimeout>>} */
    this.timers = new Set();
    this.heard = 0; // when the server last sent anything (performance.now())
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    this.connect();
  }

  /** Leave: close politely (the room hears a polite `left`) and never come back. */
  stop() {
    this.stopped = true;
    this.clearTimers();
    this.detach(NORMAL_CLOSURE);
    this.on.state("closed");
  }

  /** Send `request`; false (nothing sent) while not connected.
   * @param {object} request */
  send(request) {
    if (this.ws === null || !this.isOpen) return false;
    this.ws.send(JSON.stringify(request));
    return true;
  }

  /** Try at once instead of waiting out the backoff (the network or the page came back). */
  retryNow() {
    if (!this.stopped && this.ws === null) {
      this.clearTimers();
      this.connect();
    }
  }

  connect() {
    if (this.failures) this.on.state("waiting", 0); // still reconnecting: trying now
    else this.on.state("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.heard = performance.now();
      this.on.state("open");
      this.every(KEEPALIVE, () => this.keepalive());
      this.on.open();
    };
    ws.onmessage = (event) => {
      this.heard = performance.now();
      if (typeof event.data === "string") this.on.message(event.data);
    };
    ws.onclose = (event) => {
      this.ws = null;
      this.clearTimers();
      if (this.stopped) return;
      const { why, final } = closing(event.code, event.reason);
      if (final) {
        this.stopped = true;
        this.on.state("ended", event.reason);
        this.on.ended(why);
        return;
      }
      this.retry(why, opened);
    };
  }

  /** Ask the server something; if it says nothing within ANSWER_WITHIN s, the link is dead
   * (a browser may take many minutes to notice a silently dropped connection by itself). */
  keepalive() {
    const asked = performance.now();
    this.on.keepalive();
    this.after(ANSWER_WITHIN, () => {
      if (this.heard < asked && this.ws !== null) {
        this.detach(NORMAL_CLOSURE);
        this.clearTimers();
        this.retry(texts.noAnswer(ANSWER_WITHIN), true);
      }
    });
  }

  /** @param {string} why @param {boolean} wasOpen */
  retry(why, wasOpen) {
    if (wasOpen) this.on.lost(why); // one line per outage, not one per attempt
    this.failures += 1;
    const due = performance.now() + backoff(this.failures) * 1000;
    const tick = () => {
      const left = due - performance.now();
      if (left <= 0) {
        this.clearTimers();
        this.connect();
      } else {
        this.on.state("waiting", Math.ceil(left / 1000));
      }
    };
    tick();
    this.every(0.25, tick);
  }

  /** @param {number} code */
  detach(code) {
    const ws = this.ws;
    this.ws = null;
    if (ws === null) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.close(code);
  }

  /** @param {number} seconds @param {() => void} action */
  every(seconds, action) {
    this.timers.add(setInterval(action, seconds * 1000));
  }

  /** @param {number} seconds @param {() => void} action */
  after(seconds, action) {
    this.timers.add(setTimeout(action, seconds * 1000));
  }

  clearTimers() {
    for (const timer of this.timers) clearTimeout(timer); // clears intervals too
    this.timers.clear();
  }
}
