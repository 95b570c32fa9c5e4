"""Nick completion: who is in the room, most recently active first, and what Tab makes of
the word being typed. Pure, no I/O: `client_view.ChatView` keeps the `Members` current,
`client_terminal.LineEditor` cycles through `matching` nicks on Tab.

The rule of a completion: the word before the cursor (back to the previous white space, or
the start of the line) is a prefix; an `@` it starts with stays and is not part of it. The
nicks of the room's members (not your own) whose casefold starts with the prefix's casefold
are the matches, those who spoke most recently first, then those who have not spoken
since the client knew them, in alphabetical order (casefold). Tab puts the first match in
place of the word, followed by `: ` at the start of the line (`Al` -> `Alice: `, the way
one addresses someone) and by a space elsewhere (and after an `@`), but not by a space
where white space follows already; Tab again puts the next one there instead, round and
round; any other key keeps what is there and ends it. With no match, Tab does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from .client_console import escape

ADDRESS: Final = ": "  # after a nick completed at the start of the line
AT: Final = "@"


class Members:
    """The members of the current room, and when each last spoke.

    `reset` with the room's `user_list`; `joined`, `left` and `renamed` as the room's
    broadcasts say; `spoke` for each chat message (a live one from someone not known yet
    adds them: only members are heard), `heard` for those of the history that came before.
    `ranked` is the order completion offers them in.
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


def word_start(text: str, cursor: int) -> int:
    """Where the word that ends at `cursor` starts: after the white space before it."""
    start = cursor
    while start and not text[start - 1].isspace():
        start -= 1
    return start


def matching(prefix: str, nicks: Sequence[str]) -> list[str]:
    """The `nicks` that start with `prefix`, compared casefolded, in the order given; a
    nick that could not be typed as it is (white space, control characters) is left out."""
    folded = prefix.casefold()
    return [
        nick
        for nick in nicks
        if nick.casefold().startswith(folded) and escape(nick) == nick and nick.split() == [nick]
    ]


def completion(nick: str, *, at_start: bool, at: bool, spaced: bool = False) -> str:
    """What replaces the word: the nick, `@` before it if the word had one, and `: ` after
    it at the start of the line (not after an `@`), else a space; no space if `spaced`
    (white space follows already)."""
    text = f"{AT}{nick} " if at else f"{nick}{ADDRESS}" if at_start else f"{nick} "
    return text.rstrip(" ") if spaced else text
