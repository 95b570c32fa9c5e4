"""Whether a chat message names someone: the rule of a *mention*, one for both clients.

The page has a JavaScript twin of `names` (keep the two the same; this docstring is the
rule they both follow). A message names NICK when one of its words does (characters are
code points; in JavaScript, iterate with `for...of` or `Array.from`, never by UTF-16 units):

1. Words: the message is split at every run of white space, the characters of Unicode's
   White_Space property (JavaScript: `/\\p{White_Space}+/u`): tab, line feed, vertical tab,
   form feed, carriage return, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
   U+2029, U+202F, U+205F, U+3000. Empty pieces are no words.
2. Forms: a word stands for itself and, unless it is all punctuation, for what is left of
   it after removing, at its start, none, the first, or all of the punctuation characters
   before its first other character, and at its end none, the last, or all of those after
   its last other character (every combination of the two: at most nine forms).
   Punctuation: the characters of the Unicode general categories P* (Pc Pd Ps Pe Pi Pf Po;
   JavaScript: `/\\p{P}/u`), so `@`, `,`, `:`, `.`, `!`, `?`, `'`, `(`, `)`, `[`, `]`, `_`,
   `-` are, and symbols such as `$`, `+`, `|`, `~` are not.
3. Alike: a word names NICK when one of its forms is alike to NICK: their confusable
   skeletons (`protocol.skeleton`, the rule the server refuses a look-alike nick by) are
   equal.

So `@alice,`, `ALICE:`, `(Alice)` and `\u0410lice` (with a Cyrillic A) name `Alice`;
`Alice's`, `Alicent`, `al-ice` and `Alice-Marie` do not (a word is a word, not a part of
one). Because a nick may hold punctuation itself, `bob_:` names `bob_` (the last `:`
removed), `[Bob],` names `[Bob]`, and `Bob!` names both `Bob` and `Bob!`.

Whether a message is a mention of the person reading it is `is_mention`: it names their
current nick, and they did not send it themselves (your own messages are never mentions).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from .protocol import skeleton

WHITE_SPACE: Final = re.compile(
    "[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
)


def is_mention(sender: object, message: object, nick: str | None) -> bool:
    """Whether `message` from `sender` is a mention of `nick`, the reader's current nick:
    it `names` them and `sender` is not `nick` (nobody mentions themselves)."""
    if not nick or not isinstance(message, str) or sender == nick:
        return False
    return names(message, nick)


def names(message: str, nick: str) -> bool:
    """Whether `message` names `nick`: one of its words, in one of its forms, is alike to
    `nick` (the rule is the module's docstring)."""
    wanted = skeleton(nick)
    return any(
        skeleton(form) == wanted
        for word in WHITE_SPACE.split(message)
        if word
        for form in forms(word)
    )


def forms(word: str) -> set[str]:
    """`word`, and (unless it is all punctuation) `word` with none, the first or all of the
    punctuation before its first other character removed, and none, the last or all of
    the punctuation after its last other character."""
    first = next((at for at, char in enumerate(word) if not _punctuation(char)), None)
    if first is None:
        return {word}
    last = next(at for at in range(len(word) - 1, -1, -1) if not _punctuation(word[at]))
    starts = {0, min(first, 1), first}
    ends = {len(word), len(word) - min(len(word) - 1 - last, 1), last + 1}
    return {word[start:end] for start in starts for end in ends}


def _punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] == "P"
