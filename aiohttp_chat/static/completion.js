// @ts-check
// Nick completion with Tab, as in IRC clients: the word before the caret completed to a
// member of the room, the most recently active first; Tab again offers the next. The rule is
// the terminal client's, stated once in aiohttp_chat/client_completion.py's docstring (this
// is its twin, tested against it on one corpus). Pure: no DOM; the page hands in the
// input's text and caret.

import { casefold } from "./mentions.js";

const WHITE = /^\p{White_Space}$/u;
const UNTYPABLE = /[\p{C}\p{Z}]/u; // a control, a format character, white space of any kind

/** `a` and `b` compared code point by code point (as Python compares strings; JavaScript's
 * `<` compares UTF-16 units, which sorts U+FF5E after U+1F600).
 * @param {string} a @param {string} b */
export function byCodePoint(a, b) {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const x = left.next();
    const y = right.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const difference = (x.value.codePointAt(0) ?? 0) - (y.value.codePointAt(0) ?? 0);
    if (difference) return difference;
  }
}

/** Whether `nick` can be typed as it is: no character of the general categories C or Z.
 * @param {string} nick */
export function typable(nick) {
  return nick !== "" && !UNTYPABLE.test(nick);
}

/** Who spoke lately in a room, the latest first: its members only (who is no longer one is
 * forgotten, at the latest when someone speaks or Tab is pressed). */
export class Activity {
  /** @param {() => ReadonlySet<string>} members  the room's, now */
  constructor(members) {
    this.members = members;
    /** @type {Set<string>} nicks, in the order they last spoke (the latest last) */
    this.spoken = new Set();
  }

  /** @param {string} nick */
  spoke(nick) {
    this.spoken.delete(nick);
    this.spoken.add(nick);
    this.forget(this.members());
  }

  /** Those of `spoken` who are not `present` forgotten, once there are more of them.
   * @param {ReadonlySet<string>} present */
  forget(present) {
    if (this.spoken.size <= present.size) return;
    for (const nick of this.spoken) if (!present.has(nick)) this.spoken.delete(nick);
  }

  /** The members but `me`, the most recently active first, then the others by their
   * casefold and then as written, code point by code point.
   * @param {string | null} me @returns {string[]} */
  ranked(me) {
    const present = this.members();
    this.forget(present);
    const active = [...this.spoken].reverse().filter((nick) => present.has(nick));
    const others = [...present].filter((nick) => !this.spoken.has(nick));
    others.sort((a, b) => byCodePoint(casefold(a), casefold(b)) || byCodePoint(a, b));
    return [...active, ...others].filter((nick) => nick !== me);
  }
}

/** The `names` (in order) that `prefix` completes to: those whose casefold starts with its
 * casefold and that can be typed; none for no prefix.
 * @param {string} prefix @param {string[]} names */
export function matching(prefix, names) {
  if (!prefix) return [];
  const wanted = casefold(prefix);
  return names.filter((name) => typable(name) && casefold(name).startsWith(wanted));
}

/** @typedef {{ value: string, caret: number }} Line  an input's text and where its caret is */

export class Completion {
  constructor() {
    /** @type {{ before: string, after: string, names: string[], index: number, shown: Line }
     *   | null} the completion offered last, to go on with on the next Tab */
    this.cycle = null;
  }

  /** What Tab makes of `line`, completing among `names` (in order: `Activity.ranked`);
   * null when there is nothing to complete, and Tab should do what it always does.
   * Tab on the line as it left it offers the next name, round.
   * @param {Line} line @param {string[]} names @returns {Line | null} */
  tab(line, names) {
    const last = this.cycle;
    if (last && last.shown.value === line.value && last.shown.caret === line.caret) {
      return this.offer(last.before, last.after, last.names, (last.index + 1) % last.names.length);
    }
    this.cycle = null;
    const before = line.value.slice(0, line.caret);
    let start = before.length; // (white space is all in the BMP: one UTF-16 unit each)
    while (start > 0 && !WHITE.test(before[start - 1])) start -= 1;
    const word = before.slice(start);
    const at = word.startsWith("@") ? "@" : "";
    const matches = matching(word.slice(at.length), names);
    if (!matches.length) return null;
    return this.offer(before.slice(0, start) + at, line.value.slice(line.caret), matches, 0);
  }

  /** The line with `names[index]` in place of the word being completed.
   * @param {string} before  up to the name (the `@` kept) @param {string} after  from the
   * caret on @param {string[]} names @param {number} index @returns {Line} */
  offer(before, after, names, index) {
    const lineStart = before === "" || before.endsWith("\n"); // (not after an `@`)
    const suffix = lineStart ? ": " : " ";
    const name = names[index];
    // White space that follows already is not added to: the caret goes right after the name.
    const spaced = WHITE.test(after.slice(0, 1));
    const added = spaced ? suffix.trimEnd() : suffix;
    const value = before + name + added + after;
    const shown = { value, caret: before.length + name.length + added.length };
    this.cycle = { before, after, names, index, shown };
    return shown;
  }
}
