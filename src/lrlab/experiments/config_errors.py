"""The experiment file's errors: one line, ``<file>: <field.path>: <problem>; <fix>``.

:func:`translate` turns pydantic's first error into that line (with an example of what
to write); :func:`close_match` adds "did you mean ...?" to a misspelled name.
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from lrlab.errors import LrlabError

__all__ = [
    "EXAMPLES",
    "PLATEAU_FIX",
    "ConfigError",
    "close_match",
    "refuse_unshowable",
    "show_value",
    "spec_problem",
    "table_key",
    "translate",
]


class ConfigError(LrlabError):
    """An experiment file is invalid: ``<file>: <field.path>: <problem>; <fix>``."""

    def __init__(self, source: str, path: str, problem: str, fix: str = ""):
        self.source, self.path, self.problem, self.fix = source, path, problem, fix
        where = f"{path}: " if path else ""
        tail = f"; {fix}" if fix else ""
        super().__init__(_one_line(f"{source}: {where}{problem}{tail}"))


def _one_line(text: str) -> str:
    return " ".join(text.split())


EXAMPLES = {
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
    "data.classes": "classes = [5, 6, 7, 8, 9]",
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

#: how to add a plateau to a schedule entry
PLATEAU_FIX = 'write e.g. plateau = "plateau(factor=0.5, patience=5)"'

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


def spec_problem(err: Exception) -> str:
    lines = str(err).splitlines()
    head = lines[0]
    if len(lines) >= 2:
        head += f" in {lines[1].strip()!r}"
    return head


def table_key(label: str) -> str:
    return label if label.replace("_", "").replace("-", "").isalnum() else json.dumps(label)


def show_value(value: Any) -> str:
    kind = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({kind.get(type(value), type(value).__name__)})"


#: the bidirectional controls: they reorder what a terminal or a browser shows around them
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def refuse_unshowable(source: str, name: str | None, tables: Mapping[str, Mapping]) -> None:
    """Refuse an experiment ``name`` or a label (a key of ``tables``: schedules, optimizers)
    that cannot be shown as one cell of a table, a CSV file and a terminal line: one holding
    a control character (a newline or tab splits the row, an escape recolours the terminal)
    or a bidirectional control; and an empty or blank label. NUL is allowed: the plan drops it.

    >>> refuse_unshowable("x.toml", None, {"schedules": {"a\\tb": "c"}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lrlab.experiments.config_errors.ConfigError: x.toml: schedules."a\\tb": holds the control ...
    """
    labels = {f"{t}.{table_key(k)}": k for t, table in tables.items() for k in table}
    names = {"experiment.name": name or "-"} | labels
    for path, text in names.items():
        if not text.strip():
            raise ConfigError(source, path, "is empty", "give it a name")
        bad = next((c for c in text if _unshowable(c)), None)
        if bad is not None:
            raise ConfigError(
                source,
                path,
                f"holds the control character {ascii(bad)}",
                "use letters, digits, spaces and punctuation",
            )


def _unshowable(char: str) -> bool:
    return char != "\x00" and (unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS)


def close_match(word: Any, options: Any) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def translate(
    source: str,
    err: ValidationError,
    *,
    prefix: str = "",
    table: type[BaseModel] | None = None,
    sections: Mapping[str, type[BaseModel]],
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
        EXAMPLES.get(path)
        or EXAMPLES.get(".".join(loc))
        or (_KEY_EXAMPLES.get(loc[-1]) if loc else None)
    )
    fix = f"write e.g. {example}" if example else "see the experiment file reference"
    if kind == "missing":
        return ConfigError(source, path, "is missing", f"add {example}" if example else fix)
    if kind == "extra_forbidden":
        model = table or sections.get(loc[0] if len(loc) == 2 else "", sections[""])
        valid = list(model.model_fields)
        hint = close_match(loc[-1] if loc else "", valid).strip(" ()")
        fix = (
            f"{hint} valid keys: {', '.join(valid)}" if hint else f"valid keys: {', '.join(valid)}"
        )
        return ConfigError(source, path, "unknown key", fix)
    if kind in _TYPE_WORDS:
        return ConfigError(
            source, path, f"must be {_TYPE_WORDS[kind]}, got {show_value(value)}", fix
        )
    if kind == "literal_error":
        expected = e.get("ctx", {}).get("expected", "")
        return ConfigError(source, path, f"must be one of {expected}, got {show_value(value)}", fix)
    if kind == "value_error":
        msg = str(e.get("ctx", {}).get("error", e["msg"]))
        return ConfigError(source, path, msg, fix)
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        bound = e.get("ctx", {}).get(name)
        return ConfigError(source, path, f"must be {op} {bound}, got {show_value(value)}", fix)
    if kind == "finite_number":
        return ConfigError(source, path, f"must be finite, got {value}", fix)
    return ConfigError(source, path, f"{e['msg']}, got {show_value(value)}", fix)
