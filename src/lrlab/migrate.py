"""``lrlab migrate``: find the Keras 2 arguments that Keras 3 rejects or silently ignores.

The code is read with :mod:`ast` and never executed. Reported, with the exact
replacement:

- an optimizer call (``SGD``, ``Adam``, ``RMSprop``, ``Adagrad``, ``Adadelta``,
  ``Adamax``, ``Nadam``, ``AdamW``, ``Ftrl``, ``Lion``, ... as ``keras.optimizers.X``,
  ``optimizers.X``, ``tf.keras.optimizers.X`` or a bare ``X``) with

  - ``lr=``: Keras 3 raises ``ValueError: Argument(s) not recognized``; it is
    ``learning_rate=`` now;
  - ``decay=d``: Keras 3 only warns and trains *without* the decay. Keras 2 used
    ``lr / (1 + d * iterations)`` at every update; the replacement is
    ``learning_rate=lrlab.keras.legacy_decay(lr, d)``, which is that schedule exactly.
    ``decay=0`` (a literal zero) is simply dropped. Without an lr, the optimizer's
    Keras 3 default (= tf.keras 2's) is written out;

- ``Dense(..., init=...)`` (Keras 1; now ``kernel_initializer=``) and ``nb_epoch=`` in any
  call (Keras 1 ``fit``; now ``epochs=``): both raise on Keras 3.

Calls of optimizers imported from PyTorch, optax, JAX or MXNet (``torch.optim.SGD(lr=...)``,
``from torch.optim import SGD``) are left alone.

Files. A ``.py`` file is parsed whole; the replacement is the whole source line with
every fix on it applied. A Jupyter ``.ipynb`` is checked cell by cell the same way
(IPython ``%``/``!`` lines blanked), reported as ``FILE[cell N]:LINE:COL``. Any other
file (``.txt``, ``.md``, a web page saved as text) is prose with code inside, maybe
flattened onto one line: every ``name(`` whose name is one
of the calls above is cut out up to its balanced ``)`` and parsed on its own as a Python
expression, after undoing markdown bold (``**False**``) and typographic quotes; the
replacement is then the call alone. Prose that only *mentions* ``lr=0.1`` outside a call is
not reported. A snippet that still does not parse but holds a legacy argument is reported
with "fix by hand".

>>> [f.args for f in check_source("opt = SGD(lr=0.1, decay=1e-6, momentum=0.9)")]
[('lr', 'decay')]
>>> check_source("opt = SGD(lr=0.1, decay=1e-6, momentum=0.9)")[0].replacement
'opt = SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 1e-6), momentum=0.9)'
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import re
import tokenize
from collections.abc import Iterable
from pathlib import Path

from lrlab.errors import LrlabError

__all__ = ["KERAS3_DEFAULT_LR", "Finding", "check_file", "check_source", "check_text"]

#: Keras 3's default ``learning_rate`` of each optimizer (equal to tf.keras 2's; standalone
#: Keras <= 2.3 had Adagrad 0.01, Adadelta 1.0, Adamax and Nadam 0.002).
KERAS3_DEFAULT_LR: dict[str, float] = {
    "SGD": 0.01,
    "Adam": 0.001,
    "AdamW": 0.001,
    "RMSprop": 0.001,
    "Adagrad": 0.001,
    "Adadelta": 0.001,
    "Adamax": 0.001,
    "Nadam": 0.001,
    "Ftrl": 0.001,
    "Lion": 0.001,
    "Lamb": 0.001,
    "Adafactor": 0.001,
}

_NOT_KERAS = {"torch", "optax", "jax", "flax", "mxnet", "paddle", "optim"}
_RENAMES = {
    "optimizer": {"lr": "learning_rate"},
    "Dense": {"init": "kernel_initializer"},
    "any": {"nb_epoch": "epochs"},
}
_WHY = {
    "lr": "`lr=` raises on Keras 3: renamed `learning_rate=`",
    "init": "`init=` raises on Keras 3: renamed `kernel_initializer=`",
    "nb_epoch": "`nb_epoch=` raises on Keras 3: renamed `epochs=`",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One call with legacy arguments.

    Attributes:
        path: the file ("<string>" for :func:`check_source`).
        line, col: 1-based position of the call (columns count characters).
        call: the called name as written (``keras.optimizers.SGD``).
        args: the legacy arguments found, in source order (``("lr", "decay")``).
        message: what Keras 3 does with them and what replaces them.
        replacement: the replacement line (``.py``) or call (prose); None to fix by hand.
    """

    path: str
    line: int
    col: int
    call: str
    args: tuple[str, ...]
    message: str
    replacement: str | None

    def format(self) -> str:
        """``FILE:LINE:COL: message`` and the indented replacement on the next line."""
        fix = self.replacement if self.replacement is not None else "(fix by hand)"
        return f"{self.path}:{self.line}:{self.col}: {self.message}\n    {fix}"


@dataclasses.dataclass(frozen=True)
class _Fix:
    call: str
    args: tuple[str, ...]
    message: str
    new_call: str


# --------------------------------------------------------------------------- one call
def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_zero(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
        and node.value == 0
    )


def _fix_call(call: ast.Call, source: str, imports: dict[str, str]) -> _Fix | None:
    """The fix for one call, or None when it has no legacy argument."""
    name = _dotted(call.func)
    if name is None:
        return None
    parts = name.split(".")
    resolved = imports.get(parts[0], parts[0]).split(".")[0]
    kind = "any"
    if parts[-1] in KERAS3_DEFAULT_LR and resolved not in _NOT_KERAS:
        kind = "optimizer"
    elif parts[-1] == "Dense":
        kind = "Dense"
    renames = {**_RENAMES["any"], **_RENAMES.get(kind, {})}
    keywords = {k.arg: k for k in call.keywords if k.arg is not None}
    decay = keywords.get("decay") if kind == "optimizer" else None
    found = [k.arg for k in call.keywords if k.arg in renames or k is decay]
    if not found:
        return None

    def src(node: ast.AST) -> str:
        """Source text of a node; a keyword's value keeps its parentheses."""
        if isinstance(node, ast.keyword) and node.arg is not None:
            return (ast.get_source_segment(source, node) or "").split("=", 1)[1].strip()
        return ast.get_source_segment(source, node) or ""

    why = [_WHY[arg] for arg in found if arg in renames]
    new_lr = None  # replacement text of the lr argument's value
    lr_node = None
    if decay is not None and _is_zero(decay.value):
        why.append(f"`decay={src(decay)}` is a no-op Keras 3 warns about: removed")
    elif decay is not None:
        lr_kw = keywords.get("lr") or keywords.get("learning_rate")
        if lr_kw is not None:
            lr_node, lr_text = lr_kw, src(lr_kw)
        elif call.args and not isinstance(call.args[0], ast.Starred):
            lr_node, lr_text = call.args[0], src(call.args[0])
        else:
            lr_text = repr(KERAS3_DEFAULT_LR[parts[-1]])
        new_lr = f"lrlab.keras.legacy_decay({lr_text}, {src(decay)})"
        default = "" if lr_node is not None else f" (lr not given: {parts[-1]}'s default)"
        why.append(
            f"`decay={src(decay)}` is ignored by Keras 3, which trains without it: "
            f"Keras 2's lr / (1 + decay * iterations) per update is legacy_decay{default}"
        )

    items = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
    pieces = []
    for item in items:
        if item is decay:
            continue
        if isinstance(item, ast.keyword) and item.arg == "lr" and "learning_rate" in keywords:
            continue  # both given: Keras 2.3 preferred lr=; keep learning_rate=
        if item is lr_node and isinstance(item, ast.expr):
            pieces.append(new_lr)
        elif isinstance(item, ast.keyword) and item.arg is not None:
            arg = renames.get(item.arg, item.arg)
            value = new_lr if item is lr_node else src(item)
            pieces.append(f"{arg}={value}")
        else:
            pieces.append(src(item))
    if new_lr is not None and lr_node is None:
        n_positional = sum(1 for item in items if isinstance(item, ast.expr))
        pieces.insert(n_positional, f"learning_rate={new_lr}")
    short = parts[-1]
    message = f"{short}: " + "; ".join(why)
    return _Fix(name, tuple(found), message, f"{src(call.func)}({', '.join(pieces)})")


# --------------------------------------------------------------------------- python files
def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, from every import in the module."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    out[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def check_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings in Python source (parsed with :mod:`ast`, never run).

    Raises:
        LrlabError: the source is not valid Python (one line naming where).
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        raise LrlabError(
            f"{path}:{err.lineno}:{err.offset}: not valid Python ({err.msg}); to scan prose "
            "with code in it, use --text"
        ) from None
    imports = _imports(tree)
    needs_import = "lrlab" not in {origin.split(".")[0] for origin in imports.values()}
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, byte_col: int) -> int:
        line = lines[lineno - 1]
        return starts[lineno - 1] + len(line.encode()[:byte_col].decode(errors="replace"))

    fixes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (fix := _fix_call(node, source, imports)):
            begin = offset(node.lineno, node.col_offset)
            end = offset(node.end_lineno, node.end_col_offset)
            fixes.append((begin, end, node, fix))
    fixes.sort(key=lambda f: f[0])
    findings = []
    for begin, _, node, fix in fixes:
        region = (starts[node.lineno - 1], starts[node.end_lineno])
        text = _apply(source, region, [(b, e, f.new_call) for b, e, _, f in fixes])
        message = fix.message
        if needs_import and "legacy_decay" in fix.new_call:
            message += " (add `import lrlab.keras`)"
        col = begin - starts[node.lineno - 1] + 1
        findings.append(
            Finding(path, node.lineno, col, fix.call, fix.args, message, text.rstrip("\r\n"))
        )
    return findings


def _apply(source: str, region: tuple[int, int], edits: list[tuple[int, int, str]]) -> str:
    """``source[region]`` with the outermost edits inside the region applied."""
    lo, hi = region
    inside = [e for e in edits if lo <= e[0] and e[1] <= hi]
    outer = [e for e in inside if not any(o[0] <= e[0] and e[1] <= o[1] and o != e for o in inside)]
    out, pos = [], lo
    for begin, end, new in sorted(outer):
        out.append(source[pos:begin])
        out.append(new)
        pos = end
    out.append(source[pos:hi])
    return "".join(out)


# --------------------------------------------------------------------------- prose
_CALL = re.compile(r"(?<![\w.])((?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*))\s*\(")
_TARGETS = {*KERAS3_DEFAULT_LR, "Dense"}
_LEGACY_TEXT = re.compile(r"\b(lr|decay|init|nb_epoch)\s*=")
_CLEANUPS = (
    (re.compile(r"\*\*(\w+)\*\*"), r"\1"),  # markdown bold inside code: nesterov=**False**
    (re.compile("[\u201c\u201d\u201e]"), '"'),
    (re.compile("[\u2018\u2019]"), "'"),
    (re.compile("\u00d7"), "*"),
    (re.compile("[\u00a0\u2009\u202f]"), " "),
)
_MAX_SNIPPET = 4000


def _balanced_end(text: str, open_paren: int) -> int | None:
    """Index just past the ``)`` matching ``text[open_paren]``, skipping quoted strings."""
    depth, i, quote = 0, open_paren, None
    stop = min(len(text), open_paren + _MAX_SNIPPET)
    while i < stop:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote or ch == "\n":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def check_text(text: str, path: str = "<string>") -> list[Finding]:
    """Findings in prose with code inside (see the module docstring for how it is cut)."""
    findings = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for match in _CALL.finditer(text):
        name, last = match.group(1), match.group(2)
        if name.split(".")[0] in _NOT_KERAS:
            continue
        end = _balanced_end(text, match.end() - 1)
        line_end = text.find("\n", match.end())
        stop = end or (len(text) if line_end < 0 else line_end)
        snippet = text[match.start() : stop]
        if last not in _TARGETS and "nb_epoch" not in snippet:
            continue
        for pattern, repl in _CLEANUPS:
            snippet = pattern.sub(repl, snippet)
        line = _line_of(line_starts, match.start())
        col = match.start() - line_starts[line - 1] + 1
        try:
            call = ast.parse(snippet, mode="eval").body if end else None
        except SyntaxError:
            call = None
        if not isinstance(call, ast.Call):
            legacy = sorted(set(_LEGACY_TEXT.findall(snippet)))
            if last in _TARGETS and legacy:
                args = ", ".join(f"{a}=" for a in legacy)
                message = f"{last}: a call with {args} that is not valid Python"
                findings.append(Finding(path, line, col, name, tuple(legacy), message, None))
            continue
        fix = _fix_call(call, snippet, {})
        if fix is not None:
            findings.append(Finding(path, line, col, fix.call, fix.args, fix.message, fix.new_call))
    return findings


def _line_of(line_starts: list[int], pos: int) -> int:
    lo, hi = 0, len(line_starts)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if line_starts[mid] <= pos:
            lo = mid
        else:
            hi = mid
    return lo + 1


# --------------------------------------------------------------------------- files
def _read(path: Path, python: bool) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LrlabError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LrlabError(f"{path}: is a directory; give the files to check") from None
    except OSError as err:
        raise LrlabError(f"{path}: cannot read ({err.strerror})") from None
    try:
        if python:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            return data.decode(encoding)
        return data.decode("utf-8-sig")
    except (UnicodeDecodeError, SyntaxError, LookupError):
        raise LrlabError(f"{path}: not a text file (cannot decode it as UTF-8)") from None


def check_file(path: str | Path, text: bool | None = None) -> list[Finding]:
    """Findings in one file: ``.py`` is parsed as Python, anything else as prose.

    Args:
        path: the file.
        text: force prose mode (True) or Python mode (False); None picks by suffix.

    Raises:
        LrlabError: the file cannot be read or (Python mode) does not parse.
    """
    path = Path(path)
    if path.suffix == ".ipynb" and text is None:
        return _check_notebook(path, _read(path, python=False))
    python = path.suffix in (".py", ".pyw") if text is None else not text
    source = _read(path, python)
    return check_source(source, str(path)) if python else check_text(source, str(path))


_MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def _check_notebook(path: Path, raw: str) -> list[Finding]:
    """Each code cell as Python (IPython ``%``/``!`` lines blanked); prose mode if it fails.

    Findings are reported as ``FILE[cell N]:LINE:COL`` with N counting all cells from 1.
    """
    try:
        cells = json.loads(raw)["cells"]
        sources = [
            (n, c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
            for n, c in enumerate(cells, start=1)
            if c.get("cell_type") == "code"
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LrlabError(
            f"{path}: not a Jupyter notebook (no readable 'cells'); try --text"
        ) from None
    findings = []
    for n, source in sources:
        label = f"{path}[cell {n}]"
        try:
            findings += check_source(_MAGIC.sub("", source), label)
        except LrlabError:
            findings += check_text(source, label)
    return findings


def check_files(paths: Iterable[str | Path], text: bool | None = None) -> list[Finding]:
    """Findings of every file, in order; reads and parses all of them before returning."""
    return [finding for path in paths for finding in check_file(path, text)]
