// @ts-check
// The links in a message: its web addresses (http and https, nothing else), found in the
// text as written and checked by the browser's own URL parser. Pure: the text in, its parts
// out; render.js makes the <a> elements of them, with DOM calls, never from HTML.

/** @typedef {{ text: string, href?: string }} Part  text as written, and where it links to */

// A scheme not glued to a word before it, then up to a space, a control character, a format
// character (\p{Cf}: an invisible one such as U+202E RIGHT-TO-LEFT OVERRIDE, which would
// make the text shown differ from where the link goes), or a character that ends an
// address in running text (in `<` and `>`, or in double quotes).
const CANDIDATE = /(?<![\p{L}\p{N}])https?:\/\/[^\s<>"\p{Cc}\p{Cf}]+/giu;
// Left off the end of an address: what usually ends the sentence around it.
const TRAILING = new Set([...".,!?:;'\"`*‘’“”‚„«»‹›…。、，"]);
const CLOSING = new Map([
  [")", "("],
  ["]", "["],
  ["}", "{"],
]);
const OPENING = new Map([...CLOSING].map(([closing, opening]) => [opening, closing]));

/** `candidate` less what ends the sentence around it: trailing punctuation and quotes, and
 * a closing bracket that has no opening one in it (as in `(see example.com/a)`), while a
 * Wikipedia address's `wiki/Set_(mathematics)` keeps its own. Linear: the brackets are
 * counted once, and the walk back from the end keeps the count of what is left.
 * @param {string} candidate */
export function trimmed(candidate) {
  /** @type {Map<string, number>} closing bracket -> how many more closing than opening */
  const unopened = new Map();
  for (const char of candidate) {
    const closing = CLOSING.has(char) ? char : OPENING.get(char);
    if (closing !== undefined) {
      unopened.set(closing, (unopened.get(closing) ?? 0) + (closing === char ? 1 : -1));
    }
  }
  let end = candidate.length;
  while (end > 0) {
    const last = candidate[end - 1];
    if (CLOSING.has(last)) {
      const more = unopened.get(last) ?? 0;
      if (more <= 0) break; // opened in the address: its own
      unopened.set(last, more - 1);
    } else if (!TRAILING.has(last)) {
      break;
    }
    end -= 1;
  }
  return candidate.slice(0, end);
}

/** The address `written` links to, as the browser reads it; null if it is none: not http
 * or https, not parsed as a URL with a host, or with a user name or password in it (as in
 * `paypal.com@evil.example` after the scheme, which goes to evil.example: it stays text).
 * @param {string} written */
export function target(written) {
  let url;
  try {
    url = new URL(written);
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) return null;
  if (url.username || url.password) return null;
  return url.href;
}

/** `text` in parts, in order, whose texts join back into `text`: each link with its
 * `href`, and the text between them.
 * @param {string} text @returns {Part[]} */
export function linkParts(text) {
  /** @type {Part[]} */
  const parts = [];
  let done = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index ?? 0;
    const written = trimmed(match[0]);
    const href = target(written);
    if (href === null) continue; // stays text
    if (start > done) parts.push({ text: text.slice(done, start) });
    parts.push({ text: written, href });
    done = start + written.length;
  }
  if (done < text.length) parts.push({ text: text.slice(done) });
  return parts;
}
