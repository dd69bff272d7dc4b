"""Python functions as schedules: Keras' LearningRateScheduler, torch's LambdaLR, optax,
experiment files (``function = "mymod:fn"``) and reports that never import user code."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrlab.keras
from lrlab.errors import LrlabError
from lrlab.experiments.functions import resolve_function
from lrlab.schedules import Table, from_dict, tabulate
from lrlab.spec import parse
from lrlab_process import lrlab_env, run_lrlab
from readme_console import console_blocks, console_env, readme_section, replay

SRC = Path(__file__).resolve().parents[1] / "src"

# the seed tutorial's step_decay (seeds 000/002/003) and seed 001's custom_lr_scheduler
MYMOD = """
import math


def step_decay(epoch):
    initial_lrate = 0.1
    drop = 0.5
    epochs_drop = 10.0
    lrate = initial_lrate * math.pow(drop, math.floor((1 + epoch) / epochs_drop))
    return lrate


def custom_lr_scheduler(epoch, lr):
    if epoch % 10 == 0 and epoch != 0:
        return lr * 0.5
    return lr
"""
namespace: dict = {}
exec(compile(MYMOD, "mymod.py", "exec"), namespace)
step_decay, custom_lr_scheduler = namespace["step_decay"], namespace["custom_lr_scheduler"]


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] + 0.3 * x[:, 1] > 0).astype("float32")


def _model(lr=0.1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="binary_crossentropy")
    return model


def keras_history(fn, epochs, lr=0.1):
    """The lr per epoch Keras' own LearningRateScheduler gives ``fn`` in a real fit."""
    x, y = _data()
    history = _model(lr).fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        verbose=0,
        callbacks=[keras.callbacks.LearningRateScheduler(fn)],
    )
    return history.history["learning_rate"]


CALLS: list[int] = []


def recursive(epoch, lr):
    CALLS.append(epoch)
    return lr * 0.9 if epoch else lr


# --------------------------------------------------------------------------- Keras
@pytest.mark.parametrize("fn", [step_decay, custom_lr_scheduler, recursive])
def test_scheduler_with_a_function_is_keras_learning_rate_scheduler(fn):
    epochs = 23
    expected = keras_history(fn, epochs)
    x, y = _data()
    scheduler = lrlab.keras.Scheduler(fn, per="epoch")
    history = _model().fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[scheduler])
    assert history.history["learning_rate"] == expected
    assert isinstance(scheduler.schedule, Table) and len(scheduler.schedule.values) == epochs
    assert scheduler.lrs == list(np.repeat(expected, 4))  # 64 rows / 16 per batch
    # the table is what tabulate gives, and it is a spec like any other
    assert tabulate(fn, epochs, lr=0.1) == scheduler.schedule == parse(str(scheduler.schedule))


def test_per_step_passes_the_update_index_and_plateau_composes():
    x, y = _data()
    fn = lambda t: 0.1 / (1 + t)  # noqa: E731
    scheduler = lrlab.keras.Scheduler(fn, per="step")
    _model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[scheduler])
    assert scheduler.lrs == [float(np.float32(0.1 / (1 + t))) for t in range(8)]

    tiny = lambda epoch: 1e-9  # noqa: E731  # nothing is learnt: the loss stalls
    scheduler = lrlab.keras.Scheduler(
        tiny, per="epoch", plateau="plateau(factor=0.5, patience=1)", monitor="loss"
    )
    history = _model().fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[scheduler])
    ratios = np.array(history.history["learning_rate"]) / 1e-9
    assert scheduler.state.reductions >= 2
    assert np.allclose(np.log2(ratios), np.round(np.log2(ratios)), atol=1e-6) and ratios[-1] < 1
    assert all(b <= a for a, b in zip(ratios, ratios[1:], strict=False))


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda epoch: 0.1 / (epoch - 2) ** 2, "<lambda> at epoch 2 raised ZeroDivisionError"),
        (lambda epoch: "0.1", "<lambda> at epoch 0 returned '0.1', not a number"),
        (lambda epoch: math.nan if epoch == 3 else 0.1, "<lambda> at epoch 3 returned nan"),
        (lambda epoch: math.inf, "<lambda> at epoch 0 returned inf"),
        (lambda epoch: 0.1 - 0.05 * epoch, "<lambda> at epoch 3 returned -0.05"),
        (lambda epoch, lr, val_loss: lr, "needs 3 arguments (epoch, lr, val_loss)"),
    ],
)
def test_bad_functions_are_one_line_naming_function_epoch_and_value(fn, message):
    with pytest.raises(LrlabError, match=r"^[^\n]+$") as err:
        tabulate(fn, 10, lr=0.1)
    assert message in str(err.value)
    x, y = _data()
    with pytest.raises(LrlabError, match="<lambda>"):
        cb = lrlab.keras.Scheduler(fn, per="epoch")
        _model().fit(x, y, epochs=10, batch_size=64, verbose=0, callbacks=[cb])


# --------------------------------------------------------------------------- table
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 10.0, allow_subnormal=False), min_size=1, max_size=40),
    st.sampled_from(["step", "epoch"]),
)
def test_table_round_trips_and_holds_its_last_value(values, unit):
    s = Table(values, unit=unit)
    assert parse(str(s)) == s == from_dict(s.to_dict())
    t = np.arange(len(values) + 5)
    assert s(t, np).tolist() == [*values, *[values[-1]] * 5]
    fn = lambda i: values[min(i, len(values) - 1)]  # noqa: E731
    assert tabulate(fn, len(values), unit=unit) == s


# --------------------------------------------------------------------------- torch, optax
def test_torch_factor_is_lambda_lr_and_lr_functions_resume():
    import torch

    import lrlab.torch

    def run(make, steps=12, groups=False):
        params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
        groups_ = [{"params": [params[0]], "lr": 0.05}, {"params": [params[1]]}]
        opt = torch.optim.SGD(groups_ if groups else params, lr=0.1)
        sched = make(opt)
        out = []
        for _ in range(steps):
            out.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        return out, opt, sched

    factor = lambda t: 0.5 ** (t // 3)  # noqa: E731
    golden = run(lambda o: torch.optim.lr_scheduler.LambdaLR(o, factor), groups=True)[0]
    mine = run(lambda o: lrlab.torch.scheduler(o, factor, kind="factor"), groups=True)[0]
    assert np.allclose(mine, golden, rtol=1e-12, atol=0)

    full, _, _ = run(lambda o: lrlab.torch.scheduler(o, recursive, kind="lr"))
    assert [row[0] for row in full] == list(tabulate(recursive, 12, unit="step", lr=0.1).values)
    _, opt, sched = run(lambda o: lrlab.torch.scheduler(o, recursive, kind="lr"), steps=5)
    state = sched.state_dict()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    resumed = lrlab.torch.scheduler(opt2, recursive, kind="lr")
    CALLS.clear()
    resumed.load_state_dict(state)
    after = []
    for _ in range(7):
        after.append(opt2.param_groups[0]["lr"])
        opt2.step()
        resumed.step()
    assert after == [row[0] for row in full[5:]] and min(CALLS) == 6  # continued, not redone
    with pytest.raises(LrlabError, match="kind='factor'"):
        lrlab.torch.scheduler(opt2, factor)


def test_optax_traceable_functions_pass_through_and_others_are_tabulated():
    import jax.numpy as jnp

    import lrlab.optax

    smooth = lambda count: 0.1 * jnp.exp(-0.01 * count)  # noqa: E731
    assert lrlab.optax.schedule(smooth) is smooth
    with pytest.raises(LrlabError, match="total_steps="):
        lrlab.optax.schedule(step_decay)
    lr = lrlab.optax.schedule(step_decay, total_steps=30)
    assert [float(lr(t)) for t in (0, 8, 9, 29, 40)] == [
        float(np.float32(step_decay(t))) for t in (0, 8, 9, 29, 29)
    ]


# --------------------------------------------------------------------------- the resolver
@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("sys:exit", "standard library"),
        ("os:fork", "standard library"),
        ("lrlab.cli:main", "lrlab itself"),
        ("helpers:Model", "is a class, not a function"),
        ("helpers:deep", "imported into helpers"),
        ("helpers:handler", "is partial, not a function"),
        ("helpers:nothing", "helpers has no function 'nothing'"),
        ("missing_mod_xyz:f", "cannot import 'missing_mod_xyz'"),
    ],
)
def test_the_resolver_refuses_all_but_plain_user_functions(tmp_path, reference, message):
    (tmp_path / "helpers.py").write_text(
        "import functools\nfrom json import loads as deep\n"
        "class Model:\n    pass\nhandler = functools.partial(print, 1)\n"
    )
    with pytest.raises(LrlabError, match=message):
        resolve_function(reference, tmp_path)


def test_the_experiment_folder_comes_before_sys_path(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "twin_mod.py").write_text("def f(epoch):\n    return 0.1\n")
    (tmp_path / "b" / "twin_mod.py").write_text("def f(epoch):\n    return 0.2\n")
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.delitem(sys.modules, "twin_mod", raising=False)
    assert resolve_function("twin_mod:f", tmp_path / "b")(0) == 0.2
    assert resolve_function("twin_mod:f", tmp_path / "b")(0) == 0.2  # kept, not reloaded


# --------------------------------------------------------------------------- the CLI
EXPERIMENT = """\
[experiment]
seeds = 1
engine = "{engine}"
[data]
dataset = "iris"
[model]
spec = "mlp(hidden=[8])"
[training]
epochs = {epochs}
batch_size = 32
[schedules]
{schedules}
"""


def _lrlab(*args, cwd, pythonpath=str(SRC)):
    return run_lrlab(*args, cwd=cwd, env=lrlab_env(PYTHONPATH=pythonpath), timeout=600)


def test_bad_schedule_functions_exit_2_with_one_line_and_store_nothing(tmp_path):
    (tmp_path / "mymod.py").write_text(
        MYMOD
        + textwrap.dedent(
            """
            def boom(epoch):
                raise RuntimeError("no lr today")

            def text(epoch):
                return "fast"

            def nan(epoch):
                return float("nan") if epoch == 2 else 0.1

            def negative(epoch):
                return 0.1 - 0.05 * epoch

            def metric(epoch, lr, logs):
                return lr

            class Klass:
                pass
            """
        )
    )
    cases = {
        'function = "mymod:boom"': "mymod:boom at epoch 0 raised RuntimeError: no lr today",
        'function = "mymod:text"': "mymod:text at epoch 0 returned 'fast', not a number",
        'function = "mymod:nan"': "mymod:nan at epoch 2 returned nan",
        'function = "mymod:negative"': "mymod:negative at epoch 3 returned -0.05",
        'function = "mymod:metric", lr = 0.1': "mymod:metric needs 3 arguments",
        'function = "mymod:custom_lr_scheduler"': "needs the lr training starts from",
        'function = "sys:exit"': "sys is part of Python's standard library",
        'function = "mymod:Klass"': "mymod:Klass is a class, not a function",
    }
    for entry, message in cases.items():
        (tmp_path / "exp.toml").write_text(
            EXPERIMENT.format(engine="auto", epochs=5, schedules=f"mine = {{ {entry} }}")
        )
        done = _lrlab("run", "exp.toml", cwd=tmp_path)
        assert done.returncode == 2, (entry, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


def _stored_lrs(folder: Path) -> dict[str, list[float]]:
    with sqlite3.connect(folder / "store.sqlite") as db:
        rows = db.execute("SELECT trial, epoch, lr FROM epochs ORDER BY trial, epoch").fetchall()
    out: dict[str, list[float]] = {}
    for trial, _, lr in rows:
        out.setdefault(trial.split("|")[0], []).append(lr)
    return out


@pytest.mark.parametrize("engine", ["keras", "population"])
def test_seed_functions_run_in_lrlab_run_as_keras_runs_them(tmp_path, engine):
    """Done-when: mymod.py beside the experiment; stored lrs == Keras' own history; the
    HTML report renders in a fresh process where mymod cannot be imported."""
    epochs = 22
    (tmp_path / "mymod.py").write_text(MYMOD)
    schedules = (
        'step = { function = "mymod:step_decay" }\n'
        'custom = { function = "mymod:custom_lr_scheduler", lr = 0.1 }\n'
    )
    (tmp_path / "exp.toml").write_text(
        EXPERIMENT.format(engine=engine, epochs=epochs, schedules=schedules)
    )
    done = _lrlab("run", "exp.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stored = _stored_lrs(tmp_path / "runs" / "exp")
    assert stored["step"] == keras_history(step_decay, epochs)
    assert stored["custom"] == keras_history(custom_lr_scheduler, epochs, lr=0.1)
    with sqlite3.connect(tmp_path / "runs" / "exp" / "store.sqlite") as db:
        specs = dict(db.execute("SELECT config, spec FROM trials").fetchall())
        params = [r[0] for r in db.execute("SELECT params FROM trials")]
    assert specs["step"].startswith("table([0.1, ") and '"function": "mymod:step_decay"' in str(
        params
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = subprocess.run(
        [sys.executable, "-c", "import mymod"], cwd=elsewhere, capture_output=True, text=True
    )
    assert probe.returncode == 1  # mymod is not importable from there
    (tmp_path / "mymod.py").unlink()  # and not at all any more
    report = _lrlab("report", str(tmp_path / "runs" / "exp"), "--html", "r.html", cwd=elsewhere)
    assert report.returncode == 0, report.stderr
    assert "mymod:step_decay: table([0.1, 0.1, " in (elsewhere / "r.html").read_text()
    curves = _drawn_curves(tmp_path / "runs" / "exp", cwd=elsewhere)
    spe = len(curves["step"]) // epochs
    assert curves["step"][spe - 1 :: spe] == pytest.approx(stored["step"], rel=1e-7)


def test_registered_classes_render_in_a_fresh_process(tmp_path):
    """A class registered with lrlab.schedules.register trains through lrlab.compare; the
    report, in a process that never imported it, draws its curve from the store."""
    (tmp_path / "custommod.py").write_text(
        textwrap.dedent(
            """
            import dataclasses
            from lrlab.schedules import Schedule, register

            @register("hold_then_decay")
            @dataclasses.dataclass(frozen=True)
            class HoldThenDecay(Schedule):
                lr: float
                hold: int = 20

                @property
                def peak(self):
                    return self.lr

                def _value(self, t, ops):
                    return ops.where(t < self.hold, self.lr, self.lr * 0.1)
            """
        )
    )
    script = textwrap.dedent(
        """
        import custommod, lrlab
        lrlab.compare("mlp(hidden=[4])", "iris", {"mine": "hold_then_decay(0.1)",
                      "fn": lambda epoch: 0.1 / (1 + epoch)}, seeds=1, epochs=3,
                      out="out", quiet=True, engine="keras")
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}", "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report = _lrlab("report", str(tmp_path / "out"), "--html", "r.html", cwd=elsewhere)
    assert report.returncode == 0, report.stderr
    curves = _drawn_curves(tmp_path / "out", cwd=elsewhere)
    spe = len(curves["mine"]) // 3
    assert curves["mine"] == [0.1] * len(curves["mine"])  # hold=20 > 3 epochs
    assert curves["fn"] == pytest.approx(np.repeat([0.1, 0.05, 0.1 / 3], spe))


def _drawn_curves(folder: Path, cwd: Path) -> dict[str, list[float]]:
    """The lr curves the report's figure draws, in a fresh process without user code."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from lrlab.reporting.data import load_report_data
        from lrlab.reporting.figures import lr_figure
        fig = lr_figure(load_report_data({str(folder)!r}))
        lines = [ln for ln in fig.axes[0].get_lines() if (ln.get_gid() or "").startswith("curve:")]
        assert not {{"mymod", "custommod"}} & set(sys.modules)
        print(json.dumps({{ln.get_gid()[6:]: list(map(float, ln.get_ydata())) for ln in lines}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- README
@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the README uses sqlite3")
def test_readme_function_section_outputs_are_what_the_cli_prints(tmp_path):
    blocks = console_blocks(readme_section("Your own schedule: a Python function"))
    assert len(blocks) == 1 and len(blocks[0]) == 5
    work = tmp_path / "work"
    work.mkdir()
    replay(blocks, work, console_env(tmp_path))


def test_long_function_tables_validate_again_from_the_canonical_settings():
    """A store re-validates its settings (store.config()): a table longer than a typed
    spec may be is read back, with the function's name and no import of it."""
    from lrlab.experiments.config import config_from_dict

    raw = {
        "data": {"dataset": "iris"},
        "model": {"spec": "mlp(hidden=[4])"},
        "training": {"epochs": 2000, "batch_size": 32},
        "schedules": {"mine": {"function": lambda epoch: 0.1 / (1 + 0.001 * epoch)}},
    }
    config = config_from_dict(raw)
    entry = config.schedules["mine"]
    assert len(entry["spec"]) > 4096 and entry["function"].endswith("<lambda>")
    again = config_from_dict(config.canonical())
    assert again.canonical() == config.canonical()
    assert again.parsed_schedule("mine")[0](1999) == 0.1 / (1 + 0.001 * 1999)
