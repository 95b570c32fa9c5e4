"""Every Redis key, channel and script of the cluster, in one place, one spelling each.

A room's keys and channel begin `chat:{r:SKELETON}` NUL `ROOM` NUL, tagged with the skeleton
of the room's name (`protocol.skeleton`): on a Redis Cluster the rooms whose names are alike
live on one shard, so that one script can see whether a name alike to the one entered is
taken. The tag's prefix keeps it non-empty whatever the skeleton holds (`}` included: the
tag then ends inside it, the same way for every alike name); NUL, which no name holds, keeps
the room's name apart. A node's keys share `{n:NODE}`.

- `...ROOM NUL nicks`: hash nick -> owning node id;
- `...ROOM NUL alike`: hash skeleton of a nick -> the nick that has it, so that no two alike
  nicks are held in one room; claimed in the same script as the nick;
- `...ROOM NUL holders`: hash nick -> the resume token of the connection holding it (see
  `resume.py`), set when the token is issued, removed with the nick;
- `chat:{r:SKELETON}:name`: the name of the room whose name has that skeleton: persistent
  while it has members, then kept as long as its history (a room is existing while it has
  members or kept history, and a name alike to an existing room's is refused);
- `chat:resume:TOKEN`: `node NUL room NUL nick` of the connection a token resumes, for a day
  while it is open and `resume.KEEP_SECONDS` after it ended; taken (`GETDEL`) once;
- `...ROOM NUL log` and `...ROOM NUL epoch`: the room's history (see `history.py`), a
  stream whose entries are numbered without gaps (`0-1`, `0-2`, ...), so that a node can tell
  from the ids alone that it missed one, and fetch it;
- `...ROOM NUL events`: the room's channel, which only the nodes serving the room hear;
- `chat:{n:NODE}:lease`, `chat:{n:NODE}:members` (`room NUL nick` entries): the node's lease
  and its members, a superset (added before a claim, removed after a release), so that any
  node can reap a dead node's members once its lease expired;
- `chat:{n:NODE}:events`: the node's own channel: `room NUL nick`, a nick it lost in an
  outage; `NUL room NUL nick`, a member another node resumed (to be closed, unheard);
- `chat:{n:NODE}:reaped`: set by the node that reaped it, so that it announces its members
  again when it is back;
- `chat:nodes`: every node id;
- `chat:rooms`: sorted set, room -> minus its members on all the nodes (see `census.py`).

No script touches keys of two tags: a move between rooms claims the new room, then releases
the old one, each on its own shard.
"""

from __future__ import annotations

import functools
from typing import Final

from .. import protocol

NODES: Final = "chat:nodes"
ROOMS: Final = "chat:rooms"
SEP: Final = "\x00"  # never in a room name or nick (control characters are refused)


@functools.lru_cache(maxsize=16_384)  # every chat message names its room's keys
def _room(room: str) -> str:
    return f"chat:{{r:{protocol.skeleton(room)}}}{SEP}{room}{SEP}"


def nicks(room: str) -> str:
    return _room(room) + "nicks"


def alike(room: str) -> str:
    return _room(room) + "alike"


def history(room: str) -> str:
    return _room(room) + "log"


def epoch(room: str) -> str:
    return _room(room) + "epoch"


def holders(room: str) -> str:
    return _room(room) + "holders"


def name(room: str) -> str:
    """The key naming the room that holds the skeleton of `room`'s name."""
    return f"chat:{{r:{protocol.skeleton(room)}}}:name"


def names(room: str) -> list[str]:
    """The keys the scripts that claim, rename and release nicks in `room` touch."""
    return [nicks(room), holders(room), alike(room), name(room), history(room)]


def resume(token: str) -> str:
    return f"chat:resume:{token}"


def held(node: str, room: str, nick: str) -> str:
    """What a token resumes: the node, room and nick of its connection."""
    return f"{node}{SEP}{room}{SEP}{nick}"


def split_held(value: str) -> tuple[str, str, str]:
    node, room, nick = value.split(SEP, 2)
    return node, room, nick


def resumed_note(room: str, nick: str) -> bytes:
    """The note to a node that its member `nick` in `room` was resumed on another node."""
    return (SEP + member(room, nick)).encode()


def room_channel(room: str) -> str:
    return _room(room) + "events"


_ROOM_CHANNEL: Final = (b"chat:{r:", SEP.encode() + b"events")


def room_of_channel(channel: bytes) -> str | None:
    """The room whose channel this is; None for a node's channel."""
    head, tail = _ROOM_CHANNEL
    if channel.startswith(head) and channel.endswith(tail):
        return channel[: -len(tail)].rpartition(SEP.encode())[2].decode()
    return None


def lease(node: str) -> str:
    return f"chat:{{n:{node}}}:lease"


def members(node: str) -> str:
    return f"chat:{{n:{node}}}:members"


def node_channel(node: str) -> str:
    return f"chat:{{n:{node}}}:events"


def reaped(node: str) -> str:
    return f"chat:{{n:{node}}}:reaped"


def member(room: str, nick: str) -> str:
    """An entry of a node's member index."""
    return f"{room}{SEP}{nick}"


def split_member(entry: str) -> tuple[str, str]:
    room, _, nick = entry.partition(SEP)
    return room, nick


_SEP: Final = SEP.encode()


def event(origin: bytes, body: bytes, id: bytes = b"") -> bytes:
    """A broadcast on a room's channel: the node it comes from (not told again), the id of a
    chat message (empty for the other events), then the broadcast itself."""
    return origin + _SEP + id + _SEP + body


def split_event(event: bytes) -> tuple[bytes, bytes, bytes]:
    """The origin, the chat message id (or b"") and the broadcast of an `event`."""
    origin, _, rest = event.partition(_SEP)
    id, _, body = rest.partition(_SEP)
    return origin, id, body


# ------------------------------------------------------------------------ scripts

# The scripts that claim, rename and release nicks all take `names(room)`: KEYS[1] nicks,
# KEYS[2] holders, KEYS[3] alike, KEYS[4] name, KEYS[5] log. They begin with these helpers.
# Those that claim or release one (CLAIM, RELEASE, TAKE, REGISTER) answer `{outcome, size}`,
# `size` being the room's members on all the nodes once it is done (the nicks hash's length),
# which decides whether the room hears that member come or go (`presence.quiet`).
_NAMES: Final = """
local function answer(outcome) return {outcome, redis.call('HLEN', KEYS[1])} end
-- Whether a nick other than `nick` and `own` with the skeleton `skeleton` is held here.
local function alike_held(skeleton, nick, own)
    local holder = redis.call('HGET', KEYS[3], skeleton)
    return holder and holder ~= nick and holder ~= own
        and redis.call('HEXISTS', KEYS[1], holder) == 1
end
local function hold(nick, skeleton, node, room)
    redis.call('HSET', KEYS[1], nick, node)
    redis.call('HSET', KEYS[3], skeleton, nick)
    local named = redis.call('GET', KEYS[4])
    if not named or named == room then redis.call('SET', KEYS[4], room) end
end
local function drop(nick, skeleton)
    redis.call('HDEL', KEYS[1], nick)
    redis.call('HDEL', KEYS[2], nick)
    if redis.call('HGET', KEYS[3], skeleton) == nick then redis.call('HDEL', KEYS[3], skeleton) end
end
"""
# ARGV nick, its skeleton, node, room. 0 when taken; 1 if the nick is held, 2 if one alike.
CLAIM: Final = (
    _NAMES
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return answer(1) end
if alike_held(ARGV[2], ARGV[1], false) then return answer(2) end
hold(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return answer(0)
"""
)
# ARGV new nick, old nick, node, the new one's skeleton, the old one's, room. As CLAIM; the
# old nick may be alike to the new (a change of case), if the node still holds it.
RENAME: Final = (
    _NAMES
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local owned = redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[3]
if alike_held(ARGV[4], ARGV[1], owned and ARGV[2]) then return 2 end
if owned then drop(ARGV[2], ARGV[5]) end
hold(ARGV[1], ARGV[4], ARGV[3], ARGV[6])
return 0
"""
)
# ARGV nick, node, skeleton, room. Removes the nick (and its holder's token) if the node
# still owns it; 1 if it did. Once the room has no members, its name is kept as long as its
# history (no member is left to add to it), or goes at once if it keeps none.
RELEASE: Final = (
    _NAMES
    + """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return answer(0) end
drop(ARGV[1], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('GET', KEYS[4]) == ARGV[4] then
    local life = redis.call('XLEN', KEYS[5]) > 0 and redis.call('PTTL', KEYS[5]) or 0
    if life > 0 then redis.call('PEXPIRE', KEYS[4], life) else redis.call('DEL', KEYS[4]) end
end
return answer(1)
"""
)
# Resuming. ARGV nick, the token, the resuming node, skeleton, room. Takes the nick for that
# node if it is free, or held by the connection the token belongs to, and the room's name is
# not that of another (alike) room. Returns '-' if another connection holds it (or one
# alike, or the name), '' if it was free, else the node that held it.
TAKE: Final = (
    _NAMES
    + """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return answer('-') end
if alike_held(ARGV[4], ARGV[1], false) then return answer('-') end
local named = redis.call('GET', KEYS[4])
if named and named ~= ARGV[5] then return answer('-') end
hold(ARGV[1], ARGV[4], ARGV[3], ARGV[5])
redis.call('HDEL', KEYS[2], ARGV[1])
return answer(owner or '')
"""
)
# Re-registration after an outage. ARGV nick, node, skeleton, room. Returns '' when
# registered, the displaced node's id when it took the nick from it, or '-' when another node
# keeps it (the node id that sorts first wins) or a nick alike to it (the one held first).
REGISTER: Final = (
    _NAMES
    + """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] and owner < ARGV[2] then return answer('-') end
if alike_held(ARGV[3], ARGV[1], false) then return answer('-') end
hold(ARGV[1], ARGV[3], ARGV[2], ARGV[4])
if owner and owner ~= ARGV[2] then return answer(owner) end
return answer('')
"""
)
# Entering a room. KEYS[1] name; ARGV room, how long (ms) the name is kept if nobody enters
# after all. Returns the room holding the name's skeleton: the room itself, or an existing
# room whose name is alike to it.
NAME: Final = """
local named = redis.call('GET', KEYS[1])
if named then return named end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""
# Add a message to its room's log and publish its broadcast, with the id it got.
# KEYS[1] log, KEYS[2] epoch; ARGV[1] max length, ARGV[2] ttl (ms), ARGV[3] a new epoch if
# none is kept, ARGV[4] channel, ARGV[5] the origin node, ARGV[6] the broadcast up to the id,
# ARGV[7] after the id, ARGV[8] user, ARGV[9] message, ARGV[10] time, ARGV[11] PUBLISH or
# SPUBLISH. Returns the id. The entry's number is the next after the log's last one (`0-*`,
# Redis 7); a log that is gone (expired, evicted, lost) starts again at 1 under a new epoch,
# so that no id is ever issued twice.
APPEND: Final = """
local epoch = redis.call('GET', KEYS[2])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
    epoch = ARGV[3]
    redis.call('SET', KEYS[2], epoch)
end
local n = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '0-*',
    'o', ARGV[5], 'u', ARGV[8], 'm', ARGV[9], 't', ARGV[10])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local id = epoch .. '-' .. n
redis.call(ARGV[11], ARGV[4], ARGV[5] .. '\\0' .. id .. '\\0' .. ARGV[6] .. id .. ARGV[7])
return id
"""
# KEYS[1] stream, KEYS[2] epoch; ARGV[1] how many, ARGV[2] the after id's epoch and ARGV[3]
# its entry id, ARGV[4] and ARGV[5] the same of the before id ('' for none). Returns the
# epoch, whether `after` is kept, whether `before` is, and the newest entries between them
# (newest first; none if `before` is of another epoch). A bound that is not kept is taken
# inclusively, which selects the same entries and is a valid range whatever its number.
READ: Final = """
local epoch = redis.call('GET', KEYS[2]) or ''
local function kept(entry) return #redis.call('XRANGE', KEYS[1], entry, entry) > 0 end
local lower, found = '-', 0
if ARGV[3] ~= '' and epoch == ARGV[2] and kept(ARGV[3]) then
    lower, found = '(' .. ARGV[3], 1
end
local upper, placed = '+', 1
if ARGV[5] ~= '' then
    if epoch ~= ARGV[4] then return {epoch, found, 0, {}} end
    if kept(ARGV[5]) then upper = '(' .. ARGV[5] else upper, placed = ARGV[5], 0 end
end
return {epoch, found, placed, redis.call('XREVRANGE', KEYS[1], upper, lower, 'COUNT', ARGV[1])}
"""
# Where a node starts to follow a room it begins to serve. KEYS[1] log, KEYS[2] epoch.
# Returns the epoch ('' for none) and the id of the log's last entry ('' for none).
TAIL: Final = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
return {redis.call('GET', KEYS[2]) or '', last and last[1] or ''}
"""
# What a node missed. KEYS[1] log, KEYS[2] epoch; ARGV[1] the epoch it last saw, ARGV[2] the
# number of the last entry it saw, ARGV[3] how many at most. Returns the epoch and the entries
# after that one (every entry, oldest first, if the epoch is not the one it saw).
RECOVER: Final = """
local epoch = redis.call('GET', KEYS[2]) or ''
local lower = '-'
if epoch == ARGV[1] then lower = '(0-' .. ARGV[2] end
return {epoch, redis.call('XRANGE', KEYS[1], lower, '+', 'COUNT', ARGV[3])}
"""
