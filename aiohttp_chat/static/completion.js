// @ts-check
// Nick completion with Tab, as in IRC clients (and the terminal client's twin): the word
// before the caret completed to a member of the room, the most recently active first;
// Tab again offers the next; at the start of a line the nick is followed by `: `, elsewhere
// by a space. Pure: no DOM; the page hands in the input's text and caret.

import { folded } from "./mentions.js";

/** Who spoke lately in a room, the latest first. */
export class Activity {
  constructor() {
    /** @type {Set<string>} nicks, in the order they last spoke (the latest last) */
    this.spoken = new Set();
  }

  /** @param {string} nick */
  spoke(nick) {
    this.spoken.delete(nick);
    this.spoken.add(nick);
  }

  /** `members` but `me`, the most recently active first, then the others by name.
   * @param {Iterable<string>} members @param {string | null} me @returns {string[]} */
  ranked(members, me) {
    const present = new Set(members);
    present.delete(me ?? "");
    const active = [...this.spoken].reverse().filter((nick) => present.has(nick));
    const others = [...present].filter((nick) => !this.spoken.has(nick));
    return [...active, ...others.sort((a, b) => a.localeCompare(b))];
  }
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
    const start = before.search(/\S*$/u);
    const word = before.slice(start);
    const at = word.startsWith("@") ? "@" : "";
    const stem = word.slice(at.length);
    if (!stem) return null;
    const wanted = folded(stem);
    const matching = names.filter((name) => folded(name).startsWith(wanted));
    if (!matching.length) return null;
    return this.offer(before.slice(0, start) + at, line.value.slice(line.caret), matching, 0);
  }

  /** The line with `names[index]` in place of the word being completed.
   * @param {string} before  up to the name @param {string} after  from the caret on
   * @param {string[]} names @param {number} index @returns {Line} */
  offer(before, after, names, index) {
    const lineStart = before === "" || before.endsWith("\n");
    const suffix = lineStart ? ": " : " ";
    const name = names[index];
    // A space that is there already is not doubled; the caret goes past it all the same.
    const spaced = after.startsWith(" ");
    const added = spaced ? suffix.trimEnd() : suffix;
    const value = before + name + added + after;
    const shown = { value, caret: before.length + name.length + added.length + (spaced ? 1 : 0) };
    this.cycle = { before, after, names, index, shown };
    return shown;
  }

  /** The line changed otherwise: the next Tab completes afresh. */
  reset() {
    this.cycle = null;
  }
}
