"""Scripted random draws, for the default nicks a server picks (`create_app(rng=...)`)."""

from __future__ import annotations

import random


class Draws(random.Random):
    """An rng whose `randint` gives `draws` in turn; then the last one ever after, or, if
    not `repeat_last`, what a seeded `random.Random` draws."""

    def __init__(self, *draws: int, repeat_last: bool = True) -> None:
        super().__init__(0)
        self.draws, self.repeat_last = list(draws), repeat_last

    def randint(self, a: int, b: int) -> int:
        if len(self.draws) > 1 or (self.draws and not self.repeat_last):
            return self.draws.pop(0)
        return self.draws[0] if self.draws else super().randint(a, b)
