"""What the population engine keeps between calls: compiled programs, initial weights,
batch orders (a :class:`PopulationCaches` that the caller owns and passes in)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from lrlab.experiments.engines.population_program import ProgramCache

__all__ = ["OrderCache", "PopulationCaches", "WeightCache"]


class WeightCache:
    """Initial weights by ``(model key, seed)`` and one template model per key.

    The oldest weights go first once they hold more than ``limit`` bytes in total.
    """

    def __init__(self, limit: int = 256 << 20):
        self.limit = limit
        self._weights: dict[tuple[Any, int], tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._templates: dict[Any, Any] = {}
        self._total = 0

    def template(self, key: Any) -> Any:
        return self._templates.get(key)

    def get(self, key: Any, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        return self._weights.get((key, seed))

    def remember(self, key: Any, seed: int, weights, model) -> None:
        """Keep ``weights`` for ``(key, seed)`` (and ``model`` as the key's template)."""
        self._templates.setdefault(key, model)
        self._weights[(key, seed)] = weights
        self._total += _nbytes(weights)
        while self._total > self.limit and len(self._weights) > 1:
            self._total -= _nbytes(self._weights.pop(next(iter(self._weights))))


def _nbytes(weights) -> int:
    return sum(a.nbytes for part in weights for a in part)


class OrderCache:
    """``[epochs, n]`` batch orders by ``(batch_order, seed, epochs, n)``, up to ``limit`` bytes.

    >>> cache = OrderCache()
    >>> cache.get(lambda seed, epoch, n: np.arange(n)[::-1], 0, 2, 3).tolist()
    [[2, 1, 0], [2, 1, 0]]
    """

    def __init__(self, limit: int = 64 << 20):
        self.limit = limit
        self._orders: dict[tuple[Any, int, int, int], np.ndarray] = {}

    def get(
        self, batch_order: Callable[[int, int, int], np.ndarray], seed: int, epochs: int, n: int
    ) -> np.ndarray:
        key = (batch_order, seed, epochs, n)
        orders = self._orders
        if key not in orders:
            while orders and (len(orders) + 1) * epochs * n * 4 > self.limit:
                orders.pop(next(iter(orders)))
            orders[key] = np.stack([batch_order(seed, e, n) for e in range(epochs)]).astype(
                np.int32
            )
        return orders[key]


@dataclasses.dataclass
class PopulationCaches:
    """What is kept between calls: compiled programs, initial weights, batch orders."""

    programs: ProgramCache = dataclasses.field(default_factory=ProgramCache)
    weights: WeightCache = dataclasses.field(default_factory=WeightCache)
    orders: OrderCache = dataclasses.field(default_factory=OrderCache)
