"""The README's schedule-free comparison, small: the example through the CLI, and its script.

``examples/schedule_free_ionosphere.toml`` (AdamW with constant, cosine and one-cycle vs
ScheduleFreeAdamW at a constant lr, three lrs) runs with few seeds and epochs through
``lrlab run`` and ``lrlab report``; ``scripts/schedule_free.py`` (which prints the README's
tables) runs on both datasets. The new optimizer types' arguments are checked by the file's
schema (one line, exit 2).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from datafiles import IONOSPHERE_CSV

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "schedule_free_ionosphere.toml"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "jax", "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _small_example(tmp_path: Path, seeds: int, epochs: int) -> Path:
    text = EXAMPLE.read_text()
    for pattern, new in [
        (r"^seeds = 20$", f"seeds = {seeds}"),
        (r"^epochs = 50$", f"epochs = {epochs}"),
        (r'^dataset = "ionosphere".*$', f'dataset = "csv:{IONOSPHERE_CSV}"'),
    ]:
        text, count = re.subn(pattern, new, text, flags=re.MULTILINE)
        assert count == 1, pattern
    path = tmp_path / "schedule_free.toml"
    path.write_text(text)
    return path


def test_the_example_runs_through_the_cli_and_reports(tmp_path):
    from lrlab.experiments.store import Store

    _small_example(tmp_path, seeds=3, epochs=2)
    run = _run("-m", "lrlab.cli", "run", "schedule_free.toml", "-o", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "36 to run with population engine" in " ".join(run.stderr.split())
    with Store.open(tmp_path / "out") as store:
        trials = store.trials()
    assert len(trials) == 36 and {t.status for t in trials} == {"ok"}
    assert {t.engine for t in trials} == {"population"}
    free = [t for t in trials if "schedule_free" in t.config]
    assert len(free) == 9 and all(t.final["val_loss"] > 0 for t in free)
    report = _run("-m", "lrlab.cli", "report", "out", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    for config in ("constant / schedule_free / lr=0.003", "one_cycle / adamw / lr=0.01"):
        assert config in report.stdout


def test_the_readme_script_prints_both_datasets_tables(tmp_path):
    script = _run(
        str(REPO / "scripts" / "schedule_free.py"),
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--ionosphere",
        f"csv:{IONOSPHERE_CSV}",
        "--out",
        str(tmp_path / "runs"),
        cwd=tmp_path,
    )
    assert script.returncode == 0, script.stderr
    out = script.stdout
    assert out.startswith("# Schedule-free vs a schedule, 2 seeds, population engine")
    for dataset in ("ionosphere", "digits"):
        assert f"## {dataset} (1 epochs)" in out
    rows = [line for line in out.splitlines() if re.match(r"\| 0\.0\d+ \| ", line)]
    assert len(rows) == 2 * 2 * 12  # datasets x metrics x (3 lrs x 4 configs)
    assert sum("| baseline |" in row for row in rows) == 2 * 2 * 3


def test_the_new_types_arguments_are_checked(tmp_path):
    text = EXAMPLE.read_text().replace(
        'weight_decay = 0.004, schedules = ["constant"] }',
        'weight_decay = 0.004, beta_1 = 0.0, schedules = ["constant"] }',
    )
    (tmp_path / "bad.toml").write_text(text)
    bad = _run("-m", "lrlab.cli", "run", "bad.toml", "-o", "out", cwd=tmp_path)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "optimizers.schedule_free.beta_1" in lines[0], lines
    assert not (tmp_path / "out").exists()
