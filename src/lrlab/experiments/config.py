"""The experiment file (TOML), validated with pydantic; every error is one line.

An error reads ``<file>: <field.path>: <problem>; <fix>``, e.g.
``exp.toml: training.epoch: unknown key; did you mean 'epochs'?``.

The file (every table but ``[data]``, ``[model]``, ``[training]`` and ``[schedules]``
is optional)::

    [experiment]
    name = "seed002"            # a title (default: the file name)
    seeds = 10                  # a count (seeds 0..9) or a list [0, 1, 7]
    lrs = [0.01, 0.1]           # optional: each schedule is rescaled to peak at each lr
    metric = "val_accuracy"     # what the statistics compare (val_/train metrics, loss)
    baseline = "constant"       # the config the others are compared with (a table label)
    vary = ["split", "init", "order"]   # what a seed changes (see below)
    engine = "auto"             # auto | keras | population (auto: population if it can)

    [data]
    dataset = "ionosphere"      # see lrlab.experiments.datasets
    validation = 0.33           # a fraction, or a holdout dataset "csv:PATH" / "npz:PATH"
    split = "stratified"        # stratified | random | tail (Keras validation_split)
    standardize = true          # z-score fit on the training split only
    task = "auto"               # auto | binary | multiclass | regression
    target = "label"            # csv only: the target column (default: the last)
    limit = 5000                # optional: keep a fixed random subset of rows
    classes = [5, 6, 7, 8, 9]   # optional: only these classes, relabelled 0.. in this order

    [model]
    spec = 'mlp(hidden=[34], activation="relu")'   # or cnn(...), or package.module:function
    from_logits = false         # only for module:function models without an output activation

    [training]
    epochs = 50
    batch_size = 28
    schedule_unit = "step"      # step: schedule(t) per update | epoch: schedule(epoch)
    metrics = ["accuracy"]      # accuracy, auc, precision, recall (classification); mae, mse

    [optimizers]                # label = type, or a table with the type's arguments
    sgd = { type = "sgd", momentum = 0.8, nesterov = false }
    adam = { type = "adam", schedules = ["adam_default"] }   # only with these schedules

    [schedules]                 # label = spec, or { spec, plateau, monitor, unit }
    constant = "constant(0.1)"
    time_decay = "time_decay(0.1, decay=0.002)"
    step = { spec = "step_decay(0.1, drop=0.5, every=10)", unit = "epoch" }
    plateau = { spec = "constant(0.1)", plateau = "plateau(factor=0.5, patience=5)" }
    adam_default = "constant(0.001)"
    mine = { function = "mymod:step_decay", lr = 0.1 }    # a Python function, per epoch

The grid is schedules x optimizers x lrs x seeds, except that an optimizer with a
``schedules`` list pairs only with those schedules. ``schedule_unit = "epoch"`` (or
``unit = "epoch"`` on one schedule) evaluates the schedule at the epoch index (the lr is
constant within an epoch, as with Keras' ``LearningRateScheduler``); ``"step"``
evaluates it at the optimizer update (Keras 2's ``decay=`` was per update). With
``lrs``, schedule ``s`` becomes ``scale(lr / peak, s)``, where ``peak`` is the largest lr
``s`` gives during the run (so the run peaks at ``lr``). A seed varies the validation
split, the initial weights and the batch order together; leave one out of ``vary`` to
hold it fixed (at seed 0) across seeds.

A schedule ``function`` (``mymod:fn``, found beside the file first, then on ``sys.path``)
is called once per epoch as Keras' ``LearningRateScheduler`` calls it, ``fn(epoch, lr)``
(from ``lr``, fed back) or ``fn(epoch)``; its values become a ``table(...)`` spec, which
is what the store keeps, with the function's name.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
)

from lrlab.errors import LrlabError, SpecError
from lrlab.experiments.config_errors import (
    EXAMPLES,
    PLATEAU_FIX,
    ConfigError,
    close_match,
    refuse_unshowable,
    show_value,
    spec_problem,
    table_key,
    translate,
)
from lrlab.experiments.engine_registry import engine_names
from lrlab.experiments.functions import function_schedule
from lrlab.experiments.optimizers import OPTIMIZERS
from lrlab.experiments.trial import METRICS
from lrlab.fileio import InputFileError, read_input
from lrlab.schedules import Plateau, Schedule, Table
from lrlab.spec import MAX_STORED_SPEC_LENGTH, parse

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "OPTIMIZER_TYPES",
    "config_from_dict",
    "config_hash",
    "load_config",
]

MAX_SEEDS = 10_000
MAX_SEED = 2**31 - 1  # seeds and the seeds the engines derive from them fit 32 bits
MAX_EPOCHS = 1_000_000
MAX_CONFIG_BYTES = 1 << 20  # an experiment file is a few KB of TOML
VARY = ("split", "init", "order")


# --------------------------------------------------------------------------- schema
class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Epsilon = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
Beta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class ExperimentTable(_Table):
    name: str | None = None
    description: str = ""
    seeds: Any = Field(5, validate_default=True)  # the count 5 becomes [0, ..., 4]
    lrs: list[PositiveFloat] | None = None
    metric: str | None = None
    baseline: str | None = None
    vary: list[Literal["split", "init", "order"]] = list(VARY)
    engine: str = "auto"

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> list[int]:
        if isinstance(v, int) and not isinstance(v, bool):
            if not 1 <= v <= MAX_SEEDS:
                raise ValueError(f"must be from 1 to {MAX_SEEDS}, got {v}")
            return list(range(v))
        if isinstance(v, list) and v:
            if not all(type(s) is int and 0 <= s <= MAX_SEED for s in v):
                raise ValueError(f"must list integers from 0 to {MAX_SEED}, got {v!r}")
            if len(set(v)) != len(v):
                raise ValueError(f"lists a seed twice: {v!r}")
            return list(v)
        raise ValueError(f"must be a count or a non-empty list of seeds, got {v!r}")

    @field_validator("lrs")
    @classmethod
    def _lrs(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError(f"must be a non-empty list without repeats, got {v!r}")
        return v

    @field_validator("vary")
    @classmethod
    def _vary(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"lists an item twice: {v!r}")
        return v


class DataTable(_Table):
    dataset: str
    validation: Any = 0.2
    split: Literal["stratified", "random", "tail"] = "stratified"
    standardize: bool = True
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    target: Any = None
    limit: Annotated[int, Field(ge=2)] | None = None
    classes: list[Any] | None = None

    @field_validator("classes", mode="before")
    @classmethod
    def _classes(cls, v: Any) -> list[int | str] | None:
        if v is None:
            return v
        ok = isinstance(v, list) and all(
            isinstance(c, str | int) and not isinstance(c, bool) for c in v
        )
        if not ok or len(v) < 2 or len({str(c) for c in v}) != len(v):
            raise ValueError(f"must list at least two different class names, got {v!r}")
        return v

    @field_validator("validation", mode="before")
    @classmethod
    def _validation(cls, v: Any) -> float | str:
        if isinstance(v, float | int) and not isinstance(v, bool):
            if not 0 < v < 1:
                raise ValueError(f"a split fraction must be between 0 and 1, got {v}")
            return float(v)
        if isinstance(v, str) and v.strip():
            return v
        raise ValueError(f"must be a fraction or a holdout dataset, got {v!r}")

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, v: Any) -> str | int | None:
        if v is None or (isinstance(v, str | int) and not isinstance(v, bool)):
            return v
        raise ValueError(f"must be a column name or index, got {v!r}")


class ModelTable(_Table):
    spec: str
    from_logits: bool = False


class TrainingTable(_Table):
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
    batch_size: Annotated[int, Field(ge=1, le=10_000_000)]
    schedule_unit: Literal["step", "epoch"] = "step"
    metrics: list[str] | None = None

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        known = tuple(METRICS)
        for m in v:
            if m not in known:
                raise ValueError(
                    f"unknown metric {m!r}{close_match(m, known)}; known: {', '.join(known)}"
                )
        if len(set(v)) != len(v):
            raise ValueError(f"lists a metric twice: {v!r}")
        return v


class _Optimizer(_Table):
    type: str
    clipnorm: PositiveFloat | None = None
    schedules: list[str] | None = None


#: the type (and bounds) of each optimizer argument; the defaults are in OPTIMIZERS
_ARGUMENT_TYPES: dict[str, Any] = {
    "momentum": Beta,
    "nesterov": bool,
    "beta_1": Beta,
    "beta_2": Beta,
    "epsilon": Epsilon,
    "amsgrad": bool,
    "rho": Beta,
    "centered": bool,
    "initial_accumulator_value": NonNegFloat,
    "weight_decay": NonNegFloat | None,
    "warmup_steps": Annotated[int, Field(ge=0, le=10_000_000)],
}

#: (type, argument) -> its type where the type narrows it: Lion's ``beta_1`` must be
#: positive (Keras refuses 0: sign descent), schedule-free divides by it
_ARGUMENT_TYPES_OF: dict[tuple[str, str], Any] = {
    ("lion", "beta_1"): Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)],
    ("schedulefreeadamw", "beta_1"): Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)],
}

#: optimizer type -> the schema of its table (type, clipnorm, schedules and its arguments)
OPTIMIZER_TYPES: dict[str, type[_Optimizer]] = {
    kind: create_model(
        spec.keras_class,
        __base__=_Optimizer,
        type=(Literal[kind], ...),
        **{
            name: (_ARGUMENT_TYPES_OF.get((kind, name), _ARGUMENT_TYPES[name]), value)
            for name, value in spec.defaults.items()
        },
    )
    for kind, spec in OPTIMIZERS.items()
}


class ScheduleEntry(_Table):
    spec: str | None = None
    function: Any = None  # "module:function" (or, from Python, the function)
    lr: PositiveFloat | None = None  # the lr a function(epoch, lr) starts from
    plateau: str | None = None
    monitor: str = "val_loss"
    unit: Literal["step", "epoch"] | None = None


class ExperimentConfig(_Table):
    """The validated experiment file. ``source`` names it in errors; paths are relative to
    ``base_dir``."""

    experiment: ExperimentTable = ExperimentTable()
    data: DataTable
    model: ModelTable
    training: TrainingTable
    optimizers: dict[str, Any] = Field(default_factory=lambda: {"sgd": {"type": "sgd"}})
    schedules: dict[str, Any]

    _source: str = PrivateAttr("<config>")
    _base_dir: Path | None = PrivateAttr(None)
    _text: str = PrivateAttr("")
    _parsed: dict[str, tuple[Any, Any]] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The file name used in error messages."""
        return self._source

    @property
    def base_dir(self) -> Path | None:
        """The folder that relative paths in the file are relative to."""
        return self._base_dir

    @property
    def text(self) -> str:
        """The file as written (kept in the store)."""
        return self._text

    def parsed_schedule(self, label: str) -> tuple[Schedule, Plateau | None]:
        """The schedule and plateau of ``[schedules] label`` as values (parsed once, when
        the file was validated)."""
        return self._parsed[label]

    @property
    def seeds(self) -> list[int]:
        return list(self.experiment.seeds)

    @property
    def title(self) -> str:
        return self.experiment.name or Path(self.source).stem

    @property
    def varied(self) -> list[str]:
        """What a seed varies: ``experiment.vary`` less the split when it cannot vary
        (Keras' fixed ``tail`` split, or a holdout file)."""
        fixed_split = self.data.split == "tail" or isinstance(self.data.validation, str)
        return [v for v in self.experiment.vary if not (v == "split" and fixed_split)]

    def canonical(self) -> dict[str, Any]:
        """The settings that define the results (everything but the engine), as JSON data."""
        data = self.model_dump(mode="json")
        data["experiment"].pop("engine", None)
        if data["data"].get("classes") is None:  # files without it keep their identity
            data["data"].pop("classes", None)
        return data


def config_hash(canonical: dict[str, Any], extra: str = "") -> str:
    """sha256 of the canonical settings (sorted JSON) and ``extra`` (the data fingerprint)."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((text + "\n" + extra).encode()).hexdigest()


# --------------------------------------------------------------------------- loading
def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment file; raise :class:`ConfigError` (one line) if bad."""
    path = Path(path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(source, "", "no such file", "check the path")
    try:
        data = read_input(path, limit=MAX_CONFIG_BYTES, what="experiment file")
        text = data.decode("utf-8")
    except InputFileError as err:
        raise ConfigError(source, "", str(err).removesuffix("; check the path")) from None
    except UnicodeDecodeError as err:
        raise ConfigError(source, "", f"cannot read the file ({err})", "save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, "", f"not valid TOML: {err}", "fix the syntax") from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a={b=...}}
        raise ConfigError(source, "", "values nested too deeply", "flatten the file") from None
    return config_from_dict(raw, source=source, base_dir=path.resolve().parent, text=text)


def config_from_dict(
    raw: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None, text: str = ""
) -> ExperimentConfig:
    """Validate a config given as a dict (the parsed TOML)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, "", "must be a table of settings", "see the file reference")
    raw = dict(raw)
    if isinstance(raw.get("model"), str):
        raw["model"] = {"spec": raw["model"]}
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise _translate(source, err) from None
    refuse_unshowable(
        source,
        config.experiment.name,
        {"schedules": config.schedules, "optimizers": config.optimizers},
    )
    optimizers = _check_optimizers(source, config.optimizers)
    parsed = _check_schedules(source, config.schedules, config.training.epochs, base_dir)
    schedules = {
        label: {
            "spec": str(schedule),
            **({} if entry.function is None else {"function": entry.function, "lr": entry.lr}),
            "plateau": str(plateau) if plateau is not None else None,
            "monitor": entry.monitor,
            "unit": entry.unit,
        }
        for label, (entry, schedule, plateau) in parsed.items()
    }
    config = config.model_copy(update={"optimizers": optimizers, "schedules": schedules})
    _check_engine(source, config.experiment.engine)
    config._source, config._base_dir, config._text = source, base_dir, text
    config._parsed = {label: (s, p) for label, (_, s, p) in parsed.items()}
    return config


def _check_engine(source: str, engine: str) -> None:
    names = ("auto", *engine_names())
    if engine not in names:
        raise ConfigError(
            source,
            "experiment.engine",
            f"unknown engine {engine!r}{close_match(engine, names)}",
            f"use one of {', '.join(names)}",
        )


def _string_or_table(
    source: str, path: str, value: Any, *, key: str, what: str, example: str
) -> dict[str, Any]:
    """``label = "x"`` is short for ``label = { <key> = "x" }``; anything else must be a table."""
    if isinstance(value, str):
        return {key: value}
    if not isinstance(value, dict):
        raise ConfigError(
            source,
            path,
            f"must be {what} or a table, got {show_value(value)}",
            f"write e.g. {example}",
        )
    return value


def _check_optimizers(source: str, table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if not table:
        raise ConfigError(source, "optimizers", "is empty", f"write e.g. {EXAMPLES['optimizers']}")
    out: dict[str, dict[str, Any]] = {}
    for label, value in table.items():
        path = f"optimizers.{label}"
        value = _string_or_table(
            source,
            path,
            value,
            key="type",
            what="an optimizer type",
            example='sgd = { type = "sgd", momentum = 0.9 } or adam = "adam"',
        )
        kind = value.get("type")
        if not isinstance(kind, str) or kind not in OPTIMIZER_TYPES:
            problem = "has no type" if kind is None else f"unknown optimizer type {kind!r}"
            raise ConfigError(
                source,
                f"{path}.type",
                problem + (close_match(kind, OPTIMIZER_TYPES) if isinstance(kind, str) else ""),
                f"use one of {', '.join(OPTIMIZER_TYPES)}",
            )
        for key in ("lr", "learning_rate", "decay"):
            if key in value:
                raise ConfigError(
                    source,
                    f"{path}.{key}",
                    "the lr does not belong to the optimizer",
                    "the schedule gives it: write it in [schedules] (e.g. constant(0.1)) or "
                    "[experiment] lrs",
                )
        try:
            model = OPTIMIZER_TYPES[kind].model_validate(value)
        except ValidationError as err:
            raise _translate(source, err, prefix=path, table=OPTIMIZER_TYPES[kind]) from None
        out[label] = model.model_dump(exclude_none=True)
    return out


def _check_schedules(
    source: str, table: dict[str, Any], epochs: int, base_dir: Path | None
) -> dict[str, tuple[ScheduleEntry, Schedule, Plateau | None]]:
    """Each entry validated, with its schedule and plateau parsed (a function's entry
    comes back with its table as ``spec``, its ``module:function`` name as ``function``)."""
    if not table:
        raise ConfigError(source, "schedules", "is empty", f"write e.g. {EXAMPLES['schedules']}")
    out: dict[str, tuple[ScheduleEntry, Schedule, Plateau | None]] = {}
    for label, value in table.items():
        path = f"schedules.{table_key(label)}"
        value = _string_or_table(
            source,
            path,
            value,
            key="spec",
            what="a spec string",
            example='constant = "constant(0.1)"',
        )
        try:
            entry = ScheduleEntry.model_validate(value)
        except ValidationError as err:
            raise _translate(source, err, prefix=path, table=ScheduleEntry) from None
        if entry.lr is not None and entry.function is None:
            raise ConfigError(
                source, f"{path}.lr", "only applies to a function", "put the lr in the spec"
            )
        if entry.plateau is None and entry.monitor != "val_loss":
            raise ConfigError(source, f"{path}.monitor", "only applies with a plateau", PLATEAU_FIX)
        if entry.spec is None:
            entry = _tabulated(source, path, entry, epochs, base_dir)
        try:
            schedule = parse(entry.spec, max_length=MAX_STORED_SPEC_LENGTH)
        except SpecError as err:
            raise ConfigError(source, f"{path}", spec_problem(err), "see 'lrlab list'") from None
        entry = _table_unit(source, path, entry, schedule)
        if schedule.reactive:
            raise ConfigError(
                source,
                path,
                f"{entry.spec} reacts to a metric and has no lr of its own",
                f'write {{ spec = "constant(0.1)", plateau = "{entry.spec}" }}',
            )
        plateau = None
        if entry.plateau is not None:
            try:
                plateau = parse(entry.plateau)
            except SpecError as err:
                raise ConfigError(
                    source, f"{path}.plateau", spec_problem(err), "see 'lrlab list'"
                ) from None
            if not isinstance(plateau, Plateau):
                raise ConfigError(
                    source,
                    f"{path}.plateau",
                    f"must be a plateau(...) spec, got {entry.plateau}",
                    PLATEAU_FIX,
                )
        out[label] = (entry, schedule, plateau)
    return out


def _tabulated(
    source: str, path: str, entry: ScheduleEntry, epochs: int, base_dir: Path | None
) -> ScheduleEntry:
    """``{ function = "mymod:fn", lr = 0.1 }`` -> the entry with the function's table as spec.

    The function runs once per epoch, as Keras' ``LearningRateScheduler`` calls it
    (:func:`lrlab.experiments.functions.function_schedule`); the entry keeps its name.
    """
    if entry.function is None:
        raise ConfigError(
            source, path, "has neither spec nor function", 'write spec = "constant(0.1)"'
        )
    if entry.unit == "step":
        raise ConfigError(
            source,
            f"{path}.unit",
            "a schedule function is called once per epoch (Keras' LearningRateScheduler)",
            'write unit = "epoch"',
        )
    try:
        table, name = function_schedule(entry.function, epochs=epochs, lr=entry.lr, base=base_dir)
    except LrlabError as err:
        raise ConfigError(source, f"{path}.function", str(err), "") from None
    return entry.model_copy(update={"spec": str(table), "function": name, "unit": "epoch"})


def _table_unit(source: str, path: str, entry: ScheduleEntry, schedule: Schedule) -> ScheduleEntry:
    """A ``table(...)`` runs in its own unit; an entry's ``unit`` must agree with it."""
    if not isinstance(schedule, Table):
        return entry
    if entry.unit not in (None, schedule.unit):
        raise ConfigError(
            source,
            f"{path}.unit",
            f"is {entry.unit!r} but the table's values are per {schedule.unit}",
            f'write unit = "{schedule.unit}" or leave it out',
        )
    return entry.model_copy(update={"unit": schedule.unit})


def _translate(
    source: str, err: ValidationError, prefix: str = "", table: type[BaseModel] | None = None
) -> ConfigError:
    """The first pydantic error as one :class:`ConfigError` (``table``: the schema whose
    keys a misspelled key is matched against; default: the section's)."""
    return translate(source, err, prefix=prefix, table=table, sections=_TABLES)


_TABLES: dict[str, type[BaseModel]] = {
    "experiment": ExperimentTable,
    "data": DataTable,
    "model": ModelTable,
    "training": TrainingTable,
    "": ExperimentConfig,
}
