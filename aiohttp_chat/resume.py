"""Resuming after a lost connection (protocol 1.2): the tokens of this process's members.

Every member holds one secret token for its nick in its room, told in `connecting` and in
the success replies to `set_nick` and `join_room`; a move or a rename replaces it. A client
that lost its connection comes back with `?resume=TOKEN` and takes its place at once:

- while the lost connection is still registered (the server has not noticed yet), the new
  one takes its place in the registry, silently, and the old one is closed with 4001;
- for `KEEP_SECONDS` after it ended, if nobody took the nick meanwhile, the new one enters
  under it (and the room hears one `joined`).

A token is honoured once. `Tokens` keeps them for a single process; with Redis, the cluster
keeps them in Redis instead, so that they work on every node (`cluster/__init__.py`).
Nothing here logs a token.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .rooms import Member

KEEP_SECONDS: Final = 300.0  # how long a token outlives its connection
MOST_ENDED: Final = 100_000  # tokens of ended connections kept at most (the oldest go first)


def new_token() -> str:
    """128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


class Tokens:
    """The resume tokens of this process: of its members, and of those that ended lately."""

    def __init__(self, keep: float = KEEP_SECONDS, most: int = MOST_ENDED) -> None:
        self.keep, self.most = keep, most
        self.live: dict[str, Member] = {}
        self.ended: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # room, nick, until

    def issue(self, member: Member) -> str:
        """A new token for `member` where it is now; its previous one stops working."""
        self.revoke(member)
        token = member.token = new_token()
        self.live[token] = member
        return token

    def revoke(self, member: Member) -> None:
        if member.token is not None and self.live.get(member.token) is member:
            del self.live[member.token]
        member.token = None

    def ended_now(self, member: Member, now: float) -> None:
        """`member` left: its token stays good for `keep` seconds, for its room and nick."""
        token = member.token
        if token is None or self.live.get(token) is not member:
            return
        del self.live[token]
        member.token = None
        self.ended[token] = (member.room, member.nick, now + self.keep)
        while len(self.ended) > self.most:
            self.ended.popitem(last=False)

    def take(self, token: str, now: float) -> Member | tuple[str, str] | None:
        """What `token` resumes, once: the member still registered, the room and nick of one
        that ended lately, or None (unknown, used or expired)."""
        while self.ended and next(iter(self.ended.values()))[2] <= now:
            self.ended.popitem(last=False)
        member = self.live.pop(token, None)
        if member is not None:
            member.token = None
            return member
        ended = self.ended.pop(token, None)
        return None if ended is None else ended[:2]
