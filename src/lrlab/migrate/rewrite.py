"""Apply the fixes of a scan to a file: a unified diff, or the file rewritten in place.

Fixes are applied as edits of source spans, then the result is scanned again (a call
nested in a fixed call is fixed on the next round), until nothing is left to change,
as ``ruff check --fix`` does. What cannot be fixed safely stays, reported.

>>> import pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     path = pathlib.Path(d) / "train.py"
...     _ = path.write_text("opt = SGD(lr=0.1, momentum=0.9)  # keep me\\n")
...     migration = migrate_file(path)
...     _ = migration.write()
...     print(path.read_text(), end="")
opt = SGD(learning_rate=0.1, momentum=0.9)  # keep me
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from pathlib import Path

from lrlab.errors import LrlabError
from lrlab.fileio import write_atomic
from lrlab.migrate.calls import apply_edits
from lrlab.migrate.scan import Finding, SourceFile, read_source

__all__ = ["Migration", "migrate_file", "migrate_files"]

_MAX_ROUNDS = 10
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclasses.dataclass(frozen=True)
class Migration:
    """One file before and after its fixes.

    Attributes:
        source: the file as read.
        migrated: its text with every safe fix applied.
        findings: what the original holds (fixable or not).
        remaining: what the migrated text still holds (to fix by hand; positions in it).
    """

    source: SourceFile
    migrated: str
    findings: list[Finding]
    remaining: list[Finding]

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def by_hand(self) -> list[Finding]:
        """The findings of the original that no fix applies to (positions in the original)."""
        if self.source.kind == "notebook":
            return list(self.findings)  # notebooks are reported, never rewritten
        return [f for f in self.findings if f.replacement is None]

    @property
    def changed(self) -> bool:
        return self.migrated != self.source.text

    def diff(self) -> str:
        """The unified diff from the file to its migrated text ("" when unchanged)."""
        name = str(self.path)
        lines = difflib.unified_diff(
            _LINES.findall(self.source.text), _LINES.findall(self.migrated), name, name
        )
        return "".join(
            line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
            for line in lines
        )

    def write(self) -> bool:
        """Replace the file by its migrated text (atomically, same mode); False if unchanged."""
        if not self.changed:
            return False
        try:
            mode = self.path.stat().st_mode
            write_atomic(self.path, self.migrated.encode(self.source.encoding))
            self.path.chmod(mode)
        except OSError as err:
            raise LrlabError(f"{self.path}: cannot write ({err.strerror or err})") from None
        return True


def migrate_file(path: str | Path, text: bool | None = None) -> Migration:
    """Read, scan and fix one file in memory (nothing is written).

    Args:
        path: the file (``.py`` as Python, ``.ipynb`` as a notebook, others as prose).
        text: force prose mode (True) or Python mode (False); None picks by suffix.

    Raises:
        LrlabError: the file cannot be read, or (Python mode) does not parse.
    """
    source = read_source(path, text)
    scan = source.scan()
    findings, current = scan.findings, source.text
    for _ in range(_MAX_ROUNDS):
        if not scan.edits:
            break
        current = apply_edits(current, scan.edits)
        scan = source.scan(current)  # Python: raises if a fix broke the syntax (no write)
    return Migration(source, current, findings, scan.findings)


def migrate_files(paths: Iterable[str | Path], text: bool | None = None) -> list[Migration]:
    """:func:`migrate_file` of every file; all are read and fixed before any is written."""
    return [migrate_file(path, text) for path in paths]
