"""The shards of a Redis Cluster as the batch sees them: which primary holds each hash slot
(`Shards`), and what a redirection says (`redirection`).

A command goes to the primary of its first key's slot (`first_key`: for EVALSHA its first
KEYS entry, for SPUBLISH the channel). The map is the cluster's own answer to CLUSTER SLOTS,
asked over the publisher's connections, read when first needed and again when a primary
says a slot moved. The cluster says so in three ways, which the publisher acts on:

- `MOVED slot host:port`: the slot is that primary's now. The map takes it at once and is
  read again in the background, once for all who hear of a move meanwhile (`moved`); the
  command is sent again to the new owner.
- `ASK slot host:port`: the slot is migrating and its keys are there already; the command
  is sent there after ASKING, and the map stays as it is (the slot is not moved yet).
- `TRYAGAIN`: a command with several keys that the migration has split; sent again a
  moment later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, NamedTuple

from redis.crc import key_slot
from redis.exceptions import RedisError

from .pipes import FAILURES, Command
from .subscriber import Address

logger = logging.getLogger(__name__)

SLOTS: Final = 16384
Ask = Callable[[Address, Command], Awaitable[Any]]  # run one command on that server now


class Redirection(NamedTuple):
    kind: str  # "MOVED", "ASK" or "TRYAGAIN"
    slot: int  # -1 for TRYAGAIN
    address: Address | None  # where to: None for TRYAGAIN


def redirection(error: Exception) -> Redirection | None:
    """What an error reply redirects to, if it is a redirection."""
    kind, _, rest = str(error).partition(" ")
    if kind == "TRYAGAIN":
        return Redirection(kind, -1, None)
    if kind not in ("MOVED", "ASK"):
        return None
    slot, _, target = rest.partition(" ")
    host, _, port = target.rpartition(":")  # an IPv6 address holds colons too
    if not slot.isdigit() or not port.isdigit() or host in ("", "?"):
        return None  # not an address to go to: a failure like any other
    return Redirection(kind, int(slot), (host, int(port)))


def first_key(words: Command) -> Any:
    """The key (or shard channel) a command is routed by; None if it has none."""
    if words[0] in ("EVALSHA", "EVAL"):
        return words[3] if len(words) > 3 and int(words[2]) > 0 else None
    return words[1] if len(words) > 1 else None


@functools.lru_cache(maxsize=16_384)  # every chat message names its room's keys
def slot_of(key: str | bytes) -> int:
    return key_slot(key.encode() if isinstance(key, str) else key)


class Shards:
    """Which primary of the cluster holds each slot, as far as this node knows."""

    def __init__(self, seed: Address, ask: Ask) -> None:
        """`seed`: the node named in the URL, asked first; `ask` runs CLUSTER SLOTS."""
        self.seed = seed
        self._ask = ask
        self._owners: list[Address | None] = [None] * SLOTS
        self._refreshing: asyncio.Task[None] | None = None
        self._learned: dict[int, Address] = {}  # from MOVED during a reading: kept over it

    def owner(self, words: Command) -> Address | None:
        """The primary to send `words` to; None while the map does not say."""
        key = first_key(words)
        return self.seed if key is None else self._owners[slot_of(key)]

    async def locate(self, key: str) -> Address:
        """The primary that holds `key`'s slot, after the reading of the map under way (or a
        new one if the map does not say)."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        if (address := self._owners[slot_of(key)]) is None:
            await self.refresh()
            if (address := self._owners[slot_of(key)]) is None:
                raise OSError(f"no Redis Cluster primary holds slot {slot_of(key)}")
        return address

    def moved(self, slot: int, address: Address) -> None:
        """A primary said `slot` is `address`'s now: kept at once (and over the reading under
        way, which may have begun before), and the whole map read again."""
        if self._owners[slot] == address:
            return  # known already: someone heard of it first
        self._owners[slot] = address
        self.stale()
        self._learned[slot] = address

    def stale(self) -> None:
        """The map may be out of date: read it again in the background, unless under way."""
        if self._refreshing is None:
            self._learned = {}
            self._refreshing = task = asyncio.create_task(self._refresh())
            task.add_done_callback(self._refreshed)

    async def refresh(self) -> None:
        """Read the map again (or wait for the reading under way); fails if no node tells."""
        self.stale()
        assert self._refreshing is not None
        await asyncio.shield(self._refreshing)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.debug("Could not read the Redis Cluster's slots: %r", exc)

    async def _refresh(self) -> None:
        known = dict.fromkeys(address for address in self._owners if address is not None)
        failure: BaseException | None = None
        for address in [*known, self.seed] if self.seed not in known else list(known):
            try:
                reply = await self._ask(address, ("CLUSTER", "SLOTS"))
                if isinstance(reply, Exception):  # an error reply
                    raise RedisError(str(reply))
                owners = _owners(reply, address)
            except (*FAILURES, ValueError, TypeError, IndexError) as exc:
                failure = exc
                continue
            for slot, learned in self._learned.items():
                owners[slot] = learned
            self._owners = owners
            return
        raise OSError(f"no Redis Cluster node told its slots: {failure!r}")

    def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()


def _owners(reply: Any, asked: Address) -> list[Address | None]:
    """The primary of each slot, from CLUSTER SLOTS's reply (asked of `asked`)."""
    owners: list[Address | None] = [None] * SLOTS
    for start, end, primary, *_ in reply:
        host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
        address = (asked[0] if host in ("", "?") else host, int(primary[1]))
        owners[int(start) : int(end) + 1] = [address] * (int(end) - int(start) + 1)
    return owners
