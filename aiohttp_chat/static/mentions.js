// @ts-check
// Whether a message names its reader: their nick as a word of it, with or without the
// punctuation around it, by the terminal client's rule (mentions.py), compared by the
// server's alike rule for nicks (protocol.skeleton, ported here), so that `alice`,
// `@Alice:` and `Аlice` with a Cyrillic A all name Alice. The rule's data (the
// confusable prototypes of Unicode Technical Standard #39, the default-ignorable code points
// and the case foldings JavaScript lacks) is the server's, loaded once (`useRules`); until
// then names are compared by their folded form. Pure: no DOM, no fetching.

/**
 * What protocol.skeleton_rules serves as /static/confusables.json: code points in decimal.
 * @typedef {object} SkeletonRules
 * @property {number} passes
 * @property {[number, number][]} ignorable  first and last of each range
 * @property {{ [point: string]: string }} folds  casefold, where it is not toLowerCase
 * @property {{ [point: string]: string }} prototypes
 */

/** @type {{ passes: number, ignorable: [number, number][], folds: Map<number, string>,
 *   prototypes: Map<number, string> } | null} */
let rules = null;
/** @type {Map<string, string>} name -> its key, for the names met most (nicks, words) */
const keys = new Map();
const KEYS_KEPT = 5000;
const KEY_KEPT_CHARS = 64; // a longer word's is not remembered: it would push the nicks out

/** Compare by `rules` from now on (the server's, as JSON); throws if they are not that.
 * @param {unknown} data */
export function useRules(data) {
  const given = /** @type {SkeletonRules} */ (data);
  const ranges = given?.ignorable;
  if (
    typeof given !== "object" || !Number.isInteger(given.passes) || !Array.isArray(ranges) ||
    !ranges.every((r) => Array.isArray(r) && r.length === 2 && r.every(Number.isInteger)) ||
    typeof given.folds !== "object" || typeof given.prototypes !== "object"
  ) {
    throw new TypeError("not the rules of the skeleton");
  }
  /** @param {{ [point: string]: string }} table */
  const points = (table) => new Map(Object.entries(table).map(([k, v]) => [Number(k), String(v)]));
  rules = { passes: given.passes, ignorable: ranges, folds: points(given.folds), prototypes: points(given.prototypes) };
  keys.clear();
}

/** Whether the server's rules are in use (else names are compared by their folded form). */
export function usingRules() {
  return rules !== null;
}

// ------------------------------------------------------------------------ folding case

const CHEROKEE_SMALL = [
  [0xab70, 0xabbf, 0x13a0],
  [0x13f8, 0x13fd, 0x13f0],
];
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/** `char` case-folded as Python's `casefold` does, without the server's table: upper then
 * lower case folds `ß` (`SS`, `ss`), a final sigma, `ſ`, the ligatures; Cherokee folds to
 * its capitals (which lowering would undo), a dotless `ı` stays and a capital sharp s is `ss`.
 * @param {string} char  one code point */
function approximateFold(char) {
  const point = char.codePointAt(0) ?? 0;
  for (const [first, last, capital] of CHEROKEE_SMALL) {
    if (point >= first && point <= last) return String.fromCodePoint(point - first + capital);
  }
  if (point >= 0x13a0 && point <= 0x13f5) return char; // a Cherokee capital
  if (char === "ı") return char;
  if (char === "ẞ") return "ss";
  return char.toUpperCase().toLowerCase();
}

/** `text` case-folded (Python's `str.casefold`), one code point at a time as it does: its
 * table where the server's rules give one, else lower case.
 * @param {string} text */
export function casefold(text) {
  let folded = "";
  for (const char of text) {
    folded += rules ? rules.folds.get(char.codePointAt(0) ?? 0) ?? char.toLowerCase() : approximateFold(char);
  }
  return folded;
}

/** `text` without its default-ignorable code points (by the server's ranges, once loaded).
 * @param {string} text */
function dropIgnorable(text) {
  if (rules === null) return text.replace(DEFAULT_IGNORABLE, "");
  const { ignorable } = rules;
  let kept = "";
  for (const char of text) {
    const point = char.codePointAt(0) ?? 0;
    if (!ignorable.some(([first, last]) => point >= first && point <= last)) kept += char;
  }
  return kept;
}

/** @param {string} text @param {Map<number, string>} table */
function translate(text, table) {
  let mapped = "";
  for (const char of text) mapped += table.get(char.codePointAt(0) ?? 0) ?? char;
  return mapped;
}

// ------------------------------------------------------------------------ alike names

/** `name` in NFKC, case-folded, without default-ignorables: `Alice`, `ALICE`, `Ａｌｉｃｅ`.
 * @param {string} name */
export function folded(name) {
  return dropIgnorable(casefold(dropIgnorable(name).normalize("NFKC")).normalize("NFKC"));
}

/** The confusable skeleton of `name` as protocol.skeleton makes it, step for step; the
 * folded form until the server's rules are in use.
 * @param {string} name */
export function skeleton(name) {
  if (rules === null) return folded(name);
  let mapped = name;
  for (let pass = 0; pass < rules.passes; pass += 1) {
    mapped = translate(folded(mapped).normalize("NFD"), rules.prototypes);
  }
  return casefold(mapped).normalize("NFD").replaceAll("i", "l");
}

/** What two names alike share: their skeleton, remembered for the names met most.
 * @param {string} name */
function key(name) {
  let found = keys.get(name);
  if (found === undefined) {
    found = skeleton(name);
    if (name.length > KEY_KEPT_CHARS) return found;
    if (keys.size >= KEYS_KEPT) keys.clear();
    keys.set(name, found);
  }
  return found;
}

// ------------------------------------------------------------------------ words
// The rule is the terminal client's (aiohttp_chat/mentions.py, whose docstring states it):
// one rule of a mention for both clients, tested against each other on the same corpus.

const WHITE_SPACE = /\p{White_Space}+/u; // what splits a message into words
const PUNCTUATION = /^\p{P}$/u; // the general categories P*: `@`, `:`, `(`, `_`, not `$` or `+`

/** The forms of `word` that may be a nick: as written and, unless it is all punctuation,
 * with none, the first or all of the punctuation before its first other character removed,
 * and none, the last or all of that after its last other character (at most nine forms;
 * a nick may end in `_` or be `[Bob]`). Code points, not UTF-16 units.
 * @param {string} word @returns {Set<string>} */
export function nickForms(word) {
  const chars = Array.from(word);
  const first = chars.findIndex((char) => !PUNCTUATION.test(char));
  if (first < 0) return new Set([word]);
  let last = chars.length - 1;
  while (PUNCTUATION.test(chars[last])) last -= 1;
  const starts = new Set([0, Math.min(first, 1), first]);
  const ends = new Set([chars.length, chars.length - Math.min(chars.length - 1 - last, 1), last + 1]);
  const forms = new Set();
  for (const start of starts) for (const end of ends) forms.add(chars.slice(start, end).join(""));
  return forms;
}

/** Whether `text` names `nick`: one of its words (split at white space), in one of its
 * forms (`nickForms`), is alike to the nick (mentions.py's `names`).
 * @param {string} text @param {string | null | undefined} nick */
export function mentions(text, nick) {
  if (!nick) return false;
  const wanted = key(nick);
  for (const word of text.split(WHITE_SPACE)) {
    if (!word) continue;
    for (const form of nickForms(word)) if (key(form) === wanted) return true;
  }
  return false;
}
