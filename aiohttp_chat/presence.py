"""Who is in a room, told to many (protocol 1.2): quiet rooms and paged member lists.

- A *quiet* room is one too big to hear arrivals and departures: every `joined` and `left`
  costs one delivery per member, so filling a room of n costs n²/2 of them (50 million for
  10,000). `quiet` decides it, the one place that does: a room whose size at the event is at
  least the limit (`--announce-limit`, 0: never quiet) hears neither. The size counts the
  member arriving (already in) or leaving (not yet gone), so that an arrival and the
  departure that undoes it are decided alike. Chat messages, nick changes and replies are
  told as ever.
- `user_list` of a room whose names fit one page answers as it always did. A bigger room's
  answer is a page of its names in code point order with `count` (all of them) and `next`
  (the page's last name, absent on the last page), and `after` asks for the names after one.
  A page holds at most `PAGE_NAMES` names and its frame stays under `PAGE_BYTES` (clients
  take frames up to 64 KiB). The sorted names are kept per room (`Rosters`), made anew only
  after the room changed, at most every 0.1 s (`memo.py`): a client asking ten times a
  second for a room of 10,000 sorts nothing.

Pure rules, and the cache of sorted names around a fetch the rooms give (`rooms.py`,
`cluster/`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Awaitable, Callable, Collection
from typing import Final

from . import protocol
from .memo import Memo
from .protocol import Message

DEFAULT_ANNOUNCE_LIMIT: Final = 1000
PAGE_NAMES: Final = 1000  # names in one user_list answer, at most
PAGE_BYTES: Final = 60_000  # an answer's frame is shorter than this


def quiet(size: int, limit: int) -> bool:
    """Whether a room of `size` members, counting the one arriving or leaving, hears no
    `joined` or `left` for it under `limit` (0: every room hears them all)."""
    return 0 < limit <= size


# The most a name takes in an answer: NAME_MAX code points of 4 bytes, quotes and a comma
# (JSON escapes no character a name may hold into more bytes than 4 of UTF-8).
NAME_BYTES_AT_MOST: Final = protocol.NAME_MAX * 4 + 3
ANSWER_BYTES_BESIDE: Final = 200  # the rest of the answer: action, success, room


def fits(room: str, users: Collection[str]) -> bool:
    """Whether `users` fit one page: then `user_list` answers them as it always did (most
    rooms are known to without encoding the answer)."""
    if len(users) > PAGE_NAMES:
        return False
    if len(users) * NAME_BYTES_AT_MOST + ANSWER_BYTES_BESIDE < PAGE_BYTES:
        return True
    return len(protocol.encode(protocol.user_list_reply(room, list(users)))) < PAGE_BYTES


class Roster:
    """A room's names in code point order, each with the bytes it takes in an answer."""

    __slots__ = ("names", "sizes")

    def __init__(self, names: Collection[str]) -> None:
        self.names = sorted(names)
        self.sizes = [len(protocol.encode(name)) for name in self.names]  # quoted, escaped


def page(room: str, roster: Roster, after: str | None) -> Message:
    """The `user_list` answer of the names after `after` (None: from the first), as many as
    a page holds, with `count` and, if more follow, `next`."""
    names, sizes = roster.names, roster.sizes
    start = 0 if after is None else bisect.bisect_right(names, after)
    # What the answer takes beside the names: its fields, and `next` but for its name.
    used = len(protocol.encode(protocol.user_list_reply(room, [], len(names), ""))) - 2
    end = start
    while end < len(names) and end - start < PAGE_NAMES:
        # The name, a comma before it, and the name again as `next`.
        cost = sizes[end] + (end > start) + sizes[end]
        if used + cost >= PAGE_BYTES:
            break
        used += cost - sizes[end]  # `next` is counted for the last name only
        end += 1
    more = names[end - 1] if end < len(names) and end > start else None
    return protocol.user_list_reply(room, names[start:end], len(names), more)


class Rosters:
    """The `user_list` answers of every room, and the sorted names of those too big for one
    page, each kept (a `Memo`) while the room stays so: `fetch(room)` gives a room's names,
    `changed(room)` says this process changed them, and an answer is at most `seconds` old
    when others may have (another node's changes)."""

    def __init__(
        self, fetch: Callable[[str], Awaitable[list[str]]], seconds: float = math.inf
    ) -> None:
        self._fetch, self.seconds = fetch, seconds
        self._kept: dict[str, Memo[Roster]] = {}

    def changed(self, room: str) -> None:
        if (memo := self._kept.get(room)) is not None:
            memo.changed()

    def forget(self, room: str) -> None:
        """`room` is gone (nobody is in it): its names are not kept."""
        self._kept.pop(room, None)

    async def answer(self, room: str, after: str | None) -> Message:
        """The `user_list` answer for `room`: as ever if its names fit one page, else the
        page after `after`."""
        memo = self._kept.get(room)
        if memo is None:
            users = await self._fetch(room)
            if after is None and fits(room, users):
                return protocol.user_list_reply(room, users)
            if fits(room, users):  # a small room, paged: sorted now, not kept
                return page(room, Roster(users), after)
            memo = self._kept[room] = self._memo(room, Roster(users))
        roster = await memo()
        if fits(room, roster.names) and self._kept.get(room) is memo:  # it shrank
            del self._kept[room]
        return page(room, roster, after)

    def _memo(self, room: str, first: Roster) -> Memo[Roster]:
        fetched = [first]  # the first answer is the one just made

        async def fetch() -> Roster:
            return fetched.pop() if fetched else Roster(await self._fetch(room))

        return Memo(fetch, self.seconds)
