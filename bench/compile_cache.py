"""What JAX's persistent compilation cache saves ``lrlab run`` with the Keras engine.

Runs one small experiment (breast cancer, MLP, 8 trials of 3 epochs, ``engine = "keras"``)
three times as a user would, each in a fresh process: with the cache off, with an empty
cache (cold), and again with that cache filled (warm). Prints the ratios against the run
without the cache, and checks that all three stored the same final metrics.

    KERAS_BACKEND=jax .venv/bin/python bench/compile_cache.py
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = """
[experiment]
seeds = 4
engine = "keras"
[data]
dataset = "breast_cancer"
validation = 0.25
[model]
spec = "mlp(hidden=[16])"
[training]
epochs = 3
batch_size = 32
[schedules]
constant = "constant(0.05)"
cosine = "cosine(0.05, decay_steps=39)"
"""


def run(folder: Path, out: str, cache: str) -> float:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_COMPILATION_CACHE_DIR": cache}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "run", "exp.toml", "--out", out, "--quiet"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def finals(folder: Path, out: str) -> list:
    with sqlite3.connect(folder / out / "store.sqlite") as db:
        return db.execute("SELECT key, final FROM trials ORDER BY key").fetchall()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "exp.toml").write_text(EXPERIMENT)
        cache = str(folder / "jax-cache")
        off = run(folder, "off", "")
        cold = run(folder, "cold", cache)
        warm = run(folder, "warm", cache)
        same = finals(folder, "off") == finals(folder, "cold") == finals(folder, "warm")
    print("lrlab run, 8 Keras-engine trials, each run a fresh process")
    print("cache off            x1.00")
    print(f"cache on, cold       x{off / cold:.2f} faster")
    print(f"cache on, warm       x{off / warm:.2f} faster")
    print(f"same stored results: {same}")


if __name__ == "__main__":
    main()
