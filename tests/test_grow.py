"""Experiments that grow: stored trials are reused, changes to them refused by name.

Counts of trained and reused trials come from the run's summary and from the store (a
reused trial keeps its stored start time).
"""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.errors import LrlabError
from lrlab.experiments.config import load_config
from lrlab.experiments.growth import grow_command, grown_seeds
from lrlab.experiments.identity import code_fingerprint
from lrlab.experiments.plan import build_plan, count_trials
from lrlab.experiments.runner import run_experiment
from lrlab.experiments.store import Store, StoreError
from lrlab_process import run_lrlab as lrlab_cli

EXP = f"""
[experiment]
seeds = 2
engine = "population"

[data]
dataset = "csv:{IONOSPHERE_CSV}"
validation = 0.33

[model]
spec = 'mlp(hidden=[4])'

[training]
epochs = 1
batch_size = 47

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
constant = "constant(0.1)"
time_decay = "time_decay(0.1, decay=0.002)"
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def started(out: Path) -> dict[str, float]:
    """Every stored trial (of any config) -> when it was stored, keyed by its row."""
    conn = sqlite3.connect(out / "store.sqlite")
    try:
        rows = conn.execute("SELECT rowid, stored FROM trials").fetchall()
    finally:
        conn.close()
    return {f"row{rowid}": stored for rowid, stored in rows}


def labels_in(out: Path) -> set[str]:
    with Store.open(out) as store:
        return {t.config for t in store.trials(every=True)}


def run(tmp_path: Path, text: str, **kw):
    return run_experiment(write(tmp_path, text), out=tmp_path / "out", quiet=True, **kw)


@pytest.fixture
def grown(tmp_path):
    """The experiment run once: 2 configs x 2 seeds."""
    summary = run(tmp_path, EXP)
    assert (summary.ran, summary.skipped) == (4, 0)
    return tmp_path


def reused_and_trained(before: dict[str, float], after: dict[str, float]) -> tuple[int, int]:
    """A reused trial keeps its row and the time it was stored (under any label)."""
    reused = sum(1 for row, stored in after.items() if before.get(row) == stored)
    return reused, len(after) - reused


def test_more_seeds_train_only_the_new_ones(grown):
    before = started(grown / "out")
    summary = run(grown, EXP.replace("seeds = 2", "seeds = 3"))
    assert (summary.total, summary.skipped, summary.ran) == (6, 4, 2)
    assert reused_and_trained(before, started(grown / "out")) == (4, 2)


def test_a_new_schedule_trains_only_its_trials(grown):
    before = started(grown / "out")
    summary = run(grown, EXP + 'cosine = "cosine(0.1, decay_steps=10)"\n')
    assert (summary.skipped, summary.ran) == (4, 2)
    assert reused_and_trained(before, started(grown / "out")) == (4, 2)


def test_a_new_optimizer_relabels_and_reuses_the_stored_configs(grown):
    before = started(grown / "out")
    text = EXP.replace(
        'sgd = { type = "sgd", momentum = 0.8 }',
        'sgd = { type = "sgd", momentum = 0.8 }\nadam = { type = "adam" }',
    )
    summary = run(grown, text)
    assert (summary.total, summary.skipped, summary.ran) == (8, 4, 4)
    assert reused_and_trained(before, started(grown / "out")) == (4, 4)
    assert labels_in(grown / "out") == {
        "constant / sgd",
        "constant / adam",
        "time_decay / sgd",
        "time_decay / adam",
    }
    with Store.open(grown / "out") as store:
        assert store.integrity_ok()
        assert len(store.epochs()) == 8  # the epochs moved with their trials


def test_a_new_lr_reuses_the_trials_of_the_old_one(grown):
    text = EXP.replace("seeds = 2", "seeds = 2\nlrs = [0.1]")
    assert run(grown, text).ran == 0  # lr 0.1 is the schedules' own peak: the same trials
    before = started(grown / "out")
    summary = run(grown, text.replace("lrs = [0.1]", "lrs = [0.1, 0.05]"))
    assert (summary.total, summary.skipped, summary.ran) == (8, 4, 4)
    assert reused_and_trained(before, started(grown / "out")) == (4, 4)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("epochs = 1", "epochs = 2", "training.epochs changed from 1 to 2"),
        ("mlp(hidden=[4])", "mlp(hidden=[5])", "model.spec changed from 'mlp(hidden=[4])'"),
        ("validation = 0.33", "validation = 0.3", "data.validation changed from 0.33 to 0.3"),
        ('engine = "population"', 'engine = "population"\nvary = ["init"]', "vary changed from"),
        (
            "validation = 0.33",
            'validation = 0.33\nsplit = "tail"',
            "data.split changed from 'stratified' to 'tail'",
        ),
        (
            '"constant(0.1)"',
            '"constant(0.2)"',
            "schedules.constant changed from 'constant(0.1)' to 'constant(0.2)'",
        ),
        ("momentum = 0.8", "momentum = 0.5", "optimizers.sgd.momentum changed from 0.8 to 0.5"),
    ],
)
def test_a_change_to_stored_trials_is_refused_naming_its_field(grown, old, new, named):
    before = started(grown / "out")
    with pytest.raises(StoreError) as err:
        run(grown, EXP.replace(old, new))
    message = str(err.value)
    assert named in message and "\n" not in message
    assert "restore it, or rerun with --new" in message
    assert started(grown / "out") == before


def test_changed_data_is_refused(grown, tmp_path):
    rows = IONOSPHERE_CSV.read_text().splitlines()
    edited = tmp_path / "iono.csv"
    edited.write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(StoreError, match="the data's contents changed"):
        run(grown, EXP.replace(str(IONOSPHERE_CSV), str(edited)))


def test_a_removed_config_stays_stored_out_of_the_report(grown):
    from lrlab.analysis.results import results_from_store
    from lrlab.experiments.export import export_trials

    text = EXP.replace('time_decay = "time_decay(0.1, decay=0.002)"\n', "")
    assert run(grown, text).ran == 0
    out = grown / "out"
    assert [row.config for row in results_from_store(out)] == ["constant"]
    assert "time_decay" not in export_trials(out, "csv")
    assert export_trials(out, "csv", every=True).count("time_decay") >= 2
    assert len(started(out)) == 4
    # put back: nothing to train, the report covers both again
    assert run(grown, EXP).ran == 0
    assert len(list(results_from_store(out))) == 2


def test_seeds_grow_from_the_command_line_and_are_recorded(grown):
    out = grown / "out"
    assert run(grown, EXP, seeds=3).ran == 2
    with Store.open(out) as store:
        assert store.meta()["seeds"] == [0, 1, 2]
    summary = run(grown, EXP)  # a plain rerun keeps the grown seeds
    assert (summary.total, summary.ran) == (6, 0)
    with pytest.raises(LrlabError, match="already has 3 seeds"):
        run(grown, EXP, seeds=2)


def test_an_old_store_opens_reports_and_resumes(grown):
    """A store written before experiments grew has no identity or seeds in its metadata."""
    from lrlab.analysis.results import results_from_store

    out = grown / "out"
    conn = sqlite3.connect(out / "store.sqlite")
    with conn:
        conn.execute("DELETE FROM meta WHERE key IN ('identity', 'seeds')")
        conn.execute("DELETE FROM epochs WHERE trial = 'time_decay|seed=1'")
        conn.execute("DELETE FROM trials WHERE key = 'time_decay|seed=1'")
    conn.close()
    assert len(list(results_from_store(out))) == 2
    summary = run(grown, EXP.replace("seeds = 2", "seeds = 3"))
    assert (summary.skipped, summary.ran) == (3, 3)
    with Store.open(out) as store:
        assert "identity" in store.meta()
    with pytest.raises(StoreError, match="training.epochs changed from 1 to 2"):
        run(grown, EXP.replace("epochs = 1", "epochs = 2"))


def test_a_stopped_grown_run_resumes_paired(grown):
    """Seed-major: stopping after 3 of the 4 new trials leaves whole seeds before it.

    (The Keras engine stores one trial at a time; the population engine stores a chunk's
    trials in one transaction, so a stop never lands inside one.)"""
    out = grown / "out"
    text = EXP.replace("seeds = 2", "seeds = 4")
    seen = []

    def stop(result):
        seen.append(result.trial.seed)
        if len(seen) == 3:
            raise KeyboardInterrupt

    from lrlab.experiments.runner import run_plan

    config = load_config(write(grown, text))
    plan = build_plan(config, seeds=[0, 1, 2, 3])
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, out=out, engine="keras", quiet=True, on_result=stop)
    assert seen == [2, 2, 3]
    assert run(grown, text).ran == 1


MODEL = textwrap.dedent(
    """
    import keras

    def net(input_shape, n_outputs):
        inputs = keras.Input(input_shape)
        x = keras.layers.Dense({units}, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(n_outputs, activation="sigmoid")(x))
    """
)


def test_an_edited_model_function_is_refused_naming_function_and_file(tmp_path, monkeypatch):
    module = tmp_path / "grow_model_mod.py"
    module.write_text(MODEL.format(units=4))
    monkeypatch.syspath_prepend(str(tmp_path))
    text = EXP.replace("mlp(hidden=[4])", "grow_model_mod:net")
    run(tmp_path, text)
    first = code_fingerprint("grow_model_mod:net")
    module.write_text(MODEL.format(units=1))
    sys.modules.pop("grow_model_mod", None)
    assert code_fingerprint("grow_model_mod:net") != first
    with pytest.raises(StoreError) as err:
        run(tmp_path, text)
    assert "the code of grow_model_mod:net" in str(err.value)
    assert str(module) in str(err.value)


def test_plans_are_sized_from_the_file(tmp_path):
    schedules = "".join(f's{i} = "constant(0.{i % 9 + 1})"\n' for i in range(1000))
    text = EXP.replace("seeds = 2", "seeds = 10000").split("[schedules]")[0]
    config = load_config(write(tmp_path, text + "[schedules]\n" + schedules))
    assert count_trials(config) == 10_000_000
    with pytest.raises(LrlabError, match=r"10,000,000 trials .* --yes"):
        run_experiment(config, out=tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
    plan = build_plan(config, check_model=False)  # lazy: building it trains nothing big
    assert plan.n_trials == 10_000_000 and len(plan.points) == 1000
    first = next(plan.chunks(5000))
    assert [t.seed for t in first[999:1001]] == [0, 1]


def test_grow_command_and_seed_growth():
    assert (
        grow_command("runs/a b", 30, "exp.toml") == "lrlab run exp.toml --out 'runs/a b' --seeds 30"
    )
    assert grown_seeds([0, 1], [0, 1, 2]) == [0, 1, 2]
    assert grown_seeds([3], [0], 4) == [3, 0, 1, 2]


def test_cli_grows_refuses_and_exports(tmp_path):
    write(tmp_path, EXP)
    assert lrlab_cli("run", "exp.toml", "-q", cwd=tmp_path).returncode == 0
    grow = lrlab_cli("run", "exp.toml", "-q", "--seeds", "3", cwd=tmp_path)
    assert grow.returncode == 0, grow.stderr
    with Store.open(tmp_path / "runs" / "exp") as store:
        assert store.count() == 6 and store.meta()["seeds"] == [0, 1, 2]
    write(tmp_path, EXP.replace("epochs = 1", "epochs = 2"))
    refused = lrlab_cli("run", "exp.toml", "-q", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "training.epochs changed from 1 to 2" in refused.stderr
    write(
        tmp_path,
        EXP.replace("seeds = 2", "seeds = 10000").replace(
            "[schedules]", "[schedules]\n" + "".join(f's{i} = "constant(0.1)"\n' for i in range(30))
        ),
    )
    big = lrlab_cli("run", "exp.toml", "--out", "big", cwd=tmp_path)
    assert big.returncode == 2 and "--yes" in big.stderr
    assert not (tmp_path / "big").exists()
    everything = lrlab_cli("export", "runs/exp", "--all", cwd=tmp_path)
    assert everything.returncode == 0 and everything.stdout.count("seed=2") == 2


def test_a_verdict_that_wants_more_seeds_prints_the_command(capsys):
    import numpy as np

    from lrlab.analysis.results import build_table
    from lrlab.cli import _print_grow_command

    draw = np.random.default_rng(0)
    base = {s: 0.8 + 0.05 * draw.standard_normal() for s in range(5)}
    other = {s: v + 0.01 + 0.02 * draw.standard_normal() for s, v in base.items()}
    table = build_table(
        {"a": base, "b": other},
        ["a", "b"],
        metric="val_accuracy",
        higher_is_better=True,
        baseline="a",
    )
    needed = table["b"].seeds_needed
    assert needed is not None and needed > 5 and table["b"].better is None
    _print_grow_command(table, Path("runs/x"), Path("exp.toml"))
    printed = capsys.readouterr().out
    assert printed == f"to add seeds: lrlab run exp.toml --out runs/x --seeds {needed}\n"


SCHEDULE_FN = """
def halve(epoch, lr):
    return lr * {factor} ** epoch


def other(epoch, lr):
    return lr
"""


def test_an_edited_schedule_function_is_refused_and_a_new_one_welcome(tmp_path):
    module = tmp_path / "grow_sched_mod.py"
    module.write_text(SCHEDULE_FN.format(factor=0.5))
    text = EXP + 'mine = { function = "grow_sched_mod:halve", lr = 0.1 }\n'
    assert run(tmp_path, text).ran == 6
    added = text + 'flat = { function = "grow_sched_mod:other", lr = 0.1 }\n'
    assert run(tmp_path, added).ran == 2  # a new function is a new config
    module.write_text(SCHEDULE_FN.format(factor=0.25))
    sys.modules.pop("grow_sched_mod", None)
    with pytest.raises(StoreError) as err:
        run(tmp_path, added)
    assert "the code of grow_sched_mod:halve" in str(err.value)
    assert str(module) in str(err.value)
