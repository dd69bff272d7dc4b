"""The experiment file: validation with one-line errors, the grid, lr rescaling, the hash."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.experiments.config import ConfigError, load_config
from lrlab.experiments.plan import build_plan

IONO = str(IONOSPHERE_CSV)

BASE = f"""
[experiment]
seeds = 3

[data]
dataset = "csv:{IONO}"
validation = 0.33

[model]
spec = 'mlp(hidden=[8])'

[training]
epochs = 2
batch_size = 28

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
constant = "constant(0.1)"
time_decay = "time_decay(0.1, decay=0.002)"
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def plan_of(tmp_path: Path, text: str):
    return build_plan(load_config(write(tmp_path, text)), check_model=False)


def test_valid_file_defaults_and_grid(tmp_path):
    plan = plan_of(tmp_path, BASE)
    cfg = plan.config
    assert cfg.seeds == [0, 1, 2]
    assert cfg.data.split == "stratified" and cfg.data.standardize is True
    assert plan.labels == ["constant", "time_decay"]
    assert plan.baseline == "constant" and plan.metric == "val_accuracy"
    assert len(plan.trials) == 6
    # seed-major order: every config of seed 0 before seed 1
    assert [(t.config, t.seed) for t in plan.trials[:3]] == [
        ("constant", 0),
        ("time_decay", 0),
        ("constant", 1),
    ]
    assert len({t.key for t in plan.trials}) == 6
    # 351 rows, 0.33 validation -> 235 training rows (Keras' floor rule) -> 9 batches of 28
    assert plan.steps_per_epoch == 9
    t = plan.trials[1]
    assert t.optimizer_params == {"type": "sgd", "momentum": 0.8, "nesterov": False}
    np.testing.assert_allclose(plan.lr_table(t), 0.1 / (1 + 0.002 * np.arange(18)))


def test_epoch_unit_repeats_the_epoch_value(tmp_path):
    text = BASE.replace("batch_size = 28", 'batch_size = 28\nschedule_unit = "epoch"')
    plan = plan_of(tmp_path, text)
    table = plan.lr_table(plan.trials[1])
    np.testing.assert_allclose(table[:9], 0.1)
    np.testing.assert_allclose(table[9:], 0.1 / 1.002)


def test_lrs_rescale_each_schedule_to_peak_at_lr(tmp_path):
    text = BASE.replace("seeds = 3", "seeds = 1\nlrs = [0.01, 0.1, 0.5]").replace(
        'constant = "constant(0.1)"', 'warm = "warmup(4, constant(0.2))"'
    )
    plan = plan_of(tmp_path, text)
    assert plan.labels == [
        "warm / lr=0.01",
        "warm / lr=0.1",
        "warm / lr=0.5",
        "time_decay / lr=0.01",
        "time_decay / lr=0.1",
        "time_decay / lr=0.5",
    ]
    for t in plan.trials:
        assert np.max(plan.lr_table(t)) == pytest.approx(t.lr, rel=1e-12)
    same = next(t for t in plan.trials if t.config == "time_decay / lr=0.1")
    assert same.spec == "time_decay(0.1, decay=0.002)"  # already peaks at 0.1: unchanged
    scaled = next(t for t in plan.trials if t.config == "warm / lr=0.01")
    assert scaled.spec == "scale(0.05, warmup(4, constant(0.2)))"


def test_vary_holds_the_others_fixed(tmp_path):
    plan = plan_of(tmp_path, BASE.replace("seeds = 3", 'seeds = [4, 9]\nvary = ["init"]'))
    t = plan.trials[-1]
    assert (t.seed, t.init_seed, t.split_seed, t.order_seed) == (9, 9, 0, 0)


def test_hash_ignores_formatting_and_engine_but_not_settings(tmp_path):
    h = plan_of(tmp_path, BASE).hash
    reformatted = "# a comment\n" + BASE.replace("seeds = 3", "seeds   =   3  # three")
    assert plan_of(tmp_path, reformatted).hash == h
    engine = BASE.replace("seeds = 3", 'seeds = 3\nengine = "keras"')
    assert plan_of(tmp_path, engine).hash == h
    assert plan_of(tmp_path, BASE.replace("epochs = 2", "epochs = 3")).hash != h


BAD = [
    # (replace this, with this, expected path, words in the message)
    ('dataset = "csv:', 'datasat = "csv:', "data.datasat", ["unknown key", "dataset"]),
    ("epochs = 2", 'epochs = "2"', "training.epochs", ["must be an integer", "epochs = 50"]),
    ("epochs = 2", "epoch = 2", "training.epoch", ["unknown key", "did you mean 'epochs'"]),
    ("epochs = 2\n", "", "training.epochs", ["is missing", "add epochs = 50"]),
    ("epochs = 2", "epochs = 0", "training.epochs", ["must be >= 1"]),
    ('"constant(0.1)"', '"cosin(0.1)"', "schedules.constant", ["unknown schedule", "cosine"]),
    ('"constant(0.1)"', '"constant(0.1"', "schedules.constant", ["expected"]),
    ('"constant(0.1)"', '"plateau(patience=3)"', "schedules.constant", ["has no lr", "plateau ="]),
    ('type = "sgd"', 'type = "sgdd"', "optimizers.sgd.type", ["unknown optimizer", "'sgd'"]),
    # found by the TOML fuzzer: a list as the type once raised TypeError (unhashable)
    ('type = "sgd"', "type = []", "optimizers.sgd.type", ["unknown optimizer type []"]),
    ("momentum = 0.8", "momentum = 0.8, lr = 0.1", "optimizers.sgd.lr", ["schedule gives it"]),
    ("momentum = 0.8", "momentun = 0.8", "optimizers.sgd.momentun", ["did you mean 'momentum'"]),
    (
        "momentum = 0.8",
        "momentum = 1.5",
        "optimizers.sgd.momentum",
        ["must be < 1", "momentum = 0.9"],
    ),
    ("seeds = 3", "seeds = [1, 1]", "experiment.seeds", ["twice"]),
    ("seeds = 3", "seeds = 0", "experiment.seeds", ["from 1"]),
    ("seeds = 3", 'seeds = "many"', "experiment.seeds", ["a count"]),
    ("validation = 0.33", "validation = 1.5", "data.validation", ["between 0 and 1"]),
    ("validation = 0.33", 'split = "random2"', "data.split", ["must be one of"]),
    ("mlp(hidden=[8])", "mlp(hiden=[8])", "model.spec", ["did you mean 'hidden'"]),
    ("mlp(hidden=[8])", "transformer()", "model.spec", ["unknown model"]),
    ("seeds = 3", 'seeds = 3\nmetric = "val_acc"', "experiment.metric", ["val_accuracy"]),
    ("seeds = 3", 'seeds = 3\nbaseline = "constnt"', "experiment.baseline", ["'constant'"]),
    ("seeds = 3", 'seeds = 3\nengine = "torch"', "experiment.engine", ["unknown engine"]),
    ('dataset = "csv:', 'dataset = "irs"\n#', "data.dataset", ["unknown dataset", "'iris'"]),
    ('dataset = "csv:', 'dataset = "csv:/nonexistent/x.csv"\n#', "data.dataset", ["cannot read"]),
    ("[training]", "[training]\nmetrics = ['mae']", "training.metrics", ["does not apply"]),
]


@pytest.mark.parametrize(("old", "new", "path", "words"), BAD, ids=[b[2] for b in BAD])
def test_bad_files_give_one_line_with_path_and_fix(tmp_path, old, new, path, words):
    assert old in BASE
    file = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        build_plan(load_config(file), check_model=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{file}: {path}: "), message
    for word in words:
        assert word in message, message


def test_toml_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"exp.toml: not valid TOML: .*line 2.*; fix the syntax"):
        load_config(write(tmp_path, "[data]\ndataset = \n"))
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_model_section_string_shortcut_and_optimizer_string(tmp_path):
    text = BASE.replace("[model]\nspec = 'mlp(hidden=[8])'", "").replace(
        "[experiment]", "model = 'mlp(hidden=[8])'\n[experiment]"
    )
    text = text.replace('sgd = { type = "sgd", momentum = 0.8 }', 'adam = "adam"')
    plan = plan_of(tmp_path, text)
    assert plan.model.options["hidden"] == (8,)
    assert plan.trials[0].optimizer_params["type"] == "adam"


def test_relative_paths_are_relative_to_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "d.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,1,x\n2,2,y\n")
    text = BASE.replace(f"csv:{IONO}", "csv:data/d.csv")
    plan = build_plan(load_config(write(tmp_path, text)), check_model=False)
    assert plan.dataset.classes == ("x", "y")


def test_optimizer_pairs_only_with_its_schedules_and_units_per_schedule(tmp_path):
    text = BASE.replace(
        'sgd = { type = "sgd", momentum = 0.8 }',
        'sgd = { type = "sgd", momentum = 0.8, schedules = ["constant", "step"] }\n'
        'adam = { type = "adam", schedules = ["adam_default"] }',
    ).replace(
        'time_decay = "time_decay(0.1, decay=0.002)"',
        'step = { spec = "step_decay(0.1, drop=0.5, every=1)", unit = "epoch" }\n'
        'adam_default = "constant(0.001)"',
    )
    plan = plan_of(tmp_path, text)
    assert plan.labels == ["constant / sgd", "step / sgd", "adam_default / adam"]
    step = next(t for t in plan.trials if t.schedule_label == "step")
    assert step.unit == "epoch" and "schedules" not in step.optimizer_params
    np.testing.assert_allclose(plan.lr_table(step), np.repeat([0.1, 0.05], 9))
    adam = next(t for t in plan.trials if t.optimizer_label == "adam")
    assert adam.optimizer_params["type"] == "adam" and adam.unit == "step"
    bad = text.replace('schedules = ["adam_default"]', 'schedules = ["adam_defualt"]')
    with pytest.raises(ConfigError, match=r"optimizers.adam.schedules: no schedule 'adam_defualt'"):
        plan_of(tmp_path, bad)


EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("seed*.toml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid(example, tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))  # Ionosphere from the shared copy
    (tmp_path / "ionosphere.data").write_bytes(Path(IONO).read_bytes() + b"\n")
    config = load_config(example)
    if config.data.dataset.startswith("keras:"):
        return  # needs the network; the file itself is validated above
    plan = build_plan(config, check_model=False)
    assert len(plan.trials) == len(plan.labels) * len(config.seeds) >= 20
    assert plan.baseline in plan.labels


def test_the_readme_sample_experiment_file_is_valid(tmp_path, monkeypatch):
    """README.md's "The experiment file" shows every field: the file as shown must plan."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### The experiment file", 1)[1]
    sample = section.split("```toml\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    (tmp_path / "ionosphere.data").write_bytes(Path(IONO).read_bytes() + b"\n")
    (tmp_path / "exp.toml").write_text(sample)
    plan = build_plan(load_config(tmp_path / "exp.toml"), check_model=False)
    assert plan.baseline in plan.labels and len(plan.labels) == 12  # 6 schedule x optimizer, 2 lrs


def test_seed002_example_is_the_tutorial_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    (tmp_path / "ionosphere.data").write_bytes(Path(IONO).read_bytes() + b"\n")
    example = next(p for p in EXAMPLES if p.name == "seed002_ionosphere.toml")
    plan = build_plan(load_config(example), check_model=False)
    assert plan.steps_per_epoch == 9 and plan.epochs == 50  # 235 rows / 28 per batch
    t = next(t for t in plan.trials if t.config == "time_decay / sgd_momentum")
    assert t.optimizer_params == {"type": "sgd", "momentum": 0.8, "nesterov": False}
    np.testing.assert_allclose(plan.lr_table(t), 0.1 / (1 + 0.002 * np.arange(450)))
    split = plan.split(t.split_seed)
    assert len(split.y_val) == 116 and split.val_rows[0] == 235


def test_the_experiment_file_must_be_a_small_regular_file(tmp_path):
    """A device, a FIFO or a huge file is one line, read no further than the limit."""
    import os

    from lrlab.experiments.config import MAX_CONFIG_BYTES

    with pytest.raises(ConfigError, match="character device, not a regular file"):
        load_config("/dev/zero")
    fifo = tmp_path / "exp.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        load_config(fifo)  # returns at once: a FIFO is never opened for a blocking read
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match="over the limit of 1"):
        load_config(big)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
