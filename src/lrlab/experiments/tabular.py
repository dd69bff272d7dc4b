"""Reading a data file into features and targets, validated before anything is guessed.

CSV files (``csv:PATH``):

- UTF-8 text, with or without a byte-order mark; blank lines (and rows of empty cells)
  are skipped. At most :data:`MAX_CSV_BYTES`, lines of at most :data:`MAX_CSV_LINE`
  characters; only regular files (not ``/dev/zero``, a
  FIFO or a folder).
- **The header rule**: the first row is a header when every cell is a non-empty word that
  is not a number (``nan``, ``inf`` and ``1e400`` count as numbers here). Any other first
  row is data. A valid data row has a number among its features, so a data row is never
  taken for a header and dropped; a row that fails to parse is an error naming its line
  and column, wherever it is. (A header of numbers, such as ``0,1,2,y``, is therefore read
  as data, and refused with a hint.)
- Features: finite numbers within float32's range; an empty cell, text, ``nan``, ``inf``
  or ``1e39`` is an error naming line and column.
- The target (the last column unless ``target`` names another, by header name or index):
  numbers or text labels. An empty target, ``nan``/``inf`` (``1e400`` included) or a
  missing-value marker (:data:`MISSING_MARKERS`: ``NA``, ``N/A``, ``NULL``, ``?``, ...) is an
  error naming the line: a missing target is never a class of its own.

NPZ files (``npz:PATH``): arrays ``x`` and ``y``, read without unpickling. Garbage (not a
zip, truncated, Python objects) is one line. At most :data:`MAX_NPZ_BYTES` on disk and
:data:`MAX_ARRAY_BYTES` per array once unpacked (checked from each array's header before
it is unpacked). The same target rules hold, naming the row.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     f = pathlib.Path(d) / "a.csv"
...     _ = f.write_text("\\ufeff1,2,g\\n3,4,b\\n")  # no header; a BOM is not a header
...     x, y = read_csv(f, None)
>>> x.tolist(), y
([[1.0, 2.0], [3.0, 4.0]], ['g', 'b'])
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import zipfile
import zlib
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.fileio import format_size, open_input

__all__ = [
    "MAX_ARRAY_BYTES",
    "MAX_CSV_BYTES",
    "MAX_CSV_LINE",
    "MAX_NPZ_BYTES",
    "MISSING_MARKERS",
    "DatasetError",
    "feature_rows",
    "read_csv",
    "read_npz",
    "target_problem",
    "targets_from_array",
]

#: Largest CSV file read (larger data loads faster from ``npz:PATH``).
MAX_CSV_BYTES = 512 << 20
#: Longest line of a CSV file, in characters (400,000 columns of short numbers).
MAX_CSV_LINE = 4 << 20
#: Largest ``.npz`` file read, and largest array in it once unpacked.
MAX_NPZ_BYTES = 4 << 30
MAX_ARRAY_BYTES = 8 << 30
#: Targets taken as missing values (compared without case), besides empty, nan and inf.
MISSING_MARKERS = frozenset({"na", "n/a", "#n/a", "null", "<na>", "?"})
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_TEXT_FIX = (
    "feature columns must be numeric (encode text first, or name the label column with target=)"
)

#: Targets as read: float64 values when every target is a number, else the text labels.
Targets = np.ndarray | list[str]


class DatasetError(LrlabError):
    """A dataset cannot be found, read or used (one line: what, and how to fix it)."""


def target_problem(value: str) -> str | None:
    """Why ``value`` cannot be a target (``"is empty"``, ...), or None when it can.

    >>> [target_problem(v) for v in ["g", "1.5", "", " nan", "-inf", "1e400", "N/A"]]
    [None, None, 'is empty', "holds 'nan'", "holds '-inf'", "holds '1e400'", "holds 'N/A'"]
    """
    value = value.strip()
    if not value:
        return "is empty"
    if value.lower() in MISSING_MARKERS or (_parses(value) and not _is_number(value)):
        return f"holds {value[:30]!r}"
    return None


# --------------------------------------------------------------------------- CSV
def read_csv(path: Path, target: str | int | None) -> tuple[np.ndarray, Targets]:
    """Features (float32, one row per data row) and targets of a CSV file (module docstring).

    Raises:
        DatasetError: the file cannot be read, is over the limit, or a row fails to parse
            (the message names the line and column).
    """
    name = str(path)
    hint = "keep larger data in an .npz file (npz:PATH)"
    with open_input(path, limit=MAX_CSV_BYTES, what="CSV file", hint=hint, error=DatasetError) as f:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
        reader = csv.reader(_short_lines(name, text))
        try:
            return _parse_csv(name, reader, target)
        except UnicodeDecodeError:  # decoded ahead in chunks: find the line itself
            raise DatasetError(
                f"{name}: line {_first_non_utf8_line(f)} is not UTF-8 text; save the file as UTF-8"
            ) from None
        except csv.Error as err:
            raise DatasetError(f"{name}: line {reader.line_num}: {err}; fix the file") from None


def _short_lines(name: str, text: Iterable[str]) -> Iterator[str]:
    """The lines of ``text``, refusing one longer than :data:`MAX_CSV_LINE` characters
    (a file without line breaks would otherwise become one row of millions of cells)."""
    for number, line in enumerate(text, 1):
        if len(line) > MAX_CSV_LINE:
            raise DatasetError(
                f"{name}: line {number} is over the limit of {MAX_CSV_LINE:,} characters; "
                "give one row of data per line"
            )
        yield line


def _first_non_utf8_line(f: Any) -> int:
    f.seek(0)
    for number, raw in enumerate(f, 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return 1


def _parse_csv(name: str, reader: Any, target: str | int | None) -> tuple[np.ndarray, Targets]:
    rows: Iterator[list[str]] = (row for row in reader if any(c.strip() for c in row))
    first = next(rows, None)
    if first is None:
        raise DatasetError(f"{name} holds no rows; give a CSV file with data")
    first_line = reader.line_num
    header = [c.strip() for c in first] if _is_header(first) else None
    width = len(first)
    if width < 2:
        other = next((f"{d!r}" for d in (";", "\t", "|") if d in first[0]), None)
        fix = f"; lrlab reads commas between columns, not {other}" if other else ""
        raise DatasetError(f"{name} has {width} column; it needs features and a target{fix}")
    col = _target_column(name, header, width, target)
    features = [i for i in range(width) if i != col]
    values, labels = array("f"), []  # float32 as Keras trains on (each cell checked)
    for row in itertools.chain([] if header else [first], rows):
        line = reader.line_num
        try:
            labels.append(_row(row, f"{name}: line {line}", features, col, header, values))
        except DatasetError as err:
            if line != first_line or header is not None:
                raise
            raise DatasetError(f"{err}{_header_hint(first, features, line)}") from None
    if not labels:
        raise DatasetError(f"{name} holds a header but no data rows; add data")
    x = np.frombuffer(values, dtype=np.float32).reshape(len(labels), len(features))
    numeric = [_is_number(v) for v in labels]
    if header is None and len(labels) > 1 and not numeric[0] and all(numeric[1:]):
        raise DatasetError(
            f"{name}: line {first_line} has the target {labels[0][:30]!r} where every other "
            f"row has a number; if line {first_line} is a header, give every column a "
            "non-numeric name, else fix its target"
        )
    if all(numeric):
        return x, np.array([float(v) for v in labels], dtype=np.float64)
    return x, labels


def _row(
    row: list[str],
    where: str,
    features: list[int],
    col: int,
    header: list[str] | None,
    values: array,
) -> str:
    """Append the row's features to ``values``; return its target (checked)."""
    if len(row) != len(features) + 1:
        raise DatasetError(
            f"{where} has {len(row)} columns, expected {len(features) + 1}; "
            "fix the file so every row has the same number of columns"
        )
    for c in features:
        values.append(_feature(row[c], f"{where}, column {_column(c, header)}"))
    label = row[col].strip()
    problem = target_problem(label)
    if problem:
        raise DatasetError(
            f"{where}, target column {_column(col, header)} {problem}; "
            "every row needs a target: fill it in or remove the row"
        )
    return label


def _feature(cell: str, where: str) -> float:
    """The value of a feature cell: a finite number within float32's range."""
    cell = cell.strip()
    try:
        value = float(cell)
    except ValueError:
        if not cell:
            raise DatasetError(f"{where} is empty; fill it in or remove the row") from None
        raise DatasetError(f"{where} holds {cell[:30]!r}, not a number; {_TEXT_FIX}") from None
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise DatasetError(
            f"{where} holds {cell[:30]!r}, not a finite float32 number; fix or remove the row"
        )
    return value


def _is_header(row: list[str]) -> bool:
    """Every cell a non-empty word that does not parse as a number (see the module doc)."""
    return all(c.strip() and not _parses(c) for c in row)


def _header_hint(first: list[str], features: list[int], line: int) -> str:
    """A hint for a failing first row that may have been meant as a header (it has words
    among its features)."""
    if any(first[c].strip() and not _parses(first[c]) for c in features):
        return f" (if line {line} is a header, give every column a non-numeric name)"
    return ""


def _column(c: int, header: list[str] | None) -> str:
    return f"{c} ({header[c]!r})" if header else str(c)


def _parses(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _target_column(name: str, header: list[str] | None, width: int, target: str | int | None):
    if target is None:
        return width - 1
    if isinstance(target, bool):
        raise DatasetError(f"target must be a column name or index, got {target!r}")
    if isinstance(target, int):
        if -width <= target < width:
            return target % width
        raise DatasetError(f"{name}: target column {target} does not exist; it has {width}")
    if header is None:
        raise DatasetError(
            f"{name} has no header row, so target={target!r} cannot be found; "
            "give the column index instead"
        )
    if target not in header:
        import difflib

        close = difflib.get_close_matches(target, header, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"columns: {', '.join(header[:12])}"
        raise DatasetError(f"{name}: no column named {target!r}; {hint}")
    if header.count(target) > 1:
        raise DatasetError(
            f"{name}: {header.count(target)} columns are named {target!r}; rename all but one, "
            "or give the target's index"
        )
    return header.index(target)


# --------------------------------------------------------------------------- NPZ
def read_npz(path: Path) -> tuple[np.ndarray, Targets]:
    """Features (float32) and targets of the arrays ``x`` and ``y`` in an ``.npz`` file.

    Raises:
        DatasetError: not an ``.npz`` (or truncated, or holding Python objects), over a
            size limit, without ``x``/``y``, or with bad values (the message names the row).
    """
    name = str(path)
    fix = "give a NumPy .npz file saved with np.savez(path, x=features, y=targets)"
    with open_input(path, limit=MAX_NPZ_BYTES, what="NPZ file", error=DatasetError) as f:
        try:
            if not zipfile.is_zipfile(f):
                raise DatasetError(f"{name} is {_not_npz(f)}; {fix}")
            with zipfile.ZipFile(f) as z:
                members = {n.removesuffix(".npy"): n for n in z.namelist()}
                if "x" not in members or "y" not in members:
                    raise DatasetError(
                        f"{name} holds {sorted(members)}; it needs arrays named 'x' and 'y' "
                        "(np.savez(path, x=features, y=targets))"
                    )
                x, y = (_read_member(name, z, members[k]) for k in ("x", "y"))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DatasetError(f"cannot read {name}: {reason[:160]}; {fix}") from None
    return feature_rows(x, y, name), targets_from_array(np.ravel(y), name)


def feature_rows(x: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """``x`` as float32 rows of features, after checking it against its targets ``y``:
    one row per target, at least one row and one feature, real finite float32 numbers.

    Raises:
        DatasetError: naming the shape, the dtype or the first row that is not finite.

    >>> feature_rows(np.array([[1, 2]]), np.array([0]), "d").dtype.name
    'float32'
    >>> feature_rows(np.zeros((3, 0)), np.zeros(3), "d")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lrlab.experiments.tabular.DatasetError: d: x has shape (3, 0): no features; ...
    """
    y = np.ravel(y)
    if x.ndim < 2 or len(x) != len(y):
        raise DatasetError(
            f"{name}: x has shape {x.shape} and y {y.shape}; "
            "x needs one row per example and y one value per row"
        )
    if len(x) == 0:
        raise DatasetError(f"{name} holds no rows (x has shape {x.shape}); give data with rows")
    if math.prod(x.shape[1:]) == 0:
        raise DatasetError(
            f"{name}: x has shape {x.shape}: no features; give x at least one feature per row"
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(
            f"{name}: x has dtype {x.dtype}; features must be real numbers (integers or floats)"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        x = x.astype(np.float32)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise DatasetError(
            f"{name}: x row {row} holds nan, inf or a number beyond float32; clean the data first"
        )
    return x


def _not_npz(f: Any) -> str:
    """What a file that is not a zip is, for the message."""
    f.seek(0)
    magic = f.read(6)
    if magic == b"\x93NUMPY":
        return "a .npy file (one array), not an .npz"
    if magic[:4] == b"PK\x03\x04":
        return "a truncated or damaged .npz (its zip directory is missing)"
    return "not an .npz file (a zip of arrays)"


def _read_member(name: str, z: zipfile.ZipFile, member: str) -> np.ndarray:
    """One array, after its header is checked: no Python objects, within the size limits."""
    info = z.getinfo(member)
    with z.open(member) as fp:
        version = np.lib.format.read_magic(fp)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(fp)
    array_name = member.removesuffix(".npy")
    if dtype.hasobject:
        raise DatasetError(
            f"{name}: array {array_name!r} holds Python objects, which lrlab does not unpickle; "
            "save numbers or strings (np.asarray(values, dtype=str))"
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise DatasetError(
            f"{name}: array {array_name!r} is {format_size(nbytes)} unpacked, over the limit of "
            f"{format_size(MAX_ARRAY_BYTES)}; use a smaller subset"
        )
    if nbytes > info.file_size:
        raise DatasetError(
            f"{name}: array {array_name!r} is truncated ({info.file_size} bytes for "
            f"{nbytes}); save the file again"
        )
    with z.open(member) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def targets_from_array(y: np.ndarray, name: str) -> Targets:
    """Targets from a 1-D array: float64 values if numeric, else the labels as text.

    Raises:
        DatasetError: a missing target (nan, inf, empty, a :data:`MISSING_MARKERS` value),
            naming its row.

    >>> targets_from_array(np.array([1, 2]), "y").tolist(), targets_from_array(np.array(["a"]), "y")
    ([1.0, 2.0], ['a'])
    """
    if np.issubdtype(y.dtype, np.complexfloating):
        raise DatasetError(f"{name}: the target has dtype {y.dtype}; give real numbers or labels")
    if np.issubdtype(y.dtype, np.number):
        values = y.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise DatasetError(
                f"{name}: the target of row {bad[0]} is {values[bad[0]]}; every row needs a "
                "finite target: fill it in or remove the row"
            )
        return values
    labels = [str(v) for v in y]
    for row, label in enumerate(labels):
        problem = target_problem(label)
        if problem:
            raise DatasetError(
                f"{name}: the target of row {row} {problem}; every row needs a target: "
                "fill it in or remove the row"
            )
    return labels
