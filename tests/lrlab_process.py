"""lrlab as a user runs it: ``python -m lrlab.cli ARGS`` in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: the command line that starts lrlab
LRLAB = [sys.executable, "-m", "lrlab.cli"]


def lrlab_env(cwd: Path | None = None, **extra: str) -> dict[str, str]:
    """This process's environment with ``KERAS_BACKEND=jax``, the compile cache in
    ``cwd/cache`` when ``cwd`` is given (the test's own), and ``extra`` on top."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    if cwd is not None:
        env["LRLAB_CACHE"] = str(Path(cwd) / "cache")
    return {**env, **extra}


def run_lrlab(
    *args: object,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """``lrlab ARGS`` run to its end in ``cwd`` (environment: ``env``, default
    :func:`lrlab_env` of ``cwd``), its output captured as text."""
    return subprocess.run(
        [*LRLAB, *map(str, args)],
        cwd=cwd,
        env=lrlab_env(cwd) if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line of a run that ended on bad input (exit 2, ``lrlab: error: ...``)."""
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("lrlab: error: "), line
    return line
