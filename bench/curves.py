"""A 1,000,000-step lr curve: lrlab evaluated vectorized vs stepping a torch scheduler.

The obvious alternative to a closed-form schedule is what PyTorch users do to get the
same curve: build an optimizer, attach ``CosineAnnealingLR`` and call ``step()`` once per
update, reading ``get_last_lr()``. This script times both in the same run and prints the
ratio; it also checks that they agree.

    KERAS_BACKEND=jax .venv/bin/python bench/curves.py                        # all 1M steps
    KERAS_BACKEND=jax .venv/bin/python bench/curves.py --torch-steps 100000   # torch scaled x10

Times are the best of ``--repeat`` runs (wall clock, one process, this machine's load).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lrlab import parse  # noqa: E402

STEPS = 1_000_000


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_curve(n: int, lr: float, t_max: int, eta_min: float) -> np.ndarray:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min)
    opt.step()  # no grad: a no-op that keeps torch's "step order" warning away
    out = np.empty(n)
    for i in range(n):
        out[i] = sched.get_last_lr()[0]
        sched.step()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--torch-steps",
        type=int,
        default=STEPS,
        help="steps torch really takes; the time is scaled to 1,000,000 (default: all)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch_steps = max(1, min(args.torch_steps, STEPS))

    spec = f"cosine_annealing(0.1, t_max={STEPS}, eta_min=0.001)"
    schedule = parse(spec)
    print(f"curve: {spec}, {STEPS:,} steps")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"jax {jax.__version__}, numpy {np.__version__}")  # fmt: skip

    # lrlab, numpy (float64)
    t_numpy = best_of(args.repeat, lambda: schedule.curve(STEPS))
    ours = schedule.curve(STEPS)

    # lrlab, jax.numpy under jit (float32); compile once, outside the timing
    curve_jax = jax.jit(lambda t: schedule(t, jnp))
    steps_jax = jnp.arange(STEPS, dtype=jnp.float32)
    curve_jax(steps_jax).block_until_ready()
    t_jax = best_of(args.repeat, lambda: curve_jax(steps_jax).block_until_ready())
    jax_err = float(np.max(np.abs(np.asarray(curve_jax(steps_jax), np.float64) - ours)))

    # torch scheduler, one step() per update
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_torch_part = best_of(
            max(1, args.repeat // 2), lambda: torch_curve(torch_steps, 0.1, STEPS, 0.001)
        )
        reference = torch_curve(torch_steps, 0.1, STEPS, 0.001)
    t_torch = t_torch_part * STEPS / torch_steps
    torch_err = float(np.max(np.abs(reference - ours[:torch_steps])))

    how = "all steps" if torch_steps == STEPS else f"{torch_steps:,} steps x{STEPS / torch_steps:g}"
    print()
    print(f"{'method':<52} {'seconds':>10} {'per step':>10}")
    rows = [
        ("lrlab numpy, vectorized (float64)", t_numpy),
        ("lrlab jax.numpy, jit (float32)", t_jax),
        (f"torch CosineAnnealingLR.step() ({how})", t_torch),
    ]
    for name, seconds in rows:
        print(f"{name:<52} {seconds:>10.4f} {seconds / STEPS * 1e9:>8.1f}ns")
    print()
    print(f"ratio torch stepping / lrlab numpy: {t_torch / t_numpy:,.0f}x")
    print(f"ratio torch stepping / lrlab jax:   {t_torch / t_jax:,.0f}x")
    print(f"max |lrlab - torch chained form| over {torch_steps:,} steps: {torch_err:.2e}")
    print(f"max |lrlab jax float32 - numpy float64|: {jax_err:.2e}")


if __name__ == "__main__":
    main()
