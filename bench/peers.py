"""Benchmark: lrlab's population engine against the peers an expert would pick, in one run.

The workload is ``bench/population.py``'s (the seed 002 tutorial's): the Ionosphere MLP
34-34-1 (relu, sigmoid), SGD with momentum 0.8, batch 28, 50 epochs, a per-update lr
from lrlab's schedules (``time_decay`` and ``constant`` x 5 peak lrs x seeds), validation
(loss and accuracy) after every epoch. Every peer runs in a fresh process with its best
settings, and trials/s is measured on a second, steady call (the first pays compilation):

- ``keras fit``: a bare Keras ``fit`` per trial (``bench/population.py``'s), a few trials;
- ``keras engine``: lrlab's Keras engine (``fit_trial``), a few trials;
- ``torch loop``: a plain PyTorch loop per trial (threads: the better of 1 and all cores);
- ``torch.func``: an ensemble of N trials with stacked parameters,
  ``vmap(grad(functional_call))``, SGD momentum written on the stacked tensors (threads:
  the better of 1 and all cores);
- ``jax+optax``: a hand-written ``jit(vmap(scan))`` with ``optax.inject_hyperparams(sgd)``
  (the per-update lr as data), compiled with lrlab's XLA options
  (:data:`~lrlab.experiments.engines.xla_options.COMPILER_OPTIONS`);
  ``sharded``: the same with the trial axis sharded over one CPU device per core
  (``jax_num_cpu_devices``), as an expert would on this machine;
- ``lrlab``: the population engine (``PopulationEngine``), on one device and sharded over
  the cores (``devices=``).

``--cnn`` adds seed 003's CNN grid on digits (``lrlab run`` end to end per engine, and
what ``auto`` picks). Ratios are lrlab's steady trials/s (the better of its two settings,
both printed) over each peer's. Usage::

    KERAS_BACKEND=jax .venv/bin/python bench/peers.py            # N = 500
    KERAS_BACKEND=jax .venv/bin/python bench/peers.py --n 100 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

CORES = os.cpu_count() or 1


def _workload(n: int, epochs: int):
    """The plan, its first ``n`` trials, their lr tables ``[n, steps]`` and batch orders
    ``[n, epochs, n_train]`` (lrlab's own), and the split's arrays."""
    from population import make_plan

    from lrlab.experiments.datasets import batch_order

    plan, trials, _ = make_plan(n, epochs)
    split = plan.split(0)
    tables = np.stack([plan.lr_table(t) for t in trials]).astype(np.float32)
    n_train = len(split.y_train)
    by_seed = {
        s: np.stack([batch_order(s, e, n_train) for e in range(epochs)])
        for s in {t.order_seed for t in trials}
    }
    orders = np.stack([by_seed[t.order_seed] for t in trials]).astype(np.int64)
    data = (
        split.x_train.astype(np.float32),
        split.y_train.astype(np.float32),
        split.x_val.astype(np.float32),
        split.y_val.astype(np.float32),
    )
    return plan, trials, tables, orders, data


def _steady(run, repeats: int = 2) -> tuple[float, float, float]:
    """(first call's seconds, best of the later calls' wall seconds, best of their CPU
    seconds). CPU time (every thread of the process) is the steadier measure on a machine
    whose cores are shared with other work: a busy machine stretches wall time, not work."""
    times, cpu = [], []
    for _ in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times[0], min(times[1:]), min(cpu[1:])


def _program(executable) -> str:
    """What XLA made of a compiled program: its kernels (fusions, dots, copies: each one a
    launch per execution of its loop body) and XLA's FLOP count (loop bodies counted once)."""
    import re

    text = executable.as_text()
    kernels = len(re.findall(r"= \S+ (?:fusion|dot|copy|custom-call|gather|scatter)\(", text))
    flops = (executable.cost_analysis() or {}).get("flops", 0.0)
    return f"{kernels} kernels, {flops / 1e6:.0f} MFLOP per body"


# --------------------------------------------------------------------------- peers
def peer_keras_fit(n: int, epochs: int, _: str) -> dict:
    from population import bare_keras_rate

    plan, trials, *_ = _workload(n + 1, epochs)
    seconds = bare_keras_rate(plan, trials, n)
    return {"rate": 1 / seconds, "trials": n, "settings": "keras.Model.fit, verbose=0"}


def peer_keras_engine(n: int, epochs: int, _: str) -> dict:
    from population import keras_rate

    plan, trials, *_ = _workload(n + 1, epochs)
    seconds, _first = keras_rate(plan, trials, n)
    return {"rate": 1 / seconds, "trials": n, "settings": "lrlab fit_trial"}


def peer_torch_loop(n: int, epochs: int, threads: str) -> dict:
    import torch
    from population import torch_rate

    torch.set_num_threads(int(threads))
    plan, trials, *_ = _workload(n, epochs)
    torch_rate(plan, trials, 1)  # warm-up
    seconds = torch_rate(plan, trials, n)
    return {"rate": 1 / seconds, "trials": n, "settings": f"torch.set_num_threads({threads})"}


def peer_torch_func(n: int, epochs: int, threads: str) -> dict:
    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap

    torch.set_num_threads(int(threads))
    plan, trials, tables, orders, (x, y, xv, yv) = _workload(n, epochs)
    x, y, xv, yv = (torch.from_numpy(a) for a in (x, y, xv, yv))
    y, yv = y[:, None], yv[:, None]
    tables, orders = torch.from_numpy(tables), torch.from_numpy(orders)
    d, b, n_train = x.shape[1], plan.batch_size, len(y)

    def make(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Linear(d, 34), torch.nn.ReLU(), torch.nn.Linear(34, 1), torch.nn.Sigmoid()
        )

    base = make(0).to("meta")

    def loss_fn(params, xb, yb):
        out = functional_call(base, params, (xb,))
        return torch.nn.functional.binary_cross_entropy(out, yb)

    grads_of = vmap(grad(loss_fn))
    forward = vmap(functional_call, in_dims=(None, 0, None))

    def run():
        params, _ = stack_module_state([make(t.init_seed) for t in trials])
        params = {k: v.detach() for k, v in params.items()}
        velocity = {k: torch.zeros_like(v) for k, v in params.items()}
        step = 0
        for epoch in range(epochs):
            order = orders[:, epoch]
            for i in range(0, n_train, b):
                rows = order[:, i : i + b]
                g = grads_of(params, x[rows], y[rows])
                lr = tables[:, step]
                for k, v in params.items():
                    scale = lr.view(-1, *([1] * (v.dim() - 1)))
                    velocity[k].mul_(0.8).sub_(scale * g[k])
                    v.add_(velocity[k])
                step += 1
            with torch.no_grad():
                out = forward(base, params, xv)
                loss = torch.nn.functional.binary_cross_entropy(
                    out, yv.expand_as(out), reduction="none"
                ).mean((1, 2))
                acc = ((out > 0.5).float() == yv).float().mean((1, 2))
                loss.numpy(), acc.numpy()

    first, steady, cpu = _steady(run, repeats=1)
    return {
        "rate": n / steady,
        "cpu_rate": n / cpu,
        "first": first,
        "trials": n,
        "settings": f"torch.set_num_threads({threads}), vmap(grad(functional_call))",
    }


def peer_jax_optax(n: int, epochs: int, devices: str) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    plan, trials, tables, orders, (x, y, xv, yv) = _workload(n, epochs)
    d, b, n_train = x.shape[1], plan.batch_size, len(y)
    nb, rem = n_train // b, n_train % b
    x, y, xv, yv = (jnp.asarray(a) for a in (x, y, xv, yv))
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.8)

    def bce(p, xb, yb):
        h = jax.nn.relu(xb @ p["w1"] + p["b1"])
        logits = (h @ p["w2"] + p["b2"])[:, 0]
        return optax.sigmoid_binary_cross_entropy(logits, yb).mean(), logits

    def trial(p, order, table):
        def step(c, rows_t):
            p, s = c
            rows, t = rows_t
            g = jax.grad(lambda q: bce(q, x[rows], y[rows])[0])(p)
            s.hyperparams["learning_rate"] = table[t]
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        def epoch(c, e):
            rows = order[e]
            start = e * (nb + (1 if rem else 0))
            c, _ = jax.lax.scan(step, c, (rows[: nb * b].reshape(nb, b), start + jnp.arange(nb)))
            if rem:
                c, _ = step(c, (rows[nb * b :], start + nb))
            loss, logits = bce(c[0], xv, yv)
            acc = jnp.mean((logits > 0) == (yv > 0.5))
            return c, jnp.stack([loss, acc])

        (p, _), history = jax.lax.scan(epoch, (p, opt.init(p)), jnp.arange(epochs))
        return history

    run = jax.jit(jax.vmap(trial))
    rng = np.random.default_rng(0)
    params = {
        "w1": rng.normal(0, 0.05, (n, d, 34)).astype(np.float32),
        "b1": np.zeros((n, 34), np.float32),
        "w2": rng.normal(0, 0.05, (n, 34, 1)).astype(np.float32),
        "b2": np.zeros((n, 1), np.float32),
    }
    args = (params, orders.astype(np.int32), tables)
    count = int(devices)
    if count > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.array(jax.devices()[:count]), ("trials",))
        args = jax.device_put(args, NamedSharding(mesh, PartitionSpec("trials")))
    from lrlab.experiments.engines.xla_options import COMPILER_OPTIONS

    t0 = time.perf_counter()  # the XLA options lrlab's program takes (the peer gains too)
    compiled = run.lower(*args).compile(compiler_options=COMPILER_OPTIONS)
    compile_seconds = time.perf_counter() - t0
    first, steady, cpu = _steady(lambda: np.asarray(compiled(*args)))
    return {
        "rate": n / steady,
        "cpu_rate": n / cpu,
        "first": compile_seconds + first,
        "trials": n,
        "settings": f"jit(vmap(scan)), optax.inject_hyperparams(sgd), lrlab's XLA options, "
        f"{count} device(s)",
        "program": _program(compiled),
    }


def peer_lrlab(n: int, epochs: int, devices: str) -> dict:
    import jax  # noqa: F401  (imports are not the engine's time)
    import keras  # noqa: F401

    from lrlab.experiments.engines.population import PopulationEngine

    plan, trials, *_ = _workload(n, epochs)
    engine = PopulationEngine(devices=int(devices))
    first, steady, cpu = _steady(lambda: list(engine.run(plan, trials)))
    programs = [
        _program(executables.run)  # the epochs' program (its init only builds the carry)
        for program in engine.caches.programs._programs.values()
        for executables in program._executables.values()
    ]
    return {
        "rate": n / steady,
        "cpu_rate": n / cpu,
        "first": first,
        "trials": n,
        "settings": f"PopulationEngine(devices={devices}), chunk {engine._chunk}",
        "program": "; ".join(programs),
    }


PEERS = {
    "keras_fit": peer_keras_fit,
    "keras_engine": peer_keras_engine,
    "torch_loop": peer_torch_loop,
    "torch_func": peer_torch_func,
    "jax_optax": peer_jax_optax,
    "lrlab": peer_lrlab,
}


def _spawn(peer: str, n: int, epochs: int, setting: str) -> dict:
    """Run one peer in a fresh process (with ``setting`` CPU devices for the JAX ones)."""
    env = dict(os.environ)
    if peer in ("jax_optax", "lrlab") and int(setting) > 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={setting}".strip()
    cmd = [sys.executable, __file__, "--worker", peer, str(n), str(epochs), setting]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


CNN_TOML = """
[experiment]
seeds = {seeds}
engine = "{engine}"

[data]
dataset = "digits"
validation = 0.2

[model]
spec = "cnn(filters=[16, 32], kernel=3, pool=2, dense=[64])"

[training]
epochs = {epochs}
batch_size = 32
metrics = ["accuracy"]

[optimizers]
sgd_momentum = {{ type = "sgd", momentum = 0.8, schedules = ["time_based", "step", "exponential"] }}

[schedules]
time_based = "time_decay(0.1, decay=0.0033)"
step = {{ spec = "step_decay(0.1, drop=0.5, every=10, offset=1)", unit = "epoch" }}
exponential = {{ spec = "exp_decay(0.1, k=0.1)", unit = "epoch" }}
"""


def cnn_grid(seeds: int, epochs: int) -> None:
    """Seed 003's CNN grid on digits (SGD momentum, 3 schedules x ``seeds``): ``lrlab run``
    end to end in a fresh process per engine, each with its own empty compile cache (cold),
    then the same command again (warm: the compiled programs load from that cache); the
    population engine also on one CPU device (``JAX_NUM_CPU_DEVICES=1``; ``lrlab run``
    gives JAX one per core); what ``auto`` picks and why; then the population program's
    trial-axis modes timed in this process (steady: compiled and run once first), in
    trial-updates per second: all vmapped, one trial at a time, groups of 4."""
    import tempfile

    from lrlab.experiments.config import load_config
    from lrlab.experiments.engines.population import population_inputs
    from lrlab.experiments.engines.population_chunks import Population
    from lrlab.experiments.plan import build_plan
    from lrlab.experiments.runner import choose_engine

    seconds: dict[tuple[str, str], float] = {}
    load = os.getloadavg()[0]
    runs = (("population", "every core"), ("keras", "every core"), ("population", "one device"))
    with tempfile.TemporaryDirectory() as tmp:
        for engine, cores in runs:
            path = Path(tmp) / f"{engine}.toml"
            path.write_text(CNN_TOML.format(seeds=seeds, epochs=epochs, engine=engine))
            env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
            env["LRLAB_CACHE"] = f"{tmp}/cache-{engine}-{cores}"  # its own, empty at first
            if cores == "one device":
                env["JAX_NUM_CPU_DEVICES"] = "1"
            for cache in ("cold", "warm"):
                out = f"{tmp}/{engine}-{cores}-{cache}"
                cmd = [sys.executable, "-m", "lrlab.cli", "run", str(path), "-o", out, "-q"]
                t0 = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
                seconds[engine, cores, cache] = time.perf_counter() - t0
                if done.returncode != 0:
                    print(f"cnn {engine} failed: {done.stderr.strip().splitlines()[-1:]}")
                    return
        path = Path(tmp) / "auto.toml"
        path.write_text(CNN_TOML.format(seeds=seeds, epochs=epochs, engine="auto"))
        passed: list[str] = []
        plan = build_plan(load_config(path))
        chosen = choose_engine("auto", plan, passed)
    trials = 3 * seeds
    print(
        f"\ncnn grid (seed 003 on digits, cnn(filters=[16, 32], kernel=3, pool=2, dense=[64]), "
        f"sgd momentum 0.8, 3 schedules x {seeds} seeds = {trials} trials, {epochs} epochs), "
        f"lrlab run end to end (load {load:.1f}, then {os.getloadavg()[0]:.1f}):"
    )
    print(f"  {'engine':<10} {'cores':<11} {'cold':>7} {'warm':>7}")
    for engine, cores in runs:
        cold, warm = seconds[engine, cores, "cold"], seconds[engine, cores, "warm"]
        print(f"  {engine:<10} {cores:<11} {cold:>6.1f}s {warm:>6.1f}s")
    for cache in ("cold", "warm"):
        ratio = seconds["keras", "every core", cache] / seconds["population", "every core", cache]
        one = seconds["keras", "every core", cache] / seconds["population", "one device", cache]
        verdict = "met" if ratio >= 2 else "NOT met"
        print(
            f"  population / keras engine speed, compile cache {cache}: {ratio:.2f}x "
            f"(target >= 2x: {verdict}; on one device {one:.2f}x)"
        )
    print(f"  auto takes: {chosen.name} ({'; '.join(passed) or 'first choice'})")
    inputs = population_inputs(plan, plan.trials)
    updates = trials * epochs * -(-len(inputs["splits"][0].y_train) // 32)
    print(f"  population program modes, steady ({trials} trials x {epochs} epochs, this process):")
    rates = {}
    for label, at_once in (("vmapped", None), ("in sequence", 1), ("groups of 4", 4)):
        population = Population(**inputs, trials_at_once=at_once, epochs_per_call=epochs)
        compile_s = population.compile()
        for _ in population:  # a first pass: XLA's CPU kernels settle in (untimed)
            pass
        t0 = time.perf_counter()
        for _ in population:
            pass
        rates[label] = updates / (time.perf_counter() - t0)
        print(
            f"    {label:<12} {rates[label]:>7.0f} trial-updates/s (compile {compile_s:.1f} s, "
            f"load {os.getloadavg()[0]:.1f})"
        )
    print(f"    in sequence / vmapped: {rates['in sequence'] / rates['vmapped']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="trials of the vectorized runs")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--few", type=int, default=3, help="trials of the one-at-a-time peers")
    parser.add_argument("--only", default=None, help="comma-separated peers to run")
    parser.add_argument("--cnn", action="store_true", help="also seed 003's CNN grid")
    parser.add_argument("--cnn-seeds", type=int, default=16)
    parser.add_argument("--cnn-epochs", type=int, default=5)
    parser.add_argument("--worker", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        peer, n, epochs, setting = args.worker
        print(json.dumps(PEERS[peer](int(n), int(epochs), setting)))
        return
    import jax
    import keras
    import torch

    print(
        f"workload: seed 002 MLP 34-34-1, sgd momentum 0.8, batch 28, {args.epochs} epochs, "
        f"lr per update, validation every epoch; N = {args.n} for the vectorized runs"
    )
    print(
        f"machine: {CORES} cpus, load average {os.getloadavg()[0]:.1f} at start; jax "
        f"{jax.__version__}, keras {keras.__version__}, torch {torch.__version__}"
    )
    few, many = args.few, args.n
    runs = [
        ("keras fit", "keras_fit", few, "1"),
        ("keras engine", "keras_engine", few, "1"),
        ("torch loop", "torch_loop", few, "1"),
        ("torch loop", "torch_loop", few, str(CORES)),
        ("torch.func", "torch_func", many, "1"),
        ("torch.func", "torch_func", many, str(CORES)),
        ("jax+optax", "jax_optax", many, "1"),
        ("jax+optax", "jax_optax", many, str(CORES)),
        ("lrlab", "lrlab", many, "1"),
        ("lrlab", "lrlab", many, str(CORES)),
    ]
    if args.only:
        keep = set(args.only.split(","))
        runs = [r for r in runs if r[1] in keep]
    results = []
    print(f"\n{'peer':<13} {'trials':>6} {'first s':>8} {'trials/s':>9} {'/cpu-s':>8}  settings")
    for label, peer, n, setting in runs:
        r = _spawn(peer, n, args.epochs, setting)
        if "error" in r:
            print(f"{label:<13} failed: {r['error']}")
            continue
        results.append((label, r))
        first = f"{r['first']:.2f}" if "first" in r else "-"
        cpu = f"{r['cpu_rate']:.1f}" if "cpu_rate" in r else "-"
        print(f"{label:<13} {n:>6} {first:>8} {r['rate']:>9.2f} {cpu:>8}  {r['settings']}")
        if "program" in r:
            print(f"{'':<13} program: {r['program']}")
    best: dict[str, dict] = {}
    best_cpu = {
        label: max(r["cpu_rate"] for lab, r in results if lab == label and "cpu_rate" in r)
        for label in {lab for lab, r in results if "cpu_rate" in r}
    }
    for label, r in results:
        if label not in best or r["rate"] > best[label]["rate"]:
            best[label] = r
    if args.cnn:
        cnn_grid(args.cnn_seeds, args.cnn_epochs)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    if "lrlab" not in best:
        return
    mine = best["lrlab"]
    print(f"\nlrlab's best ({mine['settings']}): {mine['rate']:.1f} trials/s")
    for label, r in best.items():
        if label != "lrlab":
            cpu = ""
            if label in best_cpu and "lrlab" in best_cpu:  # each side's best, per CPU-second
                cpu = f"; per CPU-second x {best_cpu['lrlab'] / best_cpu[label]:.2f}"
            print(f"  x {label:<13} {mine['rate'] / r['rate']:>8.2f}  ({r['settings']}{cpu})")
    lrlab_runs = [r for label, r in results if label == "lrlab"]
    if len(lrlab_runs) == 2:
        one, sharded = lrlab_runs
        ratio = sharded["rate"] / one["rate"]
        print(f"  lrlab sharded over {CORES} devices / one device: {ratio:.2f}")


if __name__ == "__main__":
    main()
