"""Nick completion: who is in the room, most recently active first, and what Tab makes of
the word being typed. Pure, no I/O: `client_view.ChatView` keeps the `Members` current,
`client_terminal.LineEditor` cycles through `matching` nicks on Tab.

The page has a JavaScript twin (static/completion.js; keep the two the same: this docstring
is the rule they both follow, and tests/test_page_attention.py runs both on one corpus).
Characters are code points; in JavaScript, iterate with `for...of`, never by UTF-16 units.

1. The word: what is before the cursor back to the previous white space (the characters
   of Unicode's White_Space property, as mentions.py lists them) or the start of the text.
   An `@` it starts with stays, and is not part of the prefix. With no prefix (nothing
   typed, or only `@`) there is nothing to complete: Tab does nothing (on the page, it
   moves the focus on, as it always does).
2. The candidates, in order: the room's members but yourself, those who spoke most recently
   first (only members are remembered: who leaves is forgotten), then those who have not
   spoken since the client knew them, by their casefold and then by the nick itself,
   compared code point by code point. A nick holding a character of the general categories
   C or Z (controls, format characters such as U+202E, white space of any kind) is never
   offered: it could not be typed as it is.
3. The matches: the candidates whose casefold (Python's `str.casefold`) starts with the
   prefix's casefold, in that order.
4. Tab puts the first match in place of the word (the `@` kept), followed by `: ` at the
   start of a line (at the start of the text or after a line feed, and without an `@`:
   `Al` -> `Alice: `, the way one addresses someone) and by a space elsewhere; where white
   space follows the cursor already, that space is left out (`Alice:`, `Alice`). The
   cursor goes right after what was put in. Tab again, with nothing else done, puts the
   next match there instead, round and round; anything else ends it. With no match, Tab
   does nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

from .mentions import WHITE_SPACE

ADDRESS: Final = ": "  # after a nick completed at the start of the line
AT: Final = "@"


class Members:
    """The members of the current room, and when each last spoke.

    `reset` with the room's `user_list`; `joined`, `left` and `renamed` as the room's
    broadcasts say; `spoke` for each chat message (a live one from someone not known yet
    adds them: only members are heard), `heard` for those of the history that came before.
    `ranked` is the order completion offers them in. A room too big for one answer
    (protocol 1.2) gives its first page of names, and a quiet one tells no arrivals or
    departures: completion offers those names, and whoever speaks.
    """

    def __init__(self) -> None:
        self._present: set[str] = set()
        self._spoke: dict[str, int] = {}  # nick -> when it last spoke (a count), members only
        self._clock = 0

    def reset(self, users: Iterable[object]) -> None:
        """The room's members are `users` (any other room's are forgotten); who of them
        spoke is kept."""
        self._present = {user for user in users if isinstance(user, str)}
        self._spoke = {nick: at for nick, at in self._spoke.items() if nick in self._present}

    def clear(self) -> None:
        self._present.clear()
        self._spoke.clear()

    def joined(self, nick: object) -> None:
        if isinstance(nick, str):
            self._present.add(nick)

    def left(self, nick: object) -> None:
        if isinstance(nick, str):
            self._present.discard(nick)
            self._spoke.pop(nick, None)

    def renamed(self, old: object, new: object) -> None:
        if isinstance(old, str) and isinstance(new, str) and old in self._present:
            self._present.discard(old)
            self._present.add(new)
            if (at := self._spoke.pop(old, None)) is not None:
                self._spoke[new] = at

    def spoke(self, nick: object, *, live: bool = True) -> None:
        """`nick` sent a message: live (then a member, known or not), or from the history
        (only counted if a member)."""
        if not isinstance(nick, str) or not (live or nick in self._present):
            return
        self._present.add(nick)
        self._clock += 1
        self._spoke[nick] = self._clock

    def heard(self, nicks: Sequence[object]) -> None:
        """`nicks` spoke before anything noted so far (a room's history, oldest first):
        the members among them not noted yet rank after those who were, the later first."""
        low = min(self._spoke.values(), default=0)
        for nick in reversed(nicks):
            if isinstance(nick, str) and nick in self._present and nick not in self._spoke:
                low -= 1
                self._spoke[nick] = low

    def __contains__(self, nick: object) -> bool:
        return nick in self._present

    def ranked(self, own: str | None = None) -> list[str]:
        """The members but `own`: who spoke most recently first, then the others by name."""
        spoke = sorted(self._spoke, key=self._spoke.__getitem__, reverse=True)
        quiet = sorted(self._present - self._spoke.keys(), key=lambda nick: (nick.casefold(), nick))
        return [nick for nick in (*spoke, *quiet) if nick != own]


def white(char: str) -> bool:
    """Whether `char` is white space (Unicode's White_Space property)."""
    return WHITE_SPACE.fullmatch(char) is not None


def word_start(text: str, cursor: int) -> int:
    """Where the word that ends at `cursor` starts: after the white space before it."""
    start = cursor
    while start and not white(text[start - 1]):
        start -= 1
    return start


def line_start(text: str, at: int) -> bool:
    """Whether `at` is at the start of a line of `text`: its start, or after a line feed."""
    return at == 0 or text[at - 1] == "\n"


def typable(nick: str) -> bool:
    """Whether `nick` can be typed as it is: no character of the general categories C or Z."""
    return bool(nick) and all(unicodedata.category(char)[0] not in "CZ" for char in nick)


def matching(prefix: str, nicks: Sequence[str]) -> list[str]:
    """The `nicks` that start with `prefix`, compared casefolded, in the order given; none
    for no prefix; a nick that could not be typed as it is (`typable`) is left out."""
    if not prefix:
        return []
    folded = prefix.casefold()
    return [nick for nick in nicks if nick.casefold().startswith(folded) and typable(nick)]


def completion(nick: str, *, at_start: bool, at: bool, spaced: bool = False) -> str:
    """What replaces the word: the nick, `@` before it if the word had one, and `: ` after
    it at the start of a line (not after an `@`), else a space; no space if `spaced`
    (white space follows already)."""
    text = f"{AT}{nick} " if at else f"{nick}{ADDRESS}" if at_start else f"{nick} "
    return text.rstrip(" ") if spaced else text
