"""Datasets for experiments: loading by name, a seeded split, standardization on train only.

A dataset reference (``[data] dataset = ...`` in an experiment file) is one of:

- ``ionosphere``: the UCI Ionosphere data (351 x 34, labels ``g``/``b``), downloaded once
  from :data:`IONOSPHERE_URL` into the cache directory (``$LRLAB_CACHE`` or
  ``~/.cache/lrlab``) and checked against :data:`IONOSPHERE_SHA256`;
- ``breast_cancer``, ``digits``, ``wine``, ``iris``: scikit-learn's bundled data (offline);
  ``digits`` keeps its 8x8 image shape (an ``mlp`` flattens it, a ``cnn`` convolves it);
- ``csv:PATH``: a numeric CSV file (an optional header row); the target is the last
  column unless ``target`` names another (header name or 0-based index, negative from the
  end); string labels are encoded as their sorted order (``b`` -> 0, ``g`` -> 1);
- ``npz:PATH``: a NumPy ``.npz`` with arrays ``x`` and ``y``;

  both read by :mod:`lrlab.experiments.tabular`, which validates before it guesses: a
  header is only a row of words, never a data row with an odd cell; a cell that does not
  parse is an error naming line and column; a missing target (empty, nan, inf, ``NA``) is an
  error naming the line; files are size-limited and must be regular files;
- ``keras:cifar10``, ``keras:mnist``, ``keras:fashion_mnist``: ``keras.datasets`` (their
  training part; needs the network on first use).

Relative paths are relative to the experiment file's folder.

The task (``auto`` by default) is inferred from the target: text labels are classes, and so
are whole numbers with at most :data:`MAX_CLASSES_AUTO` (50) distinct values; other numbers
are a regression target. Text labels with more than 50 distinct values are refused under
``auto`` (a column of numbers with one typo would otherwise become thousands of classes):
set ``task = "multiclass"`` to classify them.

Splitting (:func:`split_dataset`) takes ``floor(n * (1 - fraction))`` rows for training, as
Keras' ``validation_split`` does. ``stratified`` (default for classification) and
``random`` draw the rows from the trial's split seed; ``tail`` takes the last rows, fixed,
exactly like Keras' ``validation_split``. Standardization (z-score per feature) is fit on
the training rows only and applied to both parts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.experiments.tabular import (
    DatasetError,
    Targets,
    feature_rows,
    read_csv,
    read_npz,
    target_problem,
    targets_from_array,
)
from lrlab.fileio import write_atomic

__all__ = [
    "BUILTIN",
    "IONOSPHERE_SHA256",
    "MAX_CLASSES_AUTO",
    "IONOSPHERE_URL",
    "Dataset",
    "DatasetError",
    "Split",
    "batch_order",
    "cache_dir",
    "from_arrays",
    "load_dataset",
    "select_classes",
    "split_dataset",
]

IONOSPHERE_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/ionosphere/ionosphere.data"
)
#: sha256 of the UCI file. ../shared/data/ionosphere.csv is the same bytes without the final
#: newline; the value agrees with an independent pin of the same URL (a Nix fetchurl hash).
IONOSPHERE_SHA256 = "46d52186b84e20be52918adb93e8fb9926b34795ff7504c24350ae0616a04bbd"
#: sha256 of the same file without its final newline (../shared/data/ionosphere.csv): that
#: copy plus ``\n`` hashes to IONOSPHERE_SHA256 (computed and tested), so it is accepted too.
IONOSPHERE_SHA256_NO_FINAL_NEWLINE = (
    "fd6dd7864b55d56dac0a1e6e24af9ccc35bf2555ac79af8ab9f3d1daa065ab83"
)

SKLEARN = ("breast_cancer", "digits", "wine", "iris")
KERAS = ("cifar10", "mnist", "fashion_mnist")
BUILTIN = ("ionosphere", *SKLEARN)
TASKS = ("auto", "binary", "multiclass", "regression")
SPLITS = ("stratified", "random", "tail")
#: Under task ``auto``, the most distinct target values taken as classes (more text labels
#: are refused: ask for ``task = "multiclass"``; more whole numbers are a regression target).
MAX_CLASSES_AUTO = 50
#: Largest download accepted by :func:`fetch`.
MAX_DOWNLOAD_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``x`` (float32, ``(n, features)`` or ``(n, h, w, c)``) and targets ``y``.

    ``y`` holds class indices (int64) for ``binary``/``multiclass`` tasks and float32
    values for ``regression``; ``classes`` names the classes in index order.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    task: str
    classes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """sha256 over the arrays' shapes, dtypes and bytes (identifies in-memory data)."""
        h = hashlib.sha256()
        for a in (self.x, self.y):
            h.update(f"{a.shape}{a.dtype}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """Training and validation arrays (standardized when asked) and the rows they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    train_rows: np.ndarray | None = None
    val_rows: np.ndarray | None = None


# --------------------------------------------------------------------------- loading
def cache_dir() -> Path:
    """Where downloads are kept: ``$LRLAB_CACHE`` or ``~/.cache/lrlab``."""
    return Path(os.environ.get("LRLAB_CACHE") or Path.home() / ".cache" / "lrlab")


def load_dataset(
    ref: str,
    *,
    target: str | int | None = None,
    task: str = "auto",
    limit: int | None = None,
    base: Path | None = None,
    classes: Sequence[str | int] | None = None,
) -> Dataset:
    """Load a dataset by reference (see the module docstring).

    Args:
        ref: ``ionosphere``, ``digits``, ``csv:PATH``, ``npz:PATH``, ``keras:mnist``, ...
        target: for CSV files, the target column (header name or index); default: last.
        task: ``auto`` (classification when the target is text, or whole numbers with at
            most 50 distinct values; otherwise regression), ``binary``, ``multiclass`` or
            ``regression``.
        limit: keep at most this many rows (a fixed random subset, the same every time).
        base: folder that relative paths are relative to (default: the working directory).
        classes: keep only the rows of these classes, relabelled ``0 .. k-1`` in this
            order (:func:`select_classes`), before ``limit``.

    >>> ds = load_dataset("iris")
    >>> ds.x.shape, ds.task, ds.classes
    ((150, 4), 'multiclass', ('setosa', 'versicolor', 'virginica'))
    """
    if not isinstance(ref, str) or not ref.strip():
        raise DatasetError("empty dataset; use e.g. 'digits', 'ionosphere' or 'csv:PATH'")
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    kind, _, rest = ref.partition(":")
    if target is not None and kind != "csv":
        raise DatasetError(f"target= applies to csv: datasets only, not {ref!r}; remove it")
    if not rest:
        if ref in BUILTIN:
            ds = _ionosphere() if ref == "ionosphere" else _sklearn(ref)
        else:
            raise DatasetError(f"unknown dataset {ref!r}; {_dataset_hint(ref)}")
    elif kind == "csv":
        ds = _csv(_resolve(rest, base), target)
    elif kind == "npz":
        ds = _npz(_resolve(rest, base))
    elif kind == "keras":
        ds = _keras(rest)
    else:
        raise DatasetError(f"unknown dataset {ref!r}; {_dataset_hint(kind)}")
    ds = _with_task(ds, "auto" if classes is not None and task == "binary" else task)
    if classes is not None:
        ds = select_classes(ds, classes, task)
    if limit is not None and limit < ds.n:
        rows = np.sort(np.random.default_rng(0).permutation(ds.n)[:limit])
        ds = dataclasses.replace(ds, x=ds.x[rows], y=ds.y[rows])
    return ds


def select_classes(ds: Dataset, classes: Sequence[str | int], task: str = "auto") -> Dataset:
    """The rows of ``classes`` (names as the dataset gives them, e.g. ``5`` or ``"5"`` for
    digits), relabelled ``0 .. k-1`` in the order given: ``digits`` with ``[5, 6, 7, 8, 9]``
    is a 5-class task whose class 0 is the digit 5. Two classes under task ``auto`` are
    a binary task.

    >>> ds = select_classes(load_dataset("iris"), ["virginica", "setosa"])
    >>> ds.task, ds.classes, ds.n, sorted(set(ds.y.tolist()))
    ('binary', ('virginica', 'setosa'), 100, [0, 1])
    >>> select_classes(load_dataset("digits"), [5, 12])
    Traceback (most recent call last):
    ...
    lrlab.experiments.tabular.DatasetError: classes: digits has no class '12'; its classes \
are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
    """
    if ds.task == "regression":
        raise DatasetError(f"classes: {ds.name} has a regression target; remove classes")
    names = [str(c) for c in classes]
    if len(names) < 2 or len(set(names)) != len(names):
        raise DatasetError(f"classes: name at least two different classes, got {list(classes)}")
    index = {c: i for i, c in enumerate(ds.classes)}
    for name in names:
        if name not in index:
            raise DatasetError(
                f"classes: {ds.name} has no class {name!r}; its classes are "
                f"{', '.join(ds.classes[:20])}{', ...' if len(ds.classes) > 20 else ''}"
            )
    new = np.full(len(ds.classes), -1, np.int64)
    new[[index[name] for name in names]] = np.arange(len(names))
    rows = new[ds.y] >= 0
    picked = dataclasses.replace(ds, x=ds.x[rows], y=new[ds.y[rows]], classes=tuple(names))
    if task == "binary" and len(names) != 2:
        raise DatasetError(f"classes: task 'binary' needs 2 classes, got {len(names)}")
    if task == "multiclass" or len(names) > 2:
        return dataclasses.replace(picked, task="multiclass")
    return dataclasses.replace(picked, task="binary")


def from_arrays(x: Any, y: Any, *, name: str = "arrays", task: str = "auto") -> Dataset:
    """A dataset from in-memory arrays (features ``x``, one target per row in ``y``).

    >>> ds = from_arrays([[0.0], [1.0], [2.0], [3.0]], ["a", "b", "a", "b"])
    >>> ds.task, ds.classes, ds.y.tolist()
    ('binary', ('a', 'b'), [0, 1, 0, 1])
    """
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    x, y = np.asarray(x), np.asarray(y)
    return _with_task(
        _from_targets(name, feature_rows(x, y, name), targets_from_array(np.ravel(y), name)), task
    )


def _dataset_hint(name: str) -> str:
    import difflib

    names = [*BUILTIN, *(f"keras:{k}" for k in KERAS)]
    close = difflib.get_close_matches(name, names, n=1)
    mean = f"did you mean {close[0]!r}? " if close else ""
    return f"{mean}use one of {', '.join(BUILTIN)}, csv:PATH, npz:PATH, keras:{'|'.join(KERAS)}"


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


def _encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    classes = tuple(sorted(set(labels)))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels], dtype=np.int64), classes


def _with_task(ds: Dataset, task: str) -> Dataset:
    """Fix the task: infer it (``auto``) or check that the requested one fits the target.

    Loaders return ``task="classes"`` (text labels, already encoded) or ``"numeric"``.
    """
    if ds.task == "numeric":
        values = np.asarray(ds.y, dtype=np.float64)
        uniq = np.unique(values)
        few_whole = bool(np.all(values == np.round(values))) and len(uniq) <= MAX_CLASSES_AUTO
        if task == "regression" or (task == "auto" and not few_whole):
            return dataclasses.replace(ds, y=values.astype(np.float32), task="regression")
        classes = tuple(_format_number(u) for u in uniq)
        y = np.searchsorted(uniq, values).astype(np.int64)
        ds = dataclasses.replace(ds, y=y, task="classes", classes=classes)
    elif task == "regression":
        raise DatasetError(
            f"{ds.name}: the target holds text labels, so task 'regression' does not fit; "
            f"use task = 'auto'{_text_among_numbers(ds.classes)}"
        )
    k = len(ds.classes)
    if task == "auto" and k > MAX_CLASSES_AUTO:
        raise DatasetError(
            f"{ds.name}: the target has {k} distinct labels, more than {MAX_CLASSES_AUTO} for "
            "task 'auto'; set task = 'multiclass' if they are classes"
            + _text_among_numbers(ds.classes)
        )
    if k < 2:
        raise DatasetError(f"{ds.name}: the target has {k} class; a classifier needs at least 2")
    if task == "binary" and k != 2:
        raise DatasetError(f"{ds.name}: task 'binary' needs 2 classes, the target has {k}")
    return dataclasses.replace(ds, task="binary" if k == 2 else "multiclass")


def _text_among_numbers(labels: Sequence[str]) -> str:
    """A hint when a few text labels sit among numbers (a typo in a regression target)."""
    text = [v for v in labels if target_problem(v) is None and not _is_finite_number(v)]
    if 0 < len(text) <= len(labels) // 2:
        return f" (or, for a regression target, fix the text {text[0][:30]!r} among numbers)"
    return ""


def _is_finite_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _format_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _ionosphere() -> Dataset:
    path = fetch(
        IONOSPHERE_URL,
        IONOSPHERE_SHA256,
        "ionosphere.data",
        variants=(IONOSPHERE_SHA256_NO_FINAL_NEWLINE,),
    )
    ds = _csv(path, None)
    return dataclasses.replace(ds, name="ionosphere")


def fetch(url: str, sha256: str, filename: str, variants: tuple[str, ...] = ()) -> Path:
    """The cached copy of ``url`` (downloaded on first use), checked against ``sha256``
    (or one of the known ``variants`` of the same content, e.g. without a final newline).

    A cached file with another checksum is downloaded again. Errors say where to put the
    file by hand, and when a file is there but refused, its checksum and the expected one.
    """
    target = cache_dir() / filename
    found = _sha256(target) if target.is_file() else None
    if found is not None and found in (sha256, *variants):
        return target
    manual = f"put the file at {target} or use dataset = 'csv:PATH'"
    if found is not None:
        manual = (
            f"the file at {target} is refused: its sha256 is {found}, expected {sha256} "
            f"(another or a damaged copy); put the original there or use dataset = 'csv:PATH'"
        )
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except OSError as err:
        raise DatasetError(f"could not download {url} ({_reason(err)}); {manual}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:  # a wrong or oversized download is never written
        raise DatasetError(f"{url} has sha256 {got}, expected {sha256}; {manual}")
    try:
        return write_atomic(target, data)
    except LrlabError as err:
        raise DatasetError(f"{err}; or {manual}") from None


def _reason(err: OSError) -> str:
    reason = getattr(err, "reason", None) or err.strerror or err
    return str(reason).splitlines()[0] if str(reason) else type(err).__name__


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sklearn(name: str) -> Dataset:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    x = np.asarray(bunch.images if name == "digits" else bunch.data, dtype=np.float32)
    if name == "digits":
        x = x[..., None]
    classes = tuple(str(c) for c in bunch.target_names)
    return Dataset(name, x, np.asarray(bunch.target, dtype=np.int64), "classes", classes)


def _csv(path: Path, target: str | int | None) -> Dataset:  # see lrlab.experiments.tabular
    x, y = read_csv(path, target)
    return _from_targets(str(path), x, y)


def _npz(path: Path) -> Dataset:
    x, y = read_npz(path)
    return _from_targets(str(path), x, y)


def _from_targets(name: str, x: np.ndarray, y: Targets) -> Dataset:
    """Numeric targets stay numbers (the task decides); text labels become class indices."""
    if isinstance(y, np.ndarray):
        return Dataset(name, x, y, "numeric")
    labels, classes = _encode_labels(y)
    return Dataset(name, x, labels, "classes", classes)


def _keras(which: str) -> Dataset:
    if which not in KERAS:
        raise DatasetError(f"unknown dataset 'keras:{which}'; {_dataset_hint('keras:' + which)}")
    import keras

    try:  # keras prints its download progress: keep stdout for results
        with contextlib.redirect_stdout(sys.stderr):
            (x, y), _ = getattr(keras.datasets, which).load_data()
    except Exception as err:  # network errors surface as many exception types
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(
            f"keras:{which} is not available ({reason[:160]}); keras.datasets needs the "
            "network on first use: connect once, or save the arrays as npz:PATH"
        ) from None
    x = np.asarray(x, dtype=np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., None]
    y = np.ravel(y).astype(np.int64)
    names = {
        "cifar10": ("airplane automobile bird cat deer dog frog horse ship truck".split()),
        "fashion_mnist": (
            "tshirt trouser pullover dress coat sandal shirt sneaker bag boot".split()
        ),
    }.get(which, [str(i) for i in range(10)])
    return Dataset(f"keras:{which}", x, y, "classes", tuple(names))


# --------------------------------------------------------------------------- splitting
def split_dataset(
    ds: Dataset,
    *,
    validation: float | Dataset,
    method: str = "stratified",
    seed: int = 0,
    standardize: bool = True,
) -> Split:
    """Training and validation parts of ``ds`` for one trial.

    ``validation`` is a fraction in (0, 1) or a holdout :class:`Dataset` (then all of
    ``ds`` trains). The training part has ``floor(n * (1 - fraction))`` rows (Keras'
    ``validation_split`` rule). ``stratified`` keeps each class's share (classes with
    few rows are rounded by largest remainder), ``random`` draws rows uniformly, both
    from ``seed``; ``tail`` takes the last rows, like Keras. Standardization is fit on the
    training rows only (features with zero spread are left unscaled).

    >>> ds = load_dataset("iris")
    >>> s = split_dataset(ds, validation=0.2, seed=1)
    >>> len(s.y_train), len(s.y_val), np.bincount(s.y_val).tolist()
    (120, 30, [10, 10, 10])
    >>> bool(abs(s.x_train.mean(axis=0)).max() < 1e-5)
    True
    """
    if isinstance(validation, Dataset):
        train_rows = val_rows = None
        x_tr, y_tr, x_va, y_va = ds.x, ds.y, validation.x, validation.y
    else:
        n_train = int(math.floor(ds.n * (1.0 - float(validation))))
        if n_train < 1 or n_train >= ds.n:
            raise DatasetError(
                f"validation fraction {validation} leaves {n_train} of {ds.n} rows for "
                "training; use a fraction that keeps rows in both parts"
            )
        if method == "tail":
            train_rows, val_rows = np.arange(n_train), np.arange(n_train, ds.n)
        elif method == "random" or ds.task == "regression":
            perm = np.random.default_rng(seed).permutation(ds.n)
            train_rows, val_rows = np.sort(perm[:n_train]), np.sort(perm[n_train:])
        elif method == "stratified":
            train_rows, val_rows = _stratified(ds.y, ds.n - n_train, seed)
        else:
            raise DatasetError(f"unknown split {method!r}; use one of {', '.join(SPLITS)}")
        x_tr, y_tr, x_va, y_va = ds.x[train_rows], ds.y[train_rows], ds.x[val_rows], ds.y[val_rows]
    if standardize:
        mean = x_tr.mean(axis=0, dtype=np.float64)
        std = x_tr.std(axis=0, dtype=np.float64)
        std = np.where(std > 1e-12, std, 1.0)
        x_tr = ((x_tr - mean) / std).astype(np.float32)
        x_va = ((x_va - mean) / std).astype(np.float32)
    return Split(
        np.ascontiguousarray(x_tr, dtype=np.float32),
        y_tr,
        np.ascontiguousarray(x_va, dtype=np.float32),
        y_va,
        train_rows,
        val_rows,
    )


def _stratified(y: np.ndarray, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (n_val / len(y))
    take = np.floor(exact).astype(int)
    rest = n_val - int(take.sum())
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:rest]] += 1
    val = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take, strict=True)]
    val_rows = np.sort(np.concatenate(val))
    train_rows = np.setdiff1d(np.arange(len(y)), val_rows)
    return train_rows, val_rows


def batch_order(order_seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training rows in ``epoch`` (0-based) for a trial's order seed.

    Every engine feeds batches in this order: rows ``order[i*b:(i+1)*b]`` form batch ``i``
    (the last batch may be short). Random access by epoch, so an engine can start anywhere.

    >>> batch_order(7, 0, 5).tolist() == batch_order(7, 0, 5).tolist()
    True
    >>> sorted(batch_order(7, 3, 5).tolist())
    [0, 1, 2, 3, 4]
    """
    return np.random.default_rng([int(order_seed), int(epoch)]).permutation(n)
