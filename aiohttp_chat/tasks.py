"""Tasks that run in the background, kept until they end, and ended together.

The event loop keeps only a weak reference to a task: one nobody holds may vanish before it
ends. Whatever spawns work it does not await keeps it in a `Tasks` and ends it when it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Tasks:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def cancel(self) -> None:
        for task in self._running:
            task.cancel()

    async def aclose(self, grace: float = 0.0) -> None:
        """Give the tasks `grace` seconds to end, then cancel what is left and wait for it."""
        if grace and self._running:
            await asyncio.wait(self._running, timeout=grace)
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
