"""Replaying the README's console blocks: what a section shows is what the CLI prints.

A console block is a fenced block whose lines start with ``$ `` commands, each followed
by its expected output. :func:`replay` runs every command of a section in a folder, with
an ``lrlab`` on the PATH that runs this tree, and compares the output (stderr
interleaved with stdout, as in a terminal); a file first shown by ``$ cat FILE`` is
created with the content shown.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_section(title: str) -> str:
    """The README's section under the heading ``## <title>`` (up to the next ``## ``)."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(f"## {title}")
    return readme[start : readme.index("\n## ", start + 1)]


def console_blocks(section: str) -> list[list[tuple[str, str]]]:
    """Each console block as (command, expected output) pairs."""
    blocks = []
    for body in re.findall(r"^```\n(\$ .*?)^```$", section, re.MULTILINE | re.DOTALL):
        steps = re.split(r"^\$ ", body, flags=re.MULTILINE)[1:]
        blocks.append([tuple(step.split("\n", 1)) for step in steps])
    return blocks


def console_env(tmp_path: Path) -> dict[str, str]:
    """The environment of the replayed commands: ``lrlab`` (this tree) first on the PATH."""
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
                timeout=600,
            )
            assert done.stdout == expected, command
