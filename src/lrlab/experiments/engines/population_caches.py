"""What the population engine keeps between calls: compiled programs (by structure),
initial weights, batch orders (a :class:`PopulationCaches` that the caller owns and passes in)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from lrlab.experiments.engines.frozen_base import BaseFeatures
from lrlab.experiments.engines.population_optim import KerasOptimizer, OptimizerStructure
from lrlab.experiments.engines.population_program import PopulationProgram, ProgramShape

__all__ = ["OrderCache", "PopulationCaches", "ProgramCache", "WeightCache"]


class ProgramCache:
    """Programs by structure, so the same structure coming again is compiled once.

    The key is the model's architecture without layer names and seeds (each build numbers
    its layers anew), the optimizer's :class:`~.population_optim.OptimizerStructure` (its
    numbers are per-trial data, so a grid over momentum or betas shares one program), the
    loss and metrics (names included: they name the results) and the shapes; anything
    that cannot be serialized gets a fresh program. The ``limit`` most recent programs
    are kept; :attr:`built` counts the programs made.
    """

    def __init__(self, limit: int = 8):
        self.limit = limit
        self.built = 0
        self._programs: dict[str, PopulationProgram] = {}

    def get(
        self,
        model,
        optimizer: OptimizerStructure | KerasOptimizer,
        loss,
        metrics,
        shape: ProgramShape,
        devices=1,
        trials_at_once: int | None = None,
    ) -> PopulationProgram:
        if isinstance(optimizer, KerasOptimizer):
            optimizer = optimizer.structure
        try:
            parts = [
                _nameless(model.get_config()),
                loss.get_config(),
                [m.get_config() for m in metrics],
            ]
            key: str | None = json.dumps(
                [parts, repr(optimizer), repr(shape), devices, trials_at_once],
                sort_keys=True,
                default=repr,
            )
        except Exception:
            key = None  # not serializable: a program of its own, not kept
        if key in self._programs:
            return self._programs[key]
        self.built += 1
        program = PopulationProgram(model, optimizer, loss, metrics, shape, devices, trials_at_once)
        if key is not None:
            while len(self._programs) >= self.limit:
                self._programs.pop(next(iter(self._programs)))
            self._programs[key] = program
        return program


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
    """What is kept between calls: compiled programs, initial weights, batch orders, and a
    frozen base's features (:class:`~.frozen_base.BaseFeatures`, shared by a run's
    optimizer groups)."""

    programs: ProgramCache = dataclasses.field(default_factory=ProgramCache)
    weights: WeightCache = dataclasses.field(default_factory=WeightCache)
    orders: OrderCache = dataclasses.field(default_factory=OrderCache)
    features: BaseFeatures = dataclasses.field(default_factory=BaseFeatures)


def _nameless(value: Any) -> Any:
    """``value`` (a Keras config) without ``name`` and ``seed`` entries (the program gets
    the weights and seed states as inputs, so neither changes what it computes)."""
    if isinstance(value, dict):
        return {k: _nameless(v) for k, v in value.items() if k not in ("name", "seed")}
    if isinstance(value, list | tuple):
        return [_nameless(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
