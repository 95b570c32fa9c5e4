"""What pytest must find here: the fixtures' modules (`tests/support`, whose docstring says
what is where) and the event loops each test module runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

# Before any of them is imported: their asserts report as a test's do.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.servers",
    "tests.support.redis",
    "tests.support.redis_cluster",
    "tests.support.processes",
    "tests.support.proxy",
    "tests.support.sockets",
    "tests.support.pages",
]

BOTH_LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
# The modules that write to transports run in-process on both loops; the server processes the
# other tests start run on uvloop, the default.
ON_BOTH_LOOPS = ("test_frames.py", "test_server.py")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loops `--loop` offers: the modules that write to transports run on both."""
    if item.path.name in ON_BOTH_LOOPS:
        return BOTH_LOOPS
    return {"asyncio": asyncio.new_event_loop}
