"""Which training problems each GRPO step draws: a shuffled pass over the set, epoch after epoch.

The order is a pure function of (seed, position), so a resumed run that restores `position`
from its checkpoint draws exactly the problems an uninterrupted run would have drawn; and so
are the sampling seeds handed out with them (`draw_with_seeds`), so it also samples the same
responses from them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

from mathrl.seeding import derive_seed

T = TypeVar("T")


class ProblemSampler(Generic[T]):
    def __init__(self, items: Sequence[T], seed: int = 0, position: int = 0):
        if not items:
            raise ValueError("the problem sampler needs at least one problem")
        self.items = list(items)
        self.seed = seed
        self.position = position  # problems drawn so far, over all epochs
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.items)))
            random.Random(derive_seed("problem-order", self.seed, epoch)).shuffle(order)
            self._orders = {epoch: order}  # one epoch at a time is all a draw needs
        return self._orders[epoch]

    def draw(self, count: int) -> list[T]:
        """The next `count` problems; a draw that crosses an epoch's end continues into the
        next epoch's (differently shuffled) order."""
        drawn = []
        for pos in range(self.position, self.position + count):
            epoch, index = divmod(pos, len(self.items))
            drawn.append(self.items[self._order(epoch)[index]])
        self.position += count
        return drawn

    def draw_with_seeds(self, count: int) -> tuple[list[T], list[int]]:
        """The next `count` problems and a sampling seed for each, derived from its position
        in the stream (32 bits: vLLM seeds sample k of a request with seed + k)."""
        first = self.position
        seeds = [derive_seed("rollout", self.seed, pos) % 2**32 for pos in range(first, first + count)]
        return self.draw(count), seeds

    @property
    def epoch(self) -> float:
        return self.position / len(self.items)
