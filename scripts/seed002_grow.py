"""Grow seed tutorial 002's Ionosphere claim from 10 to 50 seeds with ``lrlab run --seeds``.

Runs ``examples/seed002_ionosphere.toml`` (10 seeds, as the file says) through the command
line, then grows the same experiment to 50 seeds with ``--seeds 50``, and shows from the
store that the first 10 seeds' trials were reused, not retrained (each keeps its row and
the time it was stored), before printing the grown results table.

    python scripts/seed002_grow.py --out runs/seed002_grow --engine population

``--data`` picks the Ionosphere file (default: the shared copy the tests use,
``$LRLAB_SHARED_DATA`` or ../shared/data beside the repository, when there is one; else the
``ionosphere`` loader, which downloads it once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "seed002_ionosphere.toml"
SHARED_FOLDERS = [
    os.environ.get("LRLAB_SHARED_DATA"),
    REPO.parent / "shared" / "data",
    "/work/shared/data",
]


def shared_ionosphere() -> Path | None:
    """The shared copy of the data (as the tests find it), if there is one."""
    for folder in SHARED_FOLDERS:
        if folder and (Path(folder) / "ionosphere.csv").is_file():
            return Path(folder) / "ionosphere.csv"
    return None


def lrlab(*args: str) -> None:
    """Run the ``lrlab`` command line (this Python's), failing loudly."""
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
    done = subprocess.run([sys.executable, "-m", "lrlab.cli", *args], env=env, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lrlab {' '.join(args)} exited with {done.returncode}")


def stored_rows(store: Path) -> dict[int, tuple[int, float]]:
    """rowid -> (seed, when it was stored), read straight from the SQLite file."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT rowid, seed, stored FROM trials").fetchall()
    finally:
        conn.close()
    return {rowid: (seed, stored) for rowid, seed, stored in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/seed002_grow"))
    parser.add_argument("--engine", default="population")
    parser.add_argument("--seeds", type=int, default=50)
    shared = shared_ionosphere()
    default = f"csv:{shared}" if shared is not None else "ionosphere"
    parser.add_argument("--data", default=default)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    experiment = args.out / "seed002_ionosphere.toml"
    text = EXAMPLE.read_text().replace('dataset = "ionosphere"', f'dataset = "{args.data}"')
    experiment.write_text(text)
    store_dir = args.out / "store"
    common = ("--out", str(store_dir), "--engine", args.engine, "-q")

    t0 = time.perf_counter()
    lrlab("run", str(experiment), *common)
    first = stored_rows(store_dir / "store.sqlite")
    t1 = time.perf_counter()
    lrlab("run", str(experiment), *common, "--seeds", str(args.seeds))
    t2 = time.perf_counter()
    grown = stored_rows(store_dir / "store.sqlite")

    reused = sum(1 for row, value in first.items() if grown.get(row) == value)
    trained = len(grown) - reused
    old_seeds = sorted({seed for seed, _ in first.values()})
    new_seeds = sorted({seed for row, (seed, _) in grown.items() if row not in first})
    print(f"\n# Seed 002, grown from {len(old_seeds)} to {args.seeds} seeds ({args.engine})\n")
    print(
        f"- first run: {len(first)} trials (seeds {old_seeds[0]}-{old_seeds[-1]}), {t1 - t0:.0f} s"
    )
    print(
        f"- `lrlab run --seeds {args.seeds}`: {len(grown)} trials in the store, {reused} reused "
        f"unchanged (of {len(first)}), {trained} trained (seeds {new_seeds[0]}-{new_seeds[-1]}), "
        f"{t2 - t1:.0f} s"
    )
    print()
    lrlab("report", str(store_dir), "--format", "markdown")


if __name__ == "__main__":
    main()
