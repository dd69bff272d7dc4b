"""The population engine over several devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lrlab.experiments.engines.population_chunks import per_device

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


def test_trials_split_over_two_devices_equal_one_device(tmp_path):
    """Three trials (odd: the chunk is padded to an even size) on two XLA CPU devices give the
    one-device numbers, trial by trial (each device runs the same vmapped code)."""
    (tmp_path / "exp.toml").write_text(
        textwrap.dedent(
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
    )
    (tmp_path / "sharded.py").write_text(SHARDED)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    done = subprocess.run(
        [sys.executable, "sharded.py", "exp.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
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
