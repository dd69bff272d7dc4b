"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM at any moment, after storing what finished.

Python turns a signal into an exception wherever the main thread happens to be. When
that is inside a garbage-collection callback (JAX registers one, ``_xla_gc_callback``),
a ``__del__`` or a weakref callback run by the collector, Python prints "Exception
ignored" and carries on: the stop is lost and the run completes with exit code 0.

:class:`StopRequest` closes that hole in two ways:

- its handler records the signal first, then raises :class:`Stopped` only where the
  exception can travel; inside a finalizer or an import it asks again 50 ms later (the
  signal is delivered anew to the main thread, by then out of the finalizer; a module
  such as jaxlib stopped half-imported can crash the interpreter on its way out);
- whatever swallowed the exception, the request stays recorded: the runner and the
  engines call :meth:`StopRequest.check` between trials and chunks, and the command line
  at the end, so a recorded stop always ends the run.

:class:`Stopped` is a ``KeyboardInterrupt``: every ``except Exception`` lets it through,
the runner prints the resume line on its way out, and ``lrlab`` exits with
``128 + signal`` (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the
signal ended.

>>> request = StopRequest()
>>> request.check()  # nothing recorded: returns
>>> request.signum = signal.SIGTERM
>>> try:
...     request.check()
... except Stopped as stopped:
...     print(stopped, stopped.exit_code)
SIGTERM 143
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["BEFORE_TRAINING", "SIGNALS", "StopRequest", "Stopped", "say_if_stopped"]

#: The signals that stop a run.
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_RETRY_SECONDS = 0.05
#: The resume line of a run stopped before its first trial was trained.
BEFORE_TRAINING = (
    "stopped before training began (nothing new stored); run the same command to resume"
)


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal; ``exit_code`` is ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """The signal that asked the process to stop (``signum``; ``None``: none yet).

    :meth:`install` makes it the handler of SIGINT and SIGTERM (main thread only);
    :meth:`uninstall` puts the previous handlers back. Pickled (e.g. inside an engine sent
    to a Ray worker), a copy carries no request and no handlers.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._collecting = False
        self._retries: list[threading.Timer] = []  # asks again, pending

    def install(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers (and receives signals)
        for signum in SIGNALS:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # ignored by who started us (nohup; a shell's background job)
            self._previous[signum] = signal.signal(signum, self._handle)
        gc.callbacks.insert(0, self._gc_phase)
        return self

    def uninstall(self) -> None:
        self._cancel_retries()  # none may interrupt what runs after (atexit: JAX's clean-up)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._gc_phase in gc.callbacks:
            gc.callbacks.remove(self._gc_phase)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """Raise :class:`Stopped` if a stop was requested (call between units of work)."""
        if self.signum is not None:
            self._cancel_retries()  # the stop is on its way: no need to ask again
            raise Stopped(self.signum)

    def __getstate__(self) -> dict[str, Any]:
        return {"signum": None, "_previous": {}, "_collecting": False, "_retries": []}

    def _cancel_retries(self) -> None:
        retries, self._retries = self._retries, []
        for retry in retries:
            retry.cancel()

    # -- the handler -----------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if sys.is_finalizing():
            return
        if self._collecting or _cannot_raise_in(frame):
            retry = threading.Timer(_RETRY_SECONDS, _thread.interrupt_main, (signum,))
            retry.daemon = True
            self._retries.append(retry)
            retry.start()
            return
        self._cancel_retries()
        raise Stopped(self.signum)

    def _gc_phase(self, phase: str, info: dict[str, Any]) -> None:
        """First of the collector's callbacks: marks a collection (finalizers may run)."""
        self._collecting = phase == "start"


def _cannot_raise_in(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a gc callback or a ``__del__`` (an exception raised
    there is printed as "Exception ignored" and dropped), or inside an import (a native
    module such as jaxlib interrupted half-initialized can crash the process on exit)."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if code in callbacks or code.co_name == "__del__" or code.co_filename in _IMPORTING:
            return True
        frame = frame.f_back
    return False


_IMPORTING = {"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"}


@contextlib.contextmanager
def say_if_stopped(line: str = BEFORE_TRAINING) -> Iterator[None]:
    """On a stop (``KeyboardInterrupt``) inside the block: ``line`` on stderr, then the stop.

    Printed with ``print``, not through a progress display: one line even with
    ``--quiet``, never wrapped.
    """
    try:
        yield
    except KeyboardInterrupt:
        print(line, file=sys.stderr, flush=True)
        raise
