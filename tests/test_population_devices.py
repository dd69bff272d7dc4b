"""The population engine over several devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lrlab.experiments.engines.population_chunks import per_device
from lrlab.experiments.jax_devices import cpu_cores
from lrlab.experiments.store import Store
from lrlab_process import lrlab_env, one_error_line, run_lrlab

EXPERIMENT = textwrap.dedent(
    """
            [experiment]
            seeds = 1
            lrs = [0.01, 0.1, 1.0]
            [data]
            dataset = "breast_cancer"
            validation = 0.25
            [model]
            spec = "mlp(hidden=[8])"
            [training]
            epochs = 3
            batch_size = 32
            [optimizers]
            sgd = { type = "sgd", momentum = 0.9 }
            [schedules]
            cosine = "cosine(0.1, decay_steps=40)"
            """
)

SHARDED = textwrap.dedent(
    """
    import json, sys
    import jax
    import numpy as np
    from lrlab.experiments.config import load_config
    from lrlab.experiments.engines.population import PopulationEngine
    from lrlab.experiments.plan import build_plan

    plan = build_plan(load_config(sys.argv[1]))
    out = {"devices": jax.device_count()}
    for devices in (1, 2):
        engine = PopulationEngine(devices=devices)
        results = sorted(engine.run(plan, plan.trials), key=lambda r: r.trial.key)
        out[devices] = {
            "chunk": engine._chunk,
            "keys": [r.trial.key for r in results],
            "status": [r.status for r in results],
            "rows": [r.epochs for r in results],
        }
    print(json.dumps(out))
    """
)


def _python(*args: str, cwd, env) -> subprocess.CompletedProcess:
    """``python ARGS`` in a child process that must succeed."""
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_trials_split_over_two_devices_equal_one_device(tmp_path):
    """Three trials (odd: the chunk is padded to an even size) on two XLA CPU devices give the
    one-device numbers, trial by trial (each device runs the same vmapped code)."""
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    (tmp_path / "sharded.py").write_text(SHARDED)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    done = _python("sharded.py", "exp.toml", cwd=tmp_path, env=env)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = out["1"], out["2"]
    assert out["devices"] == 2
    assert (one["chunk"], two["chunk"]) == (3, 4)  # one padded copy on two devices
    assert one["keys"] == two["keys"] and len(one["keys"]) == 3
    assert one["status"] == two["status"] == ["ok"] * 3
    for a, b in zip(one["rows"], two["rows"], strict=True):
        assert [r.keys() for r in a] == [r.keys() for r in b]
        for ra, rb in zip(a, b, strict=True):
            for name, value in ra.items():
                assert rb[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_chunks_are_a_multiple_of_the_devices():
    assert [per_device(n, 2) for n in (1, 2, 5, 500)] == [2, 2, 6, 500]
    assert [per_device(n, 1) for n in (1, 7)] == [1, 7]


def _stored_rows(folder):
    with Store.open(folder) as store:
        return store.epochs()


@pytest.mark.skipif(cpu_cores() < 2, reason="one core: nothing to split over")
def test_lrlab_run_trains_on_every_core_unless_told_otherwise(tmp_path):
    """``lrlab run`` gives JAX a CPU device per core and splits the trials over them; the
    user's ``JAX_NUM_CPU_DEVICES`` or ``XLA_FLAGS`` device count wins. A dense model's rows
    are the same to float32 rounding either way."""
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    split = f"split over {cpu_cores()} devices"
    settings = {
        "every": {},
        "one": {"JAX_NUM_CPU_DEVICES": "1"},
        "flag": {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
    }
    rows = {}
    for name, extra in settings.items():
        env = lrlab_env(tmp_path, **extra)
        if not extra:
            env.pop("JAX_NUM_CPU_DEVICES", None)
        done = run_lrlab("run", "exp.toml", "-o", name, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (split in done.stderr) == (name == "every"), (name, done.stderr[:600])
        rows[name] = _stored_rows(tmp_path / name)
    assert len(rows["every"]) == 3
    assert rows["one"] == rows["flag"]  # one device both ways
    for key, every in rows["every"].items():
        for mine, one in zip(every, rows["one"][key], strict=True):
            assert mine == pytest.approx(one, rel=1e-6, abs=1e-7), key


def test_lrlab_called_from_python_keeps_one_device(tmp_path):
    """``lrlab.cli.main([...])`` from a Python program leaves the program's JAX settings
    alone: it does not own the process."""
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    script = (
        "import jax\n"
        "from lrlab.cli import main\n"
        "code = main(['run', 'exp.toml', '-o', 'out', '-q'])\n"
        "print(code, jax.device_count())\n"
    )
    env = lrlab_env(tmp_path)
    env.pop("JAX_NUM_CPU_DEVICES", None)
    env.pop("XLA_FLAGS", None)
    done = _python("-c", script, cwd=tmp_path, env=env)
    assert done.stdout.split()[-2:] == ["0", "1"]


@pytest.mark.parametrize("value", ["two", "0", "1.5"])
def test_a_bad_device_count_is_one_line_and_nothing_is_written(tmp_path, value):
    """A ``JAX_NUM_CPU_DEVICES`` JAX cannot read is named as itself (it used to surface as
    the model failing to build), before anything is written."""
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    env = lrlab_env(tmp_path, JAX_NUM_CPU_DEVICES=value)
    line = one_error_line(run_lrlab("run", "exp.toml", "-o", "out", cwd=tmp_path, env=env))
    assert line.startswith(f"lrlab: error: JAX_NUM_CPU_DEVICES={value!r} is not a number of CPU")
    assert not (tmp_path / "out").exists()
