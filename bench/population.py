"""Benchmark: the population engine against Keras ``fit`` per trial and a plain PyTorch loop.

The workload is the seed 002 tutorial's experiment: the Ionosphere MLP 34-34-1 (relu,
sigmoid, ``init="normal"``), SGD with momentum 0.8, batch 28, 50 epochs, validation
split 0.33 (the last third, as Keras' ``validation_split``), no standardization. The
trials are a grid of 2 schedules (``time_decay(0.1, decay=0.002)`` per update, and
``constant(0.1)``) x 5 peak lrs (0.01 .. 1.0) x seeds; N = 1, 10, 100, 500, 1000 takes
the first N trials (seed-major, as ``lrlab run`` orders them).

Measured in one run of this script:

- ``matmul``: float32 1024x1024 matmul in JAX, GFLOP/s (the machine's reference);
- ``keras``: a bare Keras ``fit`` per trial (arrays, Keras' shuffling, the lr as Keras'
  ``InverseTimeDecay``, validation every epoch), trials/s after a warm-up trial -- the
  ratios' reference;
- ``engine``: lrlab's Keras engine (``fit_trial``: the lr from lrlab's schedule, batches
  in the shared order) on the same trials;
- ``torch``: a plain PyTorch loop (same model, batches, lr per update, validation every
  epoch) on a few trials, trials/s;
- ``population``: the population engine on N trials in a fresh process per N, set up as
  ``lrlab run`` sets itself up (a JAX CPU device per core, :mod:`lrlab.experiments.jax_devices`;
  the ``devices`` column) -- the first call (building the initial weights, tracing and
  compiling included) and a second, steady call of the same run; trials/s, peak RSS of
  that process, and achieved GFLOP/s (model FLOPs: 3x the forward matmul FLOPs per
  training row, 1x per validation row) as a share of the matmul; N=500 once more on one
  device (``JAX_NUM_CPU_DEVICES=1``), for what the other cores add;
- ``lrlab run`` end to end on the 500-trial grid (100 with ``--quick``): a fresh process
  doing imports, the plan, compilation (JAX's persistent cache: a second run loads it),
  training and storing (one transaction per chunk of trials); and the same command with
  ``--engine keras`` on the first 10 trials, extrapolated to the grid (its time plus the
  other trials at the mean stored seconds of its trials after the first), for the
  end-to-end ratio.

Usage::

    KERAS_BACKEND=jax .venv/bin/python bench/population.py            # full (a few minutes)
    KERAS_BACKEND=jax .venv/bin/python bench/population.py --quick    # N = 1, 10, 100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

DATA = next(  # shared/data beside the checkout (a worktree sits one level deeper)
    (
        path
        for parent in Path(__file__).resolve().parents
        if (path := parent / "shared" / "data" / "ionosphere.csv").exists()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "ionosphere.csv",
)
LRS = [0.01, 0.03, 0.1, 0.3, 1.0]
HIDDEN = 34


def make_plan(n_trials: int, epochs: int):
    """The seed 002 grid with enough seeds for ``n_trials`` trials, and where the data came from."""
    from lrlab.experiments.config import config_from_dict
    from lrlab.experiments.datasets import Dataset
    from lrlab.experiments.plan import build_plan

    per_seed = 2 * len(LRS)
    raw = {
        "experiment": {
            "name": "seed002-bench",
            "seeds": max(1, math.ceil(n_trials / per_seed)),
            "lrs": LRS,
        },
        "data": {
            "dataset": "ionosphere",
            "validation": 0.33,
            "split": "tail",
            "standardize": False,
        },
        "model": {"spec": f'mlp(hidden=[{HIDDEN}], activation="relu", init="normal")'},
        "training": {"epochs": epochs, "batch_size": 28},
        "optimizers": {"sgd": {"type": "sgd", "momentum": 0.8}},
        "schedules": {
            "time_decay": "time_decay(0.1, decay=0.002)",
            "constant": "constant(0.1)",
        },
    }
    if DATA.exists():
        from lrlab.experiments.datasets import load_dataset

        dataset, source = load_dataset(f"csv:{DATA}"), f"{DATA} (351x34)"
    else:
        rng = np.random.default_rng(2)
        x = rng.normal(size=(351, 34)).astype(np.float32)
        y = (x @ rng.normal(size=34) + 0.5 * rng.normal(size=351) > 0).astype(np.int64)
        dataset = Dataset("synthetic", x, y, "binary", ("0", "1"))
        source = "synthetic data of the same shape (351x34; ionosphere.csv not found)"
    plan = build_plan(config_from_dict(raw), dataset=dataset, check_model=False)
    return plan, plan.trials[:n_trials], source


def model_flops(plan) -> float:
    """Model FLOPs of one trial: 3x forward matmul FLOPs per training row, 1x per val row."""
    d = plan.dataset.input_shape[0]
    forward = 2 * (d * HIDDEN + HIDDEN * 1)
    split = plan.split(0)
    return plan.epochs * (3 * forward * len(split.y_train) + forward * len(split.y_val))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ``ru_maxrss`` survives exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- workers
def population_worker(n: int, epochs: int, memory: str | None) -> dict:
    """Run in a fresh process: the engine on ``n`` trials twice (first, steady), on a CPU
    device per core as ``lrlab run`` (unless ``JAX_NUM_CPU_DEVICES`` says otherwise)."""
    from lrlab.experiments.jax_devices import use_every_core

    use_every_core()
    import jax  # (imports are not the engine's time)
    import keras  # noqa: F401

    from lrlab.experiments.engines.keras import fit_trial  # noqa: F401
    from lrlab.experiments.engines.population import PopulationEngine

    plan, trials, _ = make_plan(n, epochs)
    engine = PopulationEngine(memory=memory)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        results = list(engine.run(plan, trials))
        times.append(time.perf_counter() - t0)
    assert len(results) == n and all(r.status in ("ok", "diverged") for r in results)
    best = max(r.final.get("val_accuracy", 0.0) for r in results)
    return {
        "n": n,
        "first": times[0],
        "steady": times[1],
        "chunk": engine._chunk,
        "devices": jax.device_count(),
        "rss_mb": peak_rss_mb(),
        "best_val_accuracy": best,
    }


def end_to_end(n: int, epochs: int, engine: str = "population") -> tuple[float, list[float]]:
    """Wall time of ``lrlab run --engine ENGINE`` (a fresh process: imports, plan, compile,
    training, store writes) on the first ``n`` trials of the seed 002 grid, and the stored
    trials' seconds (each trial's own training time, as the engine measured it)."""
    import tempfile

    from lrlab.experiments.store import Store

    per_seed = 2 * len(LRS)
    data = f'"csv:{DATA}"' if DATA.exists() else '"breast_cancer"'
    toml = f"""
[experiment]
seeds = {max(1, math.ceil(n / per_seed))}
lrs = {LRS}
engine = "population"

[data]
dataset = {data}
validation = 0.33
split = "tail"
standardize = false

[model]
spec = 'mlp(hidden=[{HIDDEN}], activation="relu", init="normal")'

[training]
epochs = {epochs}
batch_size = 28

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
time_decay = "time_decay(0.1, decay=0.002)"
constant = "constant(0.1)"
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed002.toml"
        path.write_text(toml)
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "lrlab.cli", "run", str(path), "-o", str(out), "-q"]
        t0 = time.perf_counter()
        done = subprocess.run([*cmd, "--engine", engine], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1])
        with Store.open(out) as store:
            return seconds, [t.seconds for t in store.trials()]


def keras_rate(plan, trials, count: int) -> tuple[float, float]:
    """Seconds per trial of the Keras engine (after one warm-up trial) and the first trial's."""
    from lrlab.experiments.engines.keras import fit_trial

    t0 = time.perf_counter()
    fit_trial(plan, trials[0])
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for trial in trials[1 : count + 1]:
        fit_trial(plan, trial)
    return (time.perf_counter() - t0) / count, warm


def bare_keras_rate(plan, trials, count: int) -> float:
    """Seconds per trial of a bare Keras ``fit`` (arrays, Keras' own shuffling, the lr as a
    Keras ``InverseTimeDecay``): the fastest plain Keras way to run one such trial."""
    import keras

    ds = plan.dataset
    split = plan.split(0)
    y, yv = split.y_train.astype("float32"), split.y_val.astype("float32")

    def one(trial) -> None:
        model = plan.model.build(ds.input_shape, ds.task, ds.n_classes, trial.init_seed)
        lr = keras.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.002)
        model.compile(
            optimizer=keras.optimizers.SGD(lr, momentum=0.8),
            loss="binary_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(
            split.x_train,
            y,
            batch_size=plan.batch_size,
            epochs=plan.epochs,
            validation_data=(split.x_val, yv),
            verbose=0,
        )

    one(trials[0])  # warm-up
    t0 = time.perf_counter()
    for trial in trials[1 : count + 1]:
        one(trial)
    return (time.perf_counter() - t0) / count


def torch_rate(plan, trials, count: int) -> float:
    """Seconds per trial of a plain PyTorch loop doing the same work."""
    import torch

    from lrlab.experiments.datasets import batch_order

    split = plan.split(0)
    x = torch.tensor(split.x_train)
    y = torch.tensor(split.y_train, dtype=torch.float32)[:, None]
    xv = torch.tensor(split.x_val)
    yv = torch.tensor(split.y_val, dtype=torch.float32)[:, None]
    n, b = len(y), plan.batch_size
    t0 = time.perf_counter()
    for trial in trials[:count]:
        torch.manual_seed(trial.init_seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], HIDDEN),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, 1),
            torch.nn.Sigmoid(),
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.8)
        loss_fn = torch.nn.BCELoss()
        table = plan.lr_table(trial)
        t = 0
        for epoch in range(plan.epochs):
            order = torch.from_numpy(batch_order(trial.order_seed, epoch, n))
            for i in range(0, n, b):
                rows = order[i : i + b]
                for group in opt.param_groups:
                    group["lr"] = float(table[t])
                opt.zero_grad()
                loss = loss_fn(model(x[rows]), y[rows])
                loss.backward()
                opt.step()
                t += 1
            with torch.no_grad():
                out = model(xv)
                float(loss_fn(out, yv)), float(((out > 0.5).float() == yv).float().mean())
    return (time.perf_counter() - t0) / count


def matmul_gflops() -> float:
    import jax
    import jax.numpy as jnp

    a = jnp.asarray(np.random.default_rng(0).normal(size=(1024, 1024)), jnp.float32)
    f = jax.jit(lambda m: m @ m)
    f(a).block_until_ready()
    best = math.inf
    for _ in range(10):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * 1024**3 / best / 1e9


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 10, 100; fewer repeats")
    parser.add_argument(
        "--sizes", default=None, help="comma-separated N (default 1,10,100,500,1000)"
    )
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--keras-trials", type=int, default=None)
    parser.add_argument("--torch-trials", type=int, default=None)
    parser.add_argument("--memory", default=None, help="population memory budget, e.g. 512MB")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(population_worker(args.worker, args.epochs, args.memory)))
        return
    sizes = [1, 10, 100] if args.quick else [1, 10, 100, 500, 1000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    n_keras = args.keras_trials or (1 if args.quick else 3)
    n_torch = args.torch_trials or (1 if args.quick else 3)

    import jax
    import keras
    import torch

    plan, trials, source = make_plan(max(n_keras + 1, n_torch, 10), args.epochs)
    print(f"data: {source}")
    print(
        f"workload: mlp 34-{HIDDEN}-1, sgd momentum 0.8, batch {plan.batch_size}, "
        f"{plan.epochs} epochs x {plan.steps_per_epoch} updates, validation every epoch"
    )
    print(
        f"machine: {os.cpu_count()} cpus; jax {jax.__version__}, keras {keras.__version__}, "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    flops = model_flops(plan)
    gflops = matmul_gflops()
    print(f"matmul 1024x1024 float32 (jax): {gflops:.1f} GFLOP/s")
    keras_s = bare_keras_rate(plan, trials, n_keras)
    print(
        f"keras fit (bare: arrays, InverseTimeDecay), one trial at a time: {keras_s:.3f} s/trial"
        f" = {1 / keras_s:.2f} trials/s (mean of {n_keras} after a warm-up trial)"
    )
    engine_s, engine_first = keras_rate(plan, trials, n_keras)
    print(
        f"lrlab keras engine (fit_trial), one trial at a time: {engine_s:.3f} s/trial = "
        f"{1 / engine_s:.2f} trials/s (mean of {n_keras} after a warm-up trial of "
        f"{engine_first:.2f} s)"
    )
    torch_s = torch_rate(plan, trials, n_torch)
    print(
        f"pytorch loop, one trial at a time: {torch_s:.3f} s/trial = {1 / torch_s:.2f} trials/s "
        f"(mean of {n_torch})"
    )
    print()
    header = (
        f"{'N':>5} {'first s':>8} {'steady s':>8} {'trials/s':>9} {'x keras':>8} "
        f"{'x engine':>8} {'x torch':>8} {'first x keras':>13} {'GFLOP/s':>8} "
        f"{'of matmul':>9} {'chunk':>6} {'devices':>7} {'peak RSS':>9}"
    )
    print(header)
    rows = []
    runs = [(n, None) for n in sizes] + [(500, "1")] * (500 in sizes)
    for n, devices in runs:
        cmd = [sys.executable, __file__, "--worker", str(n), "--epochs", str(args.epochs)]
        if args.memory:
            cmd += ["--memory", args.memory]
        env = dict(os.environ)
        if devices:
            env["JAX_NUM_CPU_DEVICES"] = devices
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if out.returncode != 0:
            print(f"{n:>5} worker failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rate = n / r["steady"]
        achieved = rate * flops / 1e9
        rows.append({**r, "n": n, "x_keras": rate * keras_s, "of_matmul": achieved / gflops})
        rows[-1]["one_device"] = devices == "1"
        print(
            f"{n:>5} {r['first']:>8.2f} {r['steady']:>8.3f} {rate:>9.1f} "
            f"{rate * keras_s:>7.0f}x {rate * engine_s:>7.0f}x {rate * torch_s:>7.0f}x "
            f"{(n / r['first']) * keras_s:>12.0f}x {achieved:>8.2f} {achieved / gflops:>8.1%} "
            f"{r['chunk']:>6} {r['devices']:>7} {r['rss_mb']:>6.0f} MB"
        )
    e2e = 100 if args.quick else 500
    print()
    print(f"load average before the end-to-end runs: {os.getloadavg()[0]:.1f}")
    cold, _ = end_to_end(e2e, args.epochs)
    seconds, stored = end_to_end(e2e, args.epochs)
    print(
        f"lrlab run, {e2e}-trial seed 002 grid end to end (fresh process: imports, plan, "
        f"compile, training, {len(stored)} trials stored): {seconds:.1f} s with the "
        f"persistent compile cache warm (a rerun, a new folder), {cold:.1f} s the first time"
    )
    few = 10
    keras_seconds, keras_stored = end_to_end(few, args.epochs, engine="keras")
    steady = keras_stored[1:] or keras_stored  # the first trial also loads the programs
    per_trial = sum(steady) / len(steady)
    keras_e2e = keras_seconds + (e2e - len(keras_stored)) * per_trial
    print(
        f"lrlab run --engine keras, the first {len(keras_stored)} trials end to end: "
        f"{keras_seconds:.1f} s ({per_trial:.2f} s per stored trial after the first); "
        "extrapolated to "
        f"{e2e} trials (+ {e2e - len(keras_stored)} x {per_trial:.2f} s): {keras_e2e:.0f} s"
        f" -> the population engine is {keras_e2e / seconds:.0f}x the Keras engine end to end"
    )
    print()
    print(
        "trials/s, x keras (bare fit), x engine (lrlab's keras engine), x torch, GFLOP/s: the "
        "steady call; 'first x keras' includes building the initial weights, tracing and "
        "compiling; peak RSS is the population process's."
    )
    print(f"this process (keras, torch, matmul): peak RSS {peak_rss_mb():.0f} MB")
    print_targets(rows, seconds, e2e)


#: issue 17's targets: (what, N it is measured at, the row's field or None, the test)
TARGETS = (
    ("steady trials/s >= 500x keras fit", 500, "x_keras", lambda v: v >= 500, "{:.0f}x"),
    ("model GFLOP/s >= 15% of the matmul's", 500, "of_matmul", lambda v: v >= 0.15, "{:.1%}"),
    ("peak RSS < 1 GB", 1000, "rss_mb", lambda v: v < 1000, "{:.0f} MB"),
)


def print_targets(rows: list[dict], e2e_seconds: float, e2e_trials: int) -> None:
    """Each target with the value this run measured and whether it is met."""
    print("\ntargets (this run):")
    by_n = {r["n"]: r for r in rows if not r["one_device"]}  # as lrlab run: every core
    one = {r["n"]: r for r in rows if r["one_device"]}
    for what, n, field, met, fmt in TARGETS:
        if n not in by_n:
            print(f"  {what} at N={n}: not measured (--sizes without {n})")
            continue
        value = by_n[n][field]
        print(f"  {what} at N={n}: {fmt.format(value)} {'met' if met(value) else 'NOT met'}")
        if n in one and field in ("x_keras", "of_matmul"):
            value = one[n][field]
            print(f"    on one device: {fmt.format(value)} {'met' if met(value) else 'NOT met'}")
    verdict = "met" if e2e_trials == 500 and e2e_seconds < 5 else "NOT met"
    print(
        f"  lrlab run of {e2e_trials} trials end to end (compile cache warm) < 5 s: "
        f"{e2e_seconds:.1f} s {verdict}"
    )


if __name__ == "__main__":
    main()
