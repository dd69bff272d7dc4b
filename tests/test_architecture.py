"""The shape of the code is a contract: small files, and the layers of docs/architecture.md.

The layers and the absence of import cycles are checked by import-linter in ``make lint``
(``[tool.importlinter]`` in pyproject.toml); this file checks what import-linter cannot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600


def test_no_source_file_is_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "src" / "lrlab").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by job: {long}"


def test_the_import_contract_holds_and_catches_a_cycle(tmp_path):
    """import-linter keeps the contract on the real tree and breaks on a planted cycle."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (make test installs it)")
    ok = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-2000:]

    # a copy of the package with schedules importing spec (spec imports schedules)
    import shutil

    shutil.copytree(ROOT / "src" / "lrlab", tmp_path / "src" / "lrlab")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    base = tmp_path / "src" / "lrlab" / "schedules" / "base.py"
    base.write_text(base.read_text() + "\nimport lrlab.spec  # noqa: E402,F401\n")
    env = {"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"}
    broken = subprocess.run(
        [lint, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert broken.returncode != 0
    assert "lrlab.schedules" in broken.stdout and "BROKEN" in broken.stdout
