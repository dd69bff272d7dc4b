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
    engine = "auto"             # auto | keras (a population engine may be added)

    [data]
    dataset = "ionosphere"      # see lrlab.experiments.datasets
    validation = 0.33           # a fraction, or a holdout dataset "csv:PATH" / "npz:PATH"
    split = "stratified"        # stratified | random | tail (Keras validation_split)
    standardize = true          # z-score fit on the training split only
    task = "auto"               # auto | binary | multiclass | regression
    target = "label"            # csv only: the target column (default: the last)
    limit = 5000                # optional: keep a fixed random subset of rows

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

The grid is schedules x optimizers x lrs x seeds, except that an optimizer with a
``schedules`` list pairs only with those schedules. ``schedule_unit = "epoch"`` (or
``unit = "epoch"`` on one schedule) evaluates the schedule at the epoch index (the lr is
constant within an epoch, as with Keras' ``LearningRateScheduler``); ``"step"``
evaluates it at the optimizer update (Keras 2's ``decay=`` was per update). With
``lrs``, schedule ``s`` becomes ``scale(lr / peak, s)``, where ``peak`` is the largest lr
``s`` gives during the run (so the run peaks at ``lr``). A seed varies the validation
split, the initial weights and the batch order together; leave one out of ``vary`` to
hold it fixed (at seed 0) across seeds.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from lrlab.errors import LrlabError

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "OPTIMIZER_TYPES",
    "config_from_dict",
    "config_hash",
    "load_config",
]

MAX_SEEDS = 10_000
MAX_EPOCHS = 1_000_000
CLASSIFICATION_METRICS = ("accuracy", "auc", "precision", "recall")
REGRESSION_METRICS = ("mae", "mse")
VARY = ("split", "init", "order")


class ConfigError(LrlabError):
    """An experiment file is invalid: ``<file>: <field.path>: <problem>; <fix>``."""

    def __init__(self, source: str, path: str, problem: str, fix: str = ""):
        self.source, self.path, self.problem, self.fix = source, path, problem, fix
        where = f"{path}: " if path else ""
        tail = f"; {fix}" if fix else ""
        super().__init__(_one_line(f"{source}: {where}{problem}{tail}"))


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
            if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v):
                raise ValueError(f"must list integers >= 0, got {v!r}")
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
        known = CLASSIFICATION_METRICS + REGRESSION_METRICS
        for m in v:
            if m not in known:
                raise ValueError(
                    f"unknown metric {m!r}{_close(m, known)}; known: {', '.join(known)}"
                )
        if len(set(v)) != len(v):
            raise ValueError(f"lists a metric twice: {v!r}")
        return v


class _Optimizer(_Table):
    type: str
    clipnorm: PositiveFloat | None = None
    schedules: list[str] | None = None


class SGD(_Optimizer):
    type: Literal["sgd"]
    momentum: Beta = 0.0
    nesterov: bool = False
    weight_decay: NonNegFloat | None = None


class Adam(_Optimizer):
    type: Literal["adam"]
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7
    amsgrad: bool = False
    weight_decay: NonNegFloat | None = None


class AdamW(Adam):
    type: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: NonNegFloat | None = 0.004


class RMSprop(_Optimizer):
    type: Literal["rmsprop"]
    rho: Beta = 0.9
    momentum: Beta = 0.0
    epsilon: Epsilon = 1e-7
    centered: bool = False


class Adagrad(_Optimizer):
    type: Literal["adagrad"]
    initial_accumulator_value: NonNegFloat = 0.1
    epsilon: Epsilon = 1e-7


class Adadelta(_Optimizer):
    type: Literal["adadelta"]
    rho: Beta = 0.95
    epsilon: Epsilon = 1e-7


OPTIMIZER_TYPES: dict[str, type[_Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
}


class ScheduleEntry(_Table):
    spec: str
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

    @property
    def seeds(self) -> list[int]:
        return list(self.experiment.seeds)

    @property
    def title(self) -> str:
        return self.experiment.name or Path(self.source).stem

    def canonical(self) -> dict[str, Any]:
        """The settings that define the results (everything but the engine), as JSON data."""
        data = self.model_dump(mode="json")
        data["experiment"].pop("engine", None)
        return data


def config_hash(canonical: dict[str, Any], extra: str = "") -> str:
    """sha256 of the canonical settings (sorted JSON) and ``extra`` (the data fingerprint)."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((text + "\n" + extra).encode()).hexdigest()


# --------------------------------------------------------------------------- loading
_EXAMPLES = {
    "experiment": "[experiment] seeds = 10",
    "experiment.seeds": "seeds = 10 (a count) or seeds = [0, 1, 2]",
    "experiment.lrs": "lrs = [0.001, 0.01, 0.1]",
    "experiment.vary": 'vary = ["split", "init", "order"]',
    "experiment.engine": 'engine = "keras"',
    "data": '[data] dataset = "digits"',
    "data.dataset": 'dataset = "digits" (or "ionosphere", "csv:PATH", "npz:PATH")',
    "data.validation": 'validation = 0.2 (a fraction) or validation = "csv:holdout.csv"',
    "data.split": 'split = "stratified" (or "random", "tail")',
    "data.target": 'target = "label" (a header name) or target = -1 (an index)',
    "data.limit": "limit = 5000",
    "model": "[model] spec = 'mlp(hidden=[34])'",
    "model.spec": "spec = 'mlp(hidden=[34], activation=\"relu\")'",
    "training": "[training] epochs = 50 and batch_size = 32",
    "training.epochs": "epochs = 50",
    "training.batch_size": "batch_size = 32",
    "training.schedule_unit": 'schedule_unit = "epoch" (or "step")',
    "training.metrics": 'metrics = ["accuracy"]',
    "schedules": '[schedules] constant = "constant(0.1)"',
    "optimizers": '[optimizers] sgd = { type = "sgd", momentum = 0.9 }',
}

_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_KEY_EXAMPLES = {
    "momentum": "momentum = 0.9",
    "nesterov": "nesterov = true",
    "beta_1": "beta_1 = 0.9",
    "beta_2": "beta_2 = 0.999",
    "epsilon": "epsilon = 1e-7",
    "rho": "rho = 0.9",
    "weight_decay": "weight_decay = 0.004",
    "clipnorm": "clipnorm = 1.0",
    "initial_accumulator_value": "initial_accumulator_value = 0.1",
    "amsgrad": "amsgrad = false",
    "centered": "centered = false",
    "spec": 'spec = "constant(0.1)"',
    "plateau": 'plateau = "plateau(factor=0.5, patience=5)"',
    "monitor": 'monitor = "val_loss"',
}
_TYPE_WORDS = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment file; raise :class:`ConfigError` (one line) if bad."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "no such file", "check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(source, "", f"cannot read the file ({reason})", "check it") from None
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
    optimizers = _check_optimizers(source, config.optimizers)
    schedules = _check_schedules(source, config.schedules)
    config = config.model_copy(update={"optimizers": optimizers, "schedules": schedules})
    _check_engine(source, config.experiment.engine)
    config._source, config._base_dir, config._text = source, base_dir, text
    return config


def _check_engine(source: str, engine: str) -> None:
    from lrlab.experiments.engines import engine_names

    names = ("auto", *engine_names())
    if engine not in names:
        raise ConfigError(
            source,
            "experiment.engine",
            f"unknown engine {engine!r}{_close(engine, names)}",
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
            source, path, f"must be {what} or a table, got {_show(value)}", f"write e.g. {example}"
        )
    return value


def _check_optimizers(source: str, table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if not table:
        raise ConfigError(source, "optimizers", "is empty", f"write e.g. {_EXAMPLES['optimizers']}")
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
                problem + (_close(kind, OPTIMIZER_TYPES) if isinstance(kind, str) else ""),
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


def _check_schedules(source: str, table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from lrlab.errors import SpecError
    from lrlab.schedules import Plateau
    from lrlab.spec import parse

    if not table:
        raise ConfigError(source, "schedules", "is empty", f"write e.g. {_EXAMPLES['schedules']}")
    out: dict[str, dict[str, Any]] = {}
    for label, value in table.items():
        path = f"schedules.{_key(label)}"
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
        try:
            schedule = parse(entry.spec)
        except SpecError as err:
            raise ConfigError(source, f"{path}", _spec_problem(err), "see 'lrlab list'") from None
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
                    source, f"{path}.plateau", _spec_problem(err), "see 'lrlab list'"
                ) from None
            if not isinstance(plateau, Plateau):
                raise ConfigError(
                    source,
                    f"{path}.plateau",
                    f"must be a plateau(...) spec, got {entry.plateau}",
                    'write e.g. plateau = "plateau(factor=0.5, patience=5)"',
                )
        out[label] = {
            "spec": str(schedule),
            "plateau": str(plateau) if plateau is not None else None,
            "monitor": entry.monitor,
            "unit": entry.unit,
        }
    return out


def _spec_problem(err: Exception) -> str:
    lines = str(err).splitlines()
    head = lines[0]
    if len(lines) >= 2:
        head += f" in {lines[1].strip()!r}"
    return head


def _key(label: str) -> str:
    return label if label.replace("_", "").replace("-", "").isalnum() else json.dumps(label)


def _show(value: Any) -> str:
    kind = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({kind.get(type(value), type(value).__name__)})"


def _close(word: Any, options: Any) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _translate(
    source: str, err: ValidationError, prefix: str = "", table: type[BaseModel] | None = None
) -> ConfigError:
    """The first pydantic error as ``ConfigError(<file>, <path>, <problem>, <fix>)``."""
    errors = err.errors(include_url=False)
    # A misspelled key also makes the real one "missing": report the misspelling.
    e = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "list[", "int"))]
    parts = [prefix] if prefix else []
    parts += loc
    path = ".".join(p for p in parts if p)
    kind = e["type"]
    value = e.get("input")
    example = (
        _EXAMPLES.get(path)
        or _EXAMPLES.get(".".join(loc))
        or (_KEY_EXAMPLES.get(loc[-1]) if loc else None)
    )
    fix = f"write e.g. {example}" if example else "see the experiment file reference"
    if kind == "missing":
        return ConfigError(source, path, "is missing", f"add {example}" if example else fix)
    if kind == "extra_forbidden":
        model = table or _TABLES.get(loc[0] if len(loc) == 2 else "", ExperimentConfig)
        valid = list(model.model_fields)
        hint = _close(loc[-1] if loc else "", valid).strip(" ()")
        fix = (
            f"{hint} valid keys: {', '.join(valid)}" if hint else f"valid keys: {', '.join(valid)}"
        )
        return ConfigError(source, path, "unknown key", fix)
    if kind in _TYPE_WORDS:
        return ConfigError(source, path, f"must be {_TYPE_WORDS[kind]}, got {_show(value)}", fix)
    if kind == "literal_error":
        expected = e.get("ctx", {}).get("expected", "")
        return ConfigError(source, path, f"must be one of {expected}, got {_show(value)}", fix)
    if kind == "value_error":
        msg = str(e.get("ctx", {}).get("error", e["msg"]))
        return ConfigError(source, path, msg, fix)
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        bound = e.get("ctx", {}).get(name)
        return ConfigError(source, path, f"must be {op} {bound}, got {_show(value)}", fix)
    if kind == "finite_number":
        return ConfigError(source, path, f"must be finite, got {value}", fix)
    return ConfigError(source, path, f"{e['msg']}, got {_show(value)}", fix)


_TABLES: dict[str, type[BaseModel]] = {
    "experiment": ExperimentTable,
    "data": DataTable,
    "model": ModelTable,
    "training": TrainingTable,
}
