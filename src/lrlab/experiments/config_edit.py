"""Minimal text edits of an experiment file: ``lrlab find-lr EXP --write`` sets ``lrs``.

The file is edited as text, not re-serialized, so comments, order and layout stay: only
the ``lrs = ...`` value of the ``[experiment]`` table changes (its line's trailing comment
kept; comments inside a multi-line array go with the old value), or one ``lrs = [...]``
line is added right under the ``[experiment]`` header. The result is parsed again and
must equal the old document with only ``experiment.lrs`` changed; a file written some
other way (a dotted ``experiment.lrs`` key, an inline table) is refused, with the line to
add by hand. (tomlkit would do the same edit but is not a dependency; this is one key.)

>>> text = "[experiment]  # the grid\\nseeds = 3\\nlrs = [0.1]  # from find-lr\\n\\n[data]\\n"
>>> print(set_experiment_lrs(text, [0.02, 0.3]), end="")
[experiment]  # the grid
seeds = 3
lrs = [0.02, 0.3]  # from find-lr
<BLANKLINE>
[data]
>>> print(set_experiment_lrs("[experiment]\\nseeds = 3\\n", [0.5]), end="")
[experiment]
lrs = [0.5]
seeds = 3
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence

from lrlab.errors import LrlabError

__all__ = ["format_lrs", "set_experiment_lrs"]

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")
_LRS = re.compile(r"^(\s*lrs\s*=\s*)")


def format_lrs(lrs: Sequence[float]) -> str:
    """``[0.02, 0.3]``: each lr with Python's shortest round-trip repr."""
    return "[" + ", ".join(repr(float(v)) for v in lrs) + "]"


def _value_end(lines: list[str], first: int) -> int:
    """Index of the last line of the key/value that starts on line ``first``."""
    for last in range(first, len(lines)):
        try:
            tomllib.loads("".join(lines[first : last + 1]))
            return last
        except tomllib.TOMLDecodeError:
            continue
    raise LrlabError("the lrs value never ends: is the file valid TOML?")


def set_experiment_lrs(text: str, lrs: Sequence[float], source: str = "the file") -> str:
    """``text`` with ``[experiment] lrs`` set to ``lrs`` (module docstring)."""
    lines = text.splitlines(keepends=True)
    value = format_lrs(lrs)
    table, header, found = None, None, None
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match:
            table = match.group(1).strip()
            header = i if table == "experiment" and header is None else header
        elif table == "experiment" and _LRS.match(line):
            found = i
            break
    if found is not None:
        last = _value_end(lines, found)
        tail = lines[last].rstrip("\r\n")
        comment = tail[tail.index("#") :] if "#" in tail else ""
        newline = lines[last][len(tail) :] or "\n"
        prefix = _LRS.match(lines[found]).group(1)
        new = prefix + value + (f"  {comment}" if comment else "") + newline
        lines[found : last + 1] = [new]
    elif header is not None:
        newline = "\r\n" if lines[header].endswith("\r\n") else "\n"
        if not lines[header].endswith("\n"):  # the file ends with the header
            lines[header] += newline
        lines.insert(header + 1, f"lrs = {value}{newline}")
    else:
        lines[:0] = [f"[experiment]\nlrs = {value}\n\n"]
    edited = "".join(lines)
    _check(text, edited, list(lrs), source)
    return edited


def _check(old: str, new: str, lrs: list[float], source: str) -> None:
    """The edit changed ``experiment.lrs`` and nothing else, or it is refused."""
    before, after = tomllib.loads(old), tomllib.loads(new)
    before.setdefault("experiment", {})["lrs"] = lrs
    if after != before:
        raise LrlabError(
            f"cannot set lrs in {source} by a text edit (written another way?); add it by "
            f"hand under [experiment]: lrs = {format_lrs(lrs)}"
        )
