"""Replay the console blocks of a README section: each ``$ command`` runs in a shell, and
what it prints (stderr interleaved, as in a terminal) must be the text shown under it.

A file first shown by ``$ cat FILE`` is created with the content shown. ``lrlab`` on the
shell's PATH is this checkout's CLI, run by the test's Python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_section(heading: str) -> str:
    """The README's text from ``heading`` to the next heading of the same or a higher level."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    end = re.compile(rf"\n#{{1,{level}}} ").search(readme, start + 1)
    return readme[start : end.start() if end else len(readme)]


def console_blocks(section: str) -> list[list[tuple[str, str]]]:
    """Each console block as (command, expected output) pairs."""
    blocks = []
    for body in re.findall(r"^```\n(\$ .*?)^```$", section, re.MULTILINE | re.DOTALL):
        steps = re.split(r"^\$ ", body, flags=re.MULTILINE)[1:]
        blocks.append([tuple(step.split("\n", 1)) for step in steps])
    return blocks


def shell_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH starts with an ``lrlab`` shim for this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "lrlab"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lrlab.cli "$@"\n')
    shim.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "src"),
        "KERAS_BACKEND": "jax",
    }


def replay(blocks: list[list[tuple[str, str]]], work: Path, env: dict[str, str]) -> None:
    """Run every command of ``blocks`` in ``work``; assert each prints what is shown."""
    for block in blocks:
        for command, expected in block:
            shown = re.fullmatch(r"cat (\S+)", command)
            if shown and not (work / shown.group(1)).exists():
                (work / shown.group(1)).write_text(expected)
            done = subprocess.run(  # stderr interleaved with stdout, as in a terminal
                ["bash", "-c", f"exec 2>&1\n{command}"],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                timeout=300,
            )
            assert done.stdout == expected, command
