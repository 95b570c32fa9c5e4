// @ts-check
// The links in a message: its web addresses (http and https, nothing else), found in the
// text as written and checked by the browser's own URL parser. Pure: the text in, its parts
// out; render.js makes the <a> elements of them, with DOM calls, never from HTML.

/** @typedef {{ text: string, href?: string }} Part  text as written, and where it links to */

// A scheme not glued to a word before it, then up to a space, a control character, or a
// character that ends an address in running text (in `<` and `>`, or in double quotes).
const CANDIDATE = /(?<![\p{L}\p{N}])https?:\/\/[^\s<>"\p{Cc}]+/giu;
// Left off the end of an address: what usually ends the sentence around it.
const TRAILING = new Set([...".,!?:;'\"`*‘’“”‚„«»‹›…。、，"]);
const CLOSING = new Map([
  [")", "("],
  ["]", "["],
  ["}", "{"],
]);

/** `candidate` less what ends the sentence around it: trailing punctuation and quotes, and
 * a closing bracket that has no opening one in it (as in `(see example.com/a)`), while a
 * Wikipedia address's `wiki/Set_(mathematics)` keeps its own.
 * @param {string} candidate */
export function trimmed(candidate) {
  let end = candidate.length;
  for (;;) {
    const last = candidate[end - 1];
    const opening = CLOSING.get(last);
    if (opening !== undefined) {
      const inside = candidate.slice(0, end);
      if (count(inside, last) <= count(inside, opening)) break;
    } else if (!TRAILING.has(last)) {
      break;
    }
    end -= 1;
  }
  return candidate.slice(0, end);
}

/** @param {string} text @param {string} char */
function count(text, char) {
  return text.split(char).length - 1;
}

/** The address `written` links to, as the browser reads it; null if it is none: not http
 * or https, or not parsed as a URL with a host.
 * @param {string} written */
export function target(written) {
  let url;
  try {
    url = new URL(written);
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) return null;
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
