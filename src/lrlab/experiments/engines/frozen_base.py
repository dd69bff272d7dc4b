"""A frozen, deterministic base computed once: train only the head on its features.

Transfer learning freezes a pretrained base (``base.trainable = False``) and trains a new
head on it. Every trial of an lr sweep then pushes every batch of every epoch through the
same fixed function. When the base is *deterministic in training* its output for a row
never changes, so both engines compute it once per data split and train the head on those
features: the same trainable weights, the same updates, the same rows (to float32
rounding, since a convolution over 1000 rows may round differently from one over 32).

:func:`split_model` finds the split. A model qualifies when

- it is a chain: a ``keras.Sequential``, or a functional model with one input and one
  output where each layer takes the previous layer's output (a nested model, e.g. a
  pretrained base called as a layer, is one link of the chain whatever it holds);
- its leading links have no trainable weights and at least one of them has weights
  (a frozen layer or model); the base is the longest such prefix;
- every layer of the base (nested models' layers included) is one of Keras' own layers
  that gives the same output in training as in inference: no random layer (dropout,
  noise, augmentation, layers with dropout: anything with a seed generator), no
  ``BatchNormalization`` unless frozen (Keras 3 runs a frozen batch norm in inference
  mode), no ``SpectralNormalization`` or quantized layer (they update in training), no
  activity regularizer, no mask (``Masking``, ``Embedding(mask_zero=True)``), no custom
  layer class (lrlab cannot tell what it does).

Anything else keeps the whole model (:func:`why_not_split` says why): the shortcut can
only make a run faster, never change a number.

:class:`BaseFeatures` (owned by an engine) keeps the features by (split, base weights):
trials share them only when their bases hold the same weights (a pretrained base loaded
from a file does; a frozen random base drawn per seed does not).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BaseFeatures",
    "FeatureSplit",
    "FrozenSplit",
    "shortcut_population",
    "split_model",
    "trained_part",
    "why_not_split",
]

#: rows per forward pass of the base when its features are computed
FEATURE_BATCH = 512


@dataclasses.dataclass(frozen=True)
class FrozenSplit:
    """A model cut in two: ``head(base(x)) == model(x)``; the head shares the model's layers
    (so its trainable variables are the model's, in the same order)."""

    base: Any
    head: Any
    digest: str  # sha256 of the base's layers and weights: equal digests, equal features

    def features(self, x: np.ndarray) -> np.ndarray:
        """The base's outputs for rows ``x`` (inference mode, :data:`FEATURE_BATCH` at a time)."""
        import keras

        parts = [
            keras.ops.convert_to_numpy(self.base(x[i : i + FEATURE_BATCH], training=False))
            for i in range(0, len(x), FEATURE_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, *self.head.input_shape[1:]))


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureSplit:
    """A data split with the base's features as inputs (the targets unchanged)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @classmethod
    def of(cls, frozen: FrozenSplit, split: Any) -> FeatureSplit:
        return cls(
            frozen.features(np.asarray(split.x_train)),
            split.y_train,
            frozen.features(np.asarray(split.x_val)),
            split.y_val,
        )


def split_model(model: Any) -> FrozenSplit | None:
    """The model as a frozen base and a head, or ``None`` when it does not qualify (see the
    module docstring; :func:`why_not_split` gives the reason)."""
    found = _split(model)
    return found if isinstance(found, FrozenSplit) else None


def why_not_split(model: Any) -> str | None:
    """Why ``model`` keeps its whole forward pass (``None``: its base is computed once)."""
    found = _split(model)
    return None if isinstance(found, FrozenSplit) else found


def trained_part(model: Any) -> Any:
    """The part of ``model`` that runs every batch: its head when it has a frozen base,
    else the model."""
    frozen = split_model(model)
    return model if frozen is None else frozen.head


class BaseFeatures:
    """Features of frozen bases by (split, base weights), kept for an engine's trials.

    ``limit`` splits' features are kept (the oldest go first). A split is known by its
    arrays' identity (the plan keeps a split object per seed), and the entry holds the
    split so an identity is never reused while it is cached.
    """

    def __init__(self, limit: int = 16):
        self.limit = limit
        self._features: dict[tuple[int, int, str], tuple[Any, FeatureSplit]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (an engine sent to a Ray worker) without the features: the copy computes
        its own (the keys are identities of this process's arrays)."""
        return {"limit": self.limit, "_features": {}}

    def get(self, frozen: FrozenSplit, split: Any) -> FeatureSplit:
        key = (id(split.x_train), id(split.x_val), frozen.digest)
        if key not in self._features:
            while len(self._features) >= self.limit:
                self._features.pop(next(iter(self._features)))
            self._features[key] = (split, FeatureSplit.of(frozen, split))
        return self._features[key][1]

    def shortcut(self, model: Any, split: Any) -> tuple[Any, Any]:
        """``(head, feature split)`` when ``model`` has a frozen base, else ``(model, split)``.

        The Keras engine's hook: the head trains on the features exactly as the model
        would on the rows.
        """
        frozen = split_model(model)
        if frozen is None:
            return model, split
        return frozen.head, self.get(frozen, split)


def shortcut_population(
    inputs: dict[str, Any], template: Any = None, features: BaseFeatures | None = None
) -> dict[str, Any]:
    """The population engine's hook: :class:`~.population_chunks.Population`'s arguments
    with the head as the model and the features as the splits, when the model has a
    frozen base (else ``inputs`` with the one model built to find out handed back as its
    seed's build).

    ``template``: a model ``inputs["build_model"]`` built before (e.g. the engine's cached
    one); when it has no frozen base nothing is built (whether a base is frozen is the
    architecture's, the same for every seed). Else each distinct init seed's model is built
    once here and handed to the population as its head; trials whose bases hold different
    weights get separate feature splits.

    ``features``: the store of features to use (e.g. the engine's, so the optimizer groups
    of one run compute a split's features once; it keeps at least this call's); ``None``:
    a store of this call's own.
    """
    build: Callable[[int], Any] = inputs["build_model"]
    seeds: Sequence[int] = inputs["init_seeds"]
    if template is not None and split_model(template) is None:
        return inputs
    cuts: dict[int, FrozenSplit] = {}
    for seed in sorted({int(s) for s in seeds}):
        model = build(seed)
        frozen = split_model(model)
        if frozen is None:
            return {**inputs, "build_model": _built_once(build, seed, model)}
        cuts[seed] = frozen
    needed = len(inputs["splits"]) * len(cuts) + 1
    if features is None:
        features = BaseFeatures(limit=needed)
    features.limit = max(features.limit, needed)
    splits: list[FeatureSplit] = []
    where: dict[int, int] = {}  # id of a feature split -> its index in ``splits``
    split_index = []
    for seed, split in zip(seeds, inputs["split_index"], strict=True):
        feature_split = features.get(cuts[int(seed)], inputs["splits"][split])
        if id(feature_split) not in where:
            where[id(feature_split)] = len(splits)
            splits.append(feature_split)
        split_index.append(where[id(feature_split)])
    digests = tuple(sorted({c.digest for c in cuts.values()}))
    key = inputs.get("cache_key")
    return {
        **inputs,
        "build_model": lambda seed: cuts[int(seed)].head,
        "splits": splits,
        "split_index": split_index,
        "cache_key": None if key is None else ("frozen base", key, digests),
    }


def _built_once(build: Callable[[int], Any], seed: int, model: Any) -> Callable[[int], Any]:
    """``build`` that hands ``model`` (already built for ``seed``) back the first time
    ``seed`` is asked for."""
    kept = {seed: model}

    def build_model(asked: int) -> Any:
        found = kept.pop(int(asked), None)
        return found if found is not None else build(asked)

    return build_model


# --------------------------------------------------------------------------- the split
def _split(model: Any) -> FrozenSplit | str:
    try:
        chain = _chain(model)
    except Exception as err:  # a graph lrlab cannot read: keep the whole model
        return f"its graph cannot be read ({type(err).__name__})"
    if isinstance(chain, str):
        return chain
    cut = 0
    for layer, _ in chain:
        if layer.trainable_weights or _nondeterministic(layer):
            break
        cut += 1
    base_links = chain[:cut]
    if not any(layer.weights for layer, _ in base_links):
        stop = chain[cut][0] if cut < len(chain) else None
        reason = _nondeterministic(stop) if stop is not None else None
        return reason or "it has no frozen layer with weights before its first trainable one"
    if cut == len(chain):
        return "it has no trainable layer"
    import keras

    x = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
    base = keras.Model(x, _call_chain(x, base_links), name="frozen_base")
    feature = base.outputs[0]
    y = keras.Input(shape=tuple(feature.shape[1:]), dtype=feature.dtype)
    head = keras.Model(y, _call_chain(y, chain[cut:]), name="head")
    return FrozenSplit(base, head, _digest(base))


def _call_chain(x: Any, links: Sequence[tuple[Any, dict[str, Any]]]) -> Any:
    for layer, kwargs in links:
        x = layer(x, **kwargs)
    return x


def _chain(model: Any) -> list[tuple[Any, dict[str, Any]]] | str:
    """The model's layers in order with the keyword arguments each is called with, or why
    it is not a chain."""
    import keras

    if isinstance(model, keras.Sequential):
        if not model.inputs:
            return "it is a Sequential model without an Input"
        return [(layer, {}) for layer in model.layers]
    if len(getattr(model, "inputs", None) or ()) != 1 or len(model.outputs or ()) != 1:
        return "it is not a model with one input and one output"
    own = model._nodes  # the node keys of this model's graph
    chain: list[tuple[Any, dict[str, Any]]] = []
    previous = model.inputs[0]
    for op in model.operations:
        if isinstance(op, keras.layers.InputLayer):
            continue
        nodes = [node for i, node in enumerate(op._inbound_nodes) if f"{id(op)}_ib-{i}" in own]
        if len(nodes) != 1:
            return f"layer {op.name} is called more than once"
        node = nodes[0]
        args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
        if len(args) != 1 or args[0] is not previous or set(kwargs) - {"training"}:
            return f"layer {op.name} does not take the previous layer's output alone"
        if len(node.outputs) != 1:
            return f"layer {op.name} has more than one output"
        chain.append((op, kwargs))
        previous = node.outputs[0]
    if previous is not model.outputs[0]:
        return "its output is not the last layer's"
    return chain


def _nondeterministic(layer: Any) -> str | None:
    """Why ``layer`` (or a layer inside it) may give another output in training than in
    inference, or anything but its output (None: it cannot)."""
    import keras

    for inner in layer._flatten_layers(include_self=True, recursive=True):
        kind = type(inner).__name__
        if isinstance(inner, keras.Model | keras.layers.InputLayer):
            continue
        if not type(inner).__module__.startswith("keras."):
            return f"layer {inner.name} is a custom layer ({kind})"
        if inner._seed_generators:
            return f"layer {inner.name} ({kind}) is random in training"
        if isinstance(inner, keras.layers.BatchNormalization) and inner.trainable:
            return f"layer {inner.name} ({kind}) uses batch statistics in training"
        if isinstance(inner, keras.layers.SpectralNormalization):
            return f"layer {inner.name} ({kind}) updates its weights in training"
        if getattr(inner, "quantization_mode", None):
            return f"layer {inner.name} ({kind}) is quantized"
        if inner.activity_regularizer is not None:
            return f"layer {inner.name} ({kind}) has an activity regularizer"
        if isinstance(inner, keras.layers.Masking) or getattr(inner, "mask_zero", False):
            return f"layer {inner.name} ({kind}) makes a mask"
    return None


def _digest(base: Any) -> str:
    """sha256 of the base's layers (class and configuration, names left out: they differ
    between builds of the same model) and weights."""
    import keras

    h = hashlib.sha256()
    for layer in base._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, keras.Model | keras.layers.InputLayer):
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
            h.update(type(layer).__name__.encode())
            h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for v in base.weights:
        a = np.ascontiguousarray(np.asarray(v.value))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()
