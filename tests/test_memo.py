"""`memo.Memo`: one fetch per period, shared by whoever asks meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from aiohttp_chat.memo import Memo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_an_answer_is_kept_for_its_seconds_then_fetched_again() -> None:
    clock, fetched = Clock(), []

    async def fetch() -> int:
        fetched.append(clock.now)
        return len(fetched)

    memo = Memo(fetch, seconds=1.0, clock=clock)
    assert [await memo(), await memo()] == [1, 1]
    clock.now += 0.99
    assert await memo() == 1
    clock.now += 0.01
    assert await memo() == 2
    assert fetched == [100.0, 101.0]


async def test_those_who_ask_meanwhile_share_one_fetch_and_may_give_up() -> None:
    release, calls = asyncio.Event(), []

    async def fetch() -> str:
        calls.append(1)
        await release.wait()
        return "rooms"

    memo = Memo(fetch)
    askers = [asyncio.create_task(memo()) for _ in range(5)]
    await asyncio.sleep(0)
    askers[0].cancel()  # one gives up: the others still get the answer
    release.set()
    answers = await asyncio.gather(*askers[1:])
    assert answers == ["rooms"] * 4
    assert calls == [1]


async def test_a_failure_is_not_kept() -> None:
    outcomes = [RuntimeError("away"), "rooms"]

    async def fetch() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    memo = Memo(fetch)
    with pytest.raises(RuntimeError):
        await memo()
    assert await memo() == "rooms"


async def test_a_change_is_fetched_anew_but_not_more_often_than_the_floor() -> None:
    clock, fetched = Clock(), []

    async def fetch() -> int:
        fetched.append(clock.now)
        return len(fetched)

    memo = Memo(fetch, floor=0.05, clock=clock)
    assert await memo() == 1
    clock.now += 1000.0
    assert await memo() == 1  # nothing changed: kept however old
    memo.changed()
    assert await memo() == 2  # the floor had passed long ago
    memo.changed()
    started = asyncio.get_running_loop().time()
    assert await memo() == 3  # just fetched: this one waits out the floor, never stale
    assert asyncio.get_running_loop().time() - started >= 0.04
