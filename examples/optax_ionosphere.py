"""optax: the seed tutorials' Ionosphere MLP in JAX, warmup-cosine with plateau reduction.

The model is the seeds' ``Dense(34, relu) -> Dense(1, sigmoid)`` trained with SGD
(momentum 0.9), batch 28. ``lrlab.optax.inject`` wraps ``optax.sgd`` in
``optax.inject_hyperparams``, so every jitted update's lr is
``opt_state.hyperparams["learning_rate"]``. The validation loss of each epoch is passed
as ``value=`` with the first update of the next epoch, where a plateau reduction applies.

    python examples/optax_ionosphere.py --epochs 40 --data csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

import lrlab.optax
from lrlab.experiments.datasets import load_dataset, split_dataset


def init(key: jax.Array) -> dict:
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (34, 34)) * 0.05,
        "b1": jnp.zeros(34),
        "w2": jax.random.normal(k2, (34, 1)) * 0.05,
        "b2": jnp.zeros(1),
    }


def logits(params: dict, x: jax.Array) -> jax.Array:
    hidden = jax.nn.relu(x @ params["w1"] + params["b1"])
    return (hidden @ params["w2"] + params["b2"])[:, 0]


def loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    return optax.sigmoid_binary_cross_entropy(logits(params, x), y).mean()


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    args = parser.parse_args(argv)
    split = split_dataset(load_dataset(args.data), validation=0.33, seed=0)
    x, y = jnp.asarray(split.x_train), jnp.asarray(split.y_train, jnp.float32)
    x_val, y_val = jnp.asarray(split.x_val), jnp.asarray(split.y_val, jnp.float32)
    starts = range(0, len(x), 28)

    steps = args.epochs * len(starts)
    warm = steps // 10
    spec = f"warmup({warm}, cosine(0.1, decay_steps={steps - warm}, alpha=0.1))"
    plateau = "plateau(factor=0.5, patience=5, cooldown=1)"
    opt = lrlab.optax.inject(optax.sgd, spec, plateau=plateau, momentum=0.9)

    @jax.jit
    def update(params, state, xb, yb, **value):
        grads = jax.grad(loss)(params, xb, yb)
        updates, state = opt.update(grads, state, params, **value)
        return optax.apply_updates(params, updates), state

    params = init(jax.random.PRNGKey(7))
    state = opt.init(params)
    lrs: list[float] = []
    val_loss = None
    for _ in range(args.epochs):
        for i, start in enumerate(starts):
            xb, yb = x[start : start + 28], y[start : start + 28]
            # the last epoch's validation loss goes with this epoch's first update
            value = {"value": val_loss} if i == 0 and val_loss is not None else {}
            params, state = update(params, state, xb, yb, **value)
            lrs.append(float(state.hyperparams["learning_rate"]))
        val_loss = loss(params, x_val, y_val)
    val_acc = float(((logits(params, x_val) > 0) == (y_val > 0.5)).mean())

    reductions = int(state.hyperparams_states["learning_rate"].reductions)
    print(f"schedule {spec} x {plateau}, {len(lrs)} updates")
    print(f"plateau reductions: {reductions}")
    print(f"final val_loss {float(val_loss):.4f}, val_accuracy {val_acc:.3f}")
    print(f"lr per epoch: {[round(lr, 5) for lr in lrs[:: len(starts)]]}")
    return lrs


if __name__ == "__main__":
    main()
