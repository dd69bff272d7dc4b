"""What a run is doing, on stderr: a live bar on a terminal, plain lines in a log file.

:class:`RunProgress` is owned by one run (the runner makes it; nothing global). Long steps
(loading the data, checking the model) run inside :meth:`RunProgress.doing`; an engine's
news (compiling, a chunk trained) goes to :meth:`RunProgress.step`; trained trials
advance it with :meth:`RunProgress.advance`. An engine gets the step announcer as an
optional callback (``progress=`` in its options, ``None``: silent), so it can say what it
is doing between results, e.g. the population engine between the epochs of a chunk of
trials (trial-epochs done, :func:`counted`, and the best trial so far).

On a terminal the bar is rich's (trials done / to run, elapsed, eta, the best config so
far) and a step shows in its description. When stderr is not a terminal (a log file, a
pipe), every step and every advance is one plain, complete line, e.g.::

    trials 12/40 (30%) 0:00:31 best: cosine val_accuracy=0.9712 (n=3)

>>> import io
>>> log = io.StringIO()
>>> progress = RunProgress(stream=log)
>>> with progress.doing("loading data"):
...     pass
>>> progress.step("compiling 2 programs")
>>> progress.start(4, "")
>>> progress.advance(2, "best: a loss=0.1000 (n=2)")
>>> progress.stop()
>>> print(log.getvalue().replace("0:00:00 ", ""), end="")
loading data (0.0s)
compiling 2 programs
trials 2/4 (50%) best: a loss=0.1000 (n=2)
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["RunProgress", "counted"]


def counted(done: int, total: int, unit: str = "") -> str:
    """``done/total unit (share%)``, thousands separated (no share when ``total`` is 0).

    >>> counted(12_000, 25_000, "trial-epochs"), counted(4, 4), counted(3, 0)
    ('12,000/25,000 trial-epochs (48%)', '4/4 (100%)', '3/0')
    """
    share = f" ({100 * done // total}%)" if total else ""
    return f"{done:,}/{total:,}{' ' + unit if unit else ''}{share}"


class RunProgress:
    """Progress of one run on ``stream`` (stderr by default); ``quiet`` shows nothing."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.live = not quiet and _is_terminal(self.stream)
        self.total = 0
        self.done = 0
        self._t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._held: list[str] = []  # finished steps, said once the run goes on

    def step(self, text: str) -> None:
        """A long step begins (or an engine reports where it is): say so."""
        if self.quiet:
            return
        self.release()
        if self._bar is not None:
            self._bar.update(self._task, description=text)
        else:
            self._line(text)

    @contextlib.contextmanager
    def doing(self, text: str) -> Iterator[None]:
        """A long step before the trials (loading data, checking the model): a transient
        spinner with ``text`` on a terminal while it runs, then ``text (1.2s)`` once the
        run goes on (the next step or the trials). A run refused before that prints none
        of its steps: its error stays the only line."""
        if self.quiet:
            yield
            return
        t0 = time.perf_counter()
        if self.live:
            from rich.console import Console

            with Console(file=self.stream).status(text):
                yield
        else:
            yield
        self._held.append(f"{text} ({time.perf_counter() - t0:.1f}s)")

    def start(self, total: int, best: str) -> None:
        """Trials begin: ``total`` to run."""
        self.total, self.done, self._t0 = total, 0, time.perf_counter()
        if not self.quiet:
            self.release()
        if not self.live or not total:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[best]}"),
            TextColumn("{task.description}"),
            console=Console(file=self.stream),
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=total, best=best)

    def advance(self, n: int, best: str) -> None:
        """``n`` more trials are stored; ``best`` is the best config so far."""
        self.done += n
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, best=best, description="")
            return
        seconds = int(time.perf_counter() - self._t0)
        elapsed = f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        self._line(f"trials {counted(self.done, self.total)} {elapsed} {best}")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def release(self) -> None:
        """The run goes on: say the steps finished so far (see :meth:`doing`)."""
        held, self._held = self._held, []
        for text in held:
            self._line(text)

    def _line(self, text: str) -> None:
        """One line of progress; when its reader is gone (``lrlab run ... 2>&1 | head``: a
        broken pipe) progress goes quiet and the run goes on storing its trials."""
        try:
            print(text.rstrip(), file=self.stream, flush=True)
        except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
            self.quiet = True


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
