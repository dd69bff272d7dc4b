"""Find the legacy Keras calls of a Python source, a prose file or a notebook.

Each scan gives the findings (what to change and why) and the edits that fix them:
spans of the original text, never a regenerated file. See :mod:`lrlab.migrate`.
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
from lrlab.fileio import read_input
from lrlab.migrate.calls import (
    KERAS3_DEFAULT_LR,
    NOT_KERAS,
    CallFix,
    Edit,
    SourceMap,
    apply_edits,
    fix_call,
)

__all__ = [
    "Finding",
    "Scan",
    "SourceFile",
    "check_file",
    "check_files",
    "check_source",
    "check_text",
    "read_source",
    "scan_source",
    "scan_text",
]

_IMPORT = "import lrlab.keras"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One call with legacy arguments.

    Attributes:
        path: the file ("<string>" for :func:`check_source`).
        line, col: 1-based position of the call (columns count characters).
        call: the called name as written (``keras.optimizers.SGD``).
        args: the legacy arguments found, in source order (``("lr", "decay")``).
        message: what Keras 3 does with them and what replaces them.
        replacement: the replacement line(s) (``.py``) or call (prose); None to fix by hand.
    """

    path: str
    line: int
    col: int
    call: str
    args: tuple[str, ...]
    message: str
    replacement: str | None

    def format(self) -> str:
        """``FILE:LINE:COL: message`` and the indented replacement on the next line(s)."""
        fix = self.replacement if self.replacement is not None else "(fix by hand)"
        return f"{self.path}:{self.line}:{self.col}: {self.message}\n    " + "\n    ".join(
            fix.splitlines() or [""]
        )


@dataclasses.dataclass(frozen=True)
class Scan:
    """The findings of one text and the edits that fix the fixable ones.

    ``edits`` never overlap; a call nested in another fixed call is left for the next
    scan of the edited text (so apply, scan again, until no edits remain).
    """

    findings: list[Finding]
    edits: list[Edit]


def _pick_disjoint(fixes: list[tuple[int, CallFix]]) -> list[CallFix]:
    """The fixes (in source order) whose edits overlap no fix picked before them."""
    taken: list[Edit] = []
    picked = []
    for _, fix in sorted(fixes, key=lambda f: f[0]):
        edits = fix.edits or ()
        if not edits:
            continue
        if any(a.begin < b.end and b.begin < a.end for a in edits for b in taken):
            continue
        taken += edits
        picked.append(fix)
    return picked


# --------------------------------------------------------------------------- python
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


def _has_lrlab_keras(tree: ast.Module) -> bool:
    """The module itself runs ``import lrlab.keras`` (so ``lrlab.keras.x`` resolves)."""
    return any(
        isinstance(stmt, ast.Import)
        and any(a.name == "lrlab.keras" and a.asname is None for a in stmt.names)
        for stmt in tree.body
    )


def _import_edit(tree: ast.Module, where: SourceMap) -> Edit:
    """Insert ``import lrlab.keras`` after the module's leading docstring and imports."""
    source = where.source
    newline = m.group() if (m := re.search(r"\r\n|\r|\n", source)) else "\n"
    last = None
    for i, stmt in enumerate(tree.body):
        docstring = i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if not (docstring or isinstance(stmt, ast.Import | ast.ImportFrom)):
            break
        last = stmt
    if last is None:
        at = where.line_bounds(tree.body[0].lineno)[0]
        return Edit(at, at, _IMPORT + newline)
    at = where.line_bounds(last.end_lineno)[1]
    ends_line = source[:at].endswith(("\n", "\r"))
    return Edit(at, at, (_IMPORT + newline) if ends_line else (newline + _IMPORT))


def scan_source(source: str, path: str = "<string>") -> Scan:
    """Findings and edits of Python source (parsed with :mod:`ast`, never run).

    Raises:
        LrlabError: the source is not valid Python (one line naming where).
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        where = "".join(f":{n}" for n in (err.lineno, err.offset) if n is not None)
        raise LrlabError(
            f"{path}{where}: not valid Python ({err.msg}); to scan prose with code in it, "
            "use --text"
        ) from None
    imports = _imports(tree)
    where = SourceMap(source)
    fixes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (fix := fix_call(node, where, imports)):
            fixes.append((where.span(node)[0], node, fix))
    fixes.sort(key=lambda f: f[0])
    picked = _pick_disjoint([(begin, fix) for begin, _, fix in fixes])
    edits = [edit for fix in picked for edit in fix.edits or ()]
    needs_import = not _has_lrlab_keras(tree)
    findings = []
    for begin, node, fix in fixes:
        lines = (where.line_bounds(node.lineno)[0], where.line_bounds(node.end_lineno)[1])
        replacement = None
        if fix.edits is not None:
            inside = [e for e in edits if lines[0] <= e.begin and e.end <= lines[1]]
            text = apply_edits(source[: lines[1]], inside)[lines[0] :]
            replacement = text.rstrip("\r\n")
        message = fix.message
        if needs_import and fix.uses_lrlab:
            message += f" (add `{_IMPORT}`)"
        col = begin - lines[0] + 1
        findings.append(Finding(path, node.lineno, col, fix.call, fix.args, message, replacement))
    if needs_import and any(fix.uses_lrlab for fix in picked):
        edits.append(_import_edit(tree, where))
    return Scan(findings, sorted(edits))


def check_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings in Python source (parsed with :mod:`ast`, never run).

    Raises:
        LrlabError: the source is not valid Python (one line naming where).
    """
    return scan_source(source, path).findings


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


def scan_text(text: str, path: str = "<string>") -> Scan:
    """Findings and edits in prose with code inside (see :mod:`lrlab.migrate` for the cut).

    A fixable call is replaced whole, by its cleaned and fixed text.
    """
    found: list[tuple[int, Finding, CallFix | None]] = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for match in _CALL.finditer(text):
        name, last = match.group(1), match.group(2)
        if name.split(".")[0] in NOT_KERAS:
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
                finding = Finding(path, line, col, name, tuple(legacy), message, None)
                found.append((match.start(), finding, None))
            continue
        fix = fix_call(call, SourceMap(snippet), {})
        if fix is not None:
            new = apply_edits(snippet, fix.edits) if fix.edits is not None else None
            finding = Finding(path, line, col, fix.call, fix.args, fix.message, new)
            whole = dataclasses.replace(fix, edits=(Edit(match.start(), stop, new or ""),))
            found.append((match.start(), finding, whole if new is not None else None))
    picked = _pick_disjoint([(begin, fix) for begin, _, fix in found if fix is not None])
    edits = sorted(edit for fix in picked for edit in fix.edits or ())
    return Scan([finding for _, finding, _ in found], edits)


def check_text(text: str, path: str = "<string>") -> list[Finding]:
    """Findings in prose with code inside (see :mod:`lrlab.migrate` for how it is cut)."""
    return scan_text(text, path).findings


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
#: the largest file scanned (a notebook with its outputs is the big case)
MAX_SOURCE_BYTES = 256 << 20


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """A file's text as read, how to write it back, and how to scan it.

    Attributes:
        path: the file.
        text: its content, newlines as they are in the file.
        encoding: to encode ``text`` back (``utf-8-sig`` keeps a byte-order mark).
        kind: ``"python"``, ``"prose"`` or ``"notebook"``.
    """

    path: Path
    text: str
    encoding: str
    kind: str

    def scan(self, text: str | None = None) -> Scan:
        """Scan ``text`` (default: the file's own) the way this kind of file is read."""
        text = self.text if text is None else text
        if self.kind == "notebook":
            return Scan(_check_notebook(self.path, text), [])
        if self.kind == "python":
            return scan_source(text, str(self.path))
        return scan_text(text, str(self.path))


def read_source(path: str | Path, text: bool | None = None) -> SourceFile:
    """Read one file: ``.py``/``.pyw`` as Python, ``.ipynb`` as a notebook, others as prose.

    Args:
        path: the file.
        text: force prose mode (True) or Python mode (False); None picks by suffix.

    Raises:
        LrlabError: the file cannot be read or decoded.
    """
    path = Path(path)
    if path.suffix == ".ipynb" and text is None:
        kind = "notebook"
    elif path.suffix in (".py", ".pyw") if text is None else not text:
        kind = "python"
    else:
        kind = "prose"
    if not path.exists():
        raise LrlabError(f"{path}: no such file")
    if path.is_dir():
        raise LrlabError(f"{path}: is a directory; give the files to check")
    data = read_input(  # no FIFO, no /dev/zero, nothing without bound
        path, limit=MAX_SOURCE_BYTES, what="source file", hint="give the files that hold the code"
    )
    try:
        if kind == "python":
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        else:
            encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        return SourceFile(path, data.decode(encoding), encoding, kind)
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
    return read_source(path, text).scan().findings


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
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
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
