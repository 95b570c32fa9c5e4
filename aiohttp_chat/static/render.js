// @ts-check
// What the chat looks like: the conversation, the member list, the status line.
// Every string from the server or a peer goes in as text (textContent), never as HTML.

import { linkParts } from "./links.js";
import * as texts from "./texts.js";

/** @typedef {import("./chat.js").Entry} Entry */
/** @typedef {import("./connection.js").State} State */

const MAX_ENTRIES = 2000; // older lines are dropped, so a tab left open stays small
const NEAR_BOTTOM = 48; // px: closer than this to the end, the log follows new lines

const todayFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const otherDayFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** `07:33` today, `Nov 23, 07:33` on another day, in local time.
 * @param {Date} date */
export function shortTime(date, now = new Date()) {
  const sameDay = date.toDateString() === now.toDateString();
  return (sameDay ? todayFormat : otherDayFormat).format(date);
}

/** A stable colour for a nick: a hue from its characters.
 * @param {string} nick */
function hue(nick) {
  let hash = 0;
  for (const char of nick) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  return hash % 360;
}

/** `text` as nodes: its web addresses as links that open in a new tab (links.js), all the
 * rest as text.
 * @param {string} text @returns {(string | HTMLAnchorElement)[]} */
function withLinks(text) {
  return linkParts(text).map((part) => {
    if (part.href === undefined) return part.text;
    const link = element("a", "", part.text);
    link.href = part.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    return link;
  });
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Render {
  /** `retry(text)`: the user wants to send a refused or unconfirmed message again;
   * `run(line)`: to do what an entry offers (a line, as if typed).
   * @param {Document} doc @param {(text: string) => void} retry
   * @param {(line: string) => void} run */
  constructor(doc, retry, run) {
    this.doc = doc;
    this.log = byId(doc, "log");
    this.memberList = byId(doc, "member-list");
    this.membersToggle = byId(doc, "members-toggle");
    this.statusLine = byId(doc, "status");
    this.where = byId(doc, "where");
    this.retry = retry;
    this.run = run;
    /** @type {WeakMap<Entry, HTMLLIElement>} entry -> its <li> */
    this.nodes = new WeakMap();
    this.countdown = element("span", "countdown");
    this.countdown.ariaHidden = "true";
    // Where the reader left off: before the first message that came while they were away.
    this.newDivider = element("li", "divider new", texts.NEW);
    // Over the end of the log (placed after it), scrolled up while messages came: to the
    // first of them.
    this.jumpButton = element("button", "jump");
    this.jumpButton.type = "button";
    this.jumpButton.hidden = true;
  }

  clear() {
    this.log.replaceChildren();
    this.memberList.replaceChildren();
  }

  /** @param {Entry} entry */
  add(entry) {
    const follow = entry.mine || this.atBottom();
    const node = this.entry(entry);
    this.nodes.set(entry, node);
    this.log.append(node);
    while (this.log.childElementCount > MAX_ENTRIES) this.log.firstElementChild?.remove();
    if (follow) this.log.scrollTop = this.log.scrollHeight;
  }

  /** @param {Entry} entry */
  update(entry) {
    const old = this.nodes.get(entry);
    if (!old) return;
    const node = this.entry(entry);
    this.nodes.set(entry, node);
    old.replaceWith(node);
  }

  /** The "New" divider, moved to just before `entry`.
   * @param {Entry} entry */
  markNew(entry) {
    this.nodes.get(entry)?.before(this.newDivider);
  }

  /** Whether `entry` has been in view: its end above the end of the log's visible part (or
   * it is no longer shown at all).
   * @param {Entry} entry */
  inView(entry) {
    const node = this.nodes.get(entry);
    if (!node?.isConnected) return true;
    return node.getBoundingClientRect().bottom <= this.log.getBoundingClientRect().bottom + 1;
  }

  /** Scroll the log so that `entry` (with the "New" divider before it, if it is there) is
   * at the top.
   * @param {Entry} entry */
  scrollTo(entry) {
    const node = this.nodes.get(entry);
    if (!node?.isConnected) return;
    const top = node.previousElementSibling === this.newDivider ? this.newDivider : node;
    this.log.scrollTop += top.getBoundingClientRect().top - this.log.getBoundingClientRect().top;
  }

  /** The button to the first unseen message, saying `text`; hidden when null.
   * @param {string | null} text */
  showJump(text) {
    if (!this.jumpButton.isConnected) this.log.after(this.jumpButton); // (a pane made later)
    this.jumpButton.hidden = text === null;
    this.jumpButton.textContent = text ?? "";
  }

  atBottom() {
    const log = this.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM;
  }

  /** @param {Entry} entry @returns {HTMLLIElement} */
  entry(entry) {
    if (entry.kind !== "message") return this.offering(element("li", entry.kind, entry.text), entry);
    const classes = ["message"];
    if (entry.mine) classes.push("mine");
    if (entry.history) classes.push("history");
    if (entry.state) classes.push(entry.state);
    if (entry.mention) classes.push("mention");
    const node = element("li", classes.join(" "));
    if (entry.mention) node.append(element("span", "visually-hidden", texts.MENTIONS_YOU));
    node.append(this.time(entry.time));
    const user = element("span", "user", entry.user ?? "");
    user.style.setProperty("--hue", String(hue(entry.user ?? "")));
    const text = element("span", "text");
    text.append(...withLinks(entry.text));
    node.append(user, element("span", "visually-hidden", ": "), text);
    const notes = { sending: texts.SENDING, unconfirmed: texts.UNCONFIRMED, failed: entry.error };
    const note = entry.state === undefined || entry.state === "sent" ? undefined : notes[entry.state];
    if (note) node.append(element("span", "note", note));
    if (entry.state === "failed" || entry.state === "unconfirmed") {
      const again = element("button", "again", texts.SEND_AGAIN);
      again.type = "button";
      again.addEventListener("click", () => this.retry(entry.text));
      node.append(again);
    }
    return node;
  }

  /** `node` with a button for what `entry` offers to do, if anything.
   * @param {HTMLLIElement} node @param {Entry} entry */
  offering(node, entry) {
    if (entry.offer) {
      const button = element("button", "again", entry.offer.label);
      button.type = "button";
      const { line } = entry.offer;
      button.addEventListener("click", () => this.run(line));
      node.append(button);
    }
    return node;
  }

  /** @param {unknown} iso */
  time(iso) {
    const node = element("time");
    const date = typeof iso === "string" ? new Date(iso) : null;
    if (typeof iso !== "string" || date === null || Number.isNaN(date.getTime())) {
      node.textContent = "··:··";
      return node;
    }
    node.dateTime = iso;
    node.textContent = shortTime(date);
    node.title = fullFormat.format(date);
    return node;
  }

  /** Offline, the member list is as last seen: said so, until the next one comes.
   * @param {boolean} stale */
  membersStale(stale) {
    byId(this.doc, "members").classList.toggle("stale", stale);
    byId(this.doc, "members-stale").hidden = !stale;
  }

  /** @param {string[]} names @param {string | null} me */
  members(names, me) {
    this.membersStale(false);
    this.memberList.replaceChildren(
      ...names.map((name) => {
        const item = element("li", name === me ? "me" : "", name);
        item.dataset.nick = name;
        if (name === me) item.append(element("span", "you", ` ${texts.YOU}`));
        return item;
      }),
    );
    this.membersToggle.textContent = texts.members(names.length);
  }

  /** @param {string | null} room @param {string | null} nick */
  place(room, nick) {
    this.where.textContent = texts.where(room, nick);
    this.where.hidden = false;
  }

  /** The connection's state; while waiting to retry, a countdown that screen readers skip
   * (the status is announced when it changes: once, not every second).
   * @param {State} state @param {number | string} [detail] */
  status(state, detail) {
    const said = texts.STATUS[state];
    const text = typeof said === "function" ? said(detail) : said;
    const shown = this.statusLine.firstChild;
    if (this.statusLine.dataset.state !== state || !(shown instanceof Text) || shown.data !== text) {
      this.statusLine.replaceChildren(text, this.countdown);
      this.statusLine.dataset.state = state;
    }
    this.countdown.textContent = state === "waiting" ? texts.retryIn(Number(detail)) : "";
    byId(this.doc, "retry").hidden = state !== "waiting";
  }
}

/** The page's element with `id`: the page has every one the code names.
 * @param {Document} doc @param {string} id @returns {HTMLElement} */
export function byId(doc, id) {
  const node = doc.getElementById(id);
  if (node === null) throw new Error(`#${id} is not in the page`);
  return node;
}
