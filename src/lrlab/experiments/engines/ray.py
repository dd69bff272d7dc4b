"""Sweeps on Ray: ``lrlab run exp.toml --ray [ADDRESS]`` trains trials as Ray tasks.

The division of work:

- the **driver** (the machine running ``lrlab run``) validates the file, loads the data,
  builds the plan, locks the experiment folder and owns the store: it is the store's only
  writer, so the store lives on the driver's disk and nothing on the cluster needs it;
- the plan (settings, data, model spec, trials) is put into Ray's object store once;
- each **task** trains a unit of trials with the chosen engine (``keras``: one trial per
  task; ``population``: one optimizer group per task, exactly the population the local
  engine would train, so results are the same; ``trials_per_task`` splits bigger units)
  and returns the results; it requests ``task_cpus`` CPUs and ``task_gpus`` GPUs;
- the driver stores each result as its task finishes (one transaction per trial, as in a
  local run) and shows the usual progress.

Failures: a task whose worker process dies (killed, out of memory, node lost) is run
again by Ray up to ``max_retries`` times; only the run that returns counts, and the driver
yields each trial key at most once, so a trial is stored exactly once. A task that still
cannot finish makes its trials ``failed`` with the reason (a rerun of the same command
retries them). Ctrl-C cancels the pending tasks; what was stored stays.

Results are those of a local run with the same engine and seeds: a trial's arithmetic
does not depend on the process it runs in (tested bit for bit in ``tests/test_ray.py``).

Ray is imported only when used; without it, ``--ray`` is a one-line error that names
``pip install 'lrlab[ray]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from lrlab.errors import LrlabError
from lrlab.experiments.engines.base import Engine
from lrlab.experiments.trial import Trial, TrialResult

__all__ = [
    "INSTALL_HINT",
    "RayEngine",
    "check_options",
    "worker_env",
    "import_ray",
    "ray_session",
    "task_units",
]

INSTALL_HINT = "pip install 'lrlab[ray]'"
#: environment variables (by prefix) a worker gets from the driver: the Keras backend,
#: JAX/XLA settings (e.g. ``JAX_ENABLE_X64`` changes results) and lrlab's own
WORKER_ENV_PREFIXES = ("KERAS_", "JAX_", "XLA_", "LRLAB_")


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables set in every task's worker (see :data:`WORKER_ENV_PREFIXES`).

    >>> env = worker_env({"LRLAB_CACHE": "/tmp/cache"})
    >>> env["LRLAB_CACHE"], "KERAS_BACKEND" in env, "PATH" in env
    ('/tmp/cache', True, False)
    """
    env = {k: v for k, v in os.environ.items() if k.startswith(WORKER_ENV_PREFIXES)}
    env.setdefault("KERAS_BACKEND", _keras_backend())
    env.update(extra or {})
    return env


def import_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`LrlabError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise LrlabError(f"--ray needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of the block (and disconnect after).

    ``address=None`` starts a local Ray for the run (``num_cpus`` CPUs, default all);
    otherwise it is anything ``ray.init(address=...)`` takes: ``auto`` (the cluster
    started on this machine with ``ray start --head``), ``HOST:6379``, or a Ray Client
    address ``ray://HOST:10001``. When Ray is already initialized in this process (a
    notebook or a test), that session is used and left running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is not None and num_cpus is not None:
        raise LrlabError("--ray-cpus sizes a local Ray only; leave it out with a Ray ADDRESS")
    if address is not None and (reason := _unreachable(address)):
        raise LrlabError(
            f"cannot connect to Ray at {address} ({reason}); start the cluster with "
            "'ray start --head' and pass the address it prints"
        )
    kwargs: dict[str, Any] = {
        "log_to_driver": False,  # worker output would break the progress display
        "logging_level": logging.ERROR,
    }
    if address is None:
        kwargs.update(address="local", num_cpus=num_cpus, include_dashboard=False)
    else:
        kwargs.update(address=address)
    log: list[str] = []
    try:
        # Connecting, Ray's C++ client prints a warning a second while it retries; keep
        # them for the error message instead of the terminal.
        quiet = _fd2_into(log) if address is not None else contextlib.nullcontext()
        with quiet, warnings.catch_warnings():
            # JAX warns on any fork; Ray forks only to exec its own processes at once.
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")
            ray.init(**kwargs)
    except Exception as err:
        raise LrlabError(_init_failure(address, err, "".join(log))) from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _fd2_into(log: list[str]) -> Iterator[None]:
    """Send what is written to file descriptor 2 (C++ code included) into ``log``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            log.append(tmp.read().decode(errors="replace"))


def _init_failure(address: str | None, err: Exception, log: str) -> str:
    """One line for a failed ``ray.init``: what failed, Ray's reason, how to fix it.

    >>> _init_failure("h:6379", ConnectionError("Failed to connect"),
    ...               "[W] gcs_client.cc:210: Unauthenticated: Authentication token is missing")
    "cannot connect to Ray at h:6379 (Authentication token is missing); the cluster uses \
token authentication: set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or \
~/.ray/auth_token), or run on the head node with --ray auto"
    """
    if address is None:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return f"cannot start a local Ray ({first}); check the Ray installation"
    lines = [line for line in log.splitlines() if line.strip()]
    reason = lines[-1].rsplit(": ", 1)[-1] if lines else str(err).strip().split("\n")[0]
    if "auth" in log.lower():
        fix = (
            "the cluster uses token authentication: set RAY_AUTH_MODE=token and the "
            "cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token), or run on the head node "
            "with --ray auto"
        )
    else:
        fix = "start the cluster with 'ray start --head' and pass the address it prints"
    return f"cannot connect to Ray at {address} ({reason[:200]}); {fix}"


def _unreachable(address: str) -> str | None:
    """Why ``HOST:PORT`` (or ``ray://HOST:PORT``) takes no TCP connection; None if it does.

    Ray itself retries a wrong address for minutes; this answers in seconds. ``auto`` is
    first resolved as Ray resolves it (``RAY_ADDRESS``, else the cluster last started on
    this machine); anything else without a port is left to Ray.

    >>> _unreachable("not-an-address") is None
    True
    """
    prefix = ""
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            address = canonicalize_bootstrap_address("auto") or ""
        except ConnectionError:
            return "no Ray cluster is running on this machine"
        except Exception:  # a private helper of Ray's: without it, let ray.init decide
            return None
        prefix = f"{address}: "
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return None
    except OSError as err:
        return prefix + (err.strerror or type(err).__name__)


def task_units(
    engine: Engine, trials: Sequence[Trial], trials_per_task: int | None = None
) -> list[list[Trial]]:
    """How ``trials`` are divided into Ray tasks (each task trains one unit).

    A vectorized engine (``population``) gets one unit per population it forms in a local
    run (:meth:`~lrlab.experiments.engines.base.Engine.batches`: one per optimizer
    structure), so the results match, and
    ``trials_per_task`` splits those further (a narrower population than the local one,
    so XLA may round differently in the last digits). Any other engine gets
    ``trials_per_task`` trials per unit (default 1), in plan order.

    >>> from lrlab.experiments.engines.keras import KerasEngine
    >>> from lrlab.experiments.trial import OptimizerSettings
    >>> from lrlab.schedules import Constant
    >>> trials = [Trial(f"c|seed={s}", "c", "c", Constant(0.1), None, "val_loss", "sgd",
    ...                 OptimizerSettings("sgd"), None, s, s, s, s) for s in range(3)]
    >>> [len(u) for u in task_units(KerasEngine(), trials)]
    [1, 1, 1]
    >>> [len(u) for u in task_units(KerasEngine(), trials, trials_per_task=2)]
    [2, 1]
    """
    units = engine.batches(trials)
    if units is None:
        n = trials_per_task or 1
        return [list(trials[i : i + n]) for i in range(0, len(trials), n)]
    if trials_per_task is not None:
        units = [
            u[i : i + trials_per_task] for u in units for i in range(0, len(u), trials_per_task)
        ]
    return units


def check_options(
    task_cpus: float, task_gpus: float, max_retries: int, trials_per_task: int | None
) -> None:
    """Raise a one-line :class:`LrlabError` for a task option out of range."""
    if not (0 <= task_cpus < float("inf") and 0 <= task_gpus < float("inf")):  # nan, inf
        raise LrlabError(
            f"--task-cpus and --task-gpus must be finite and >= 0, got {task_cpus}, {task_gpus}"
        )
    if max_retries < 0:
        raise LrlabError(f"--max-retries must be >= 0, got {max_retries}")
    if trials_per_task is not None and trials_per_task < 1:
        raise LrlabError(f"--trials-per-task must be >= 1, got {trials_per_task}")


def _train_unit(plan: Any, engine: Engine, trials: list[Trial]) -> list[TrialResult]:
    """The task body (runs in a Ray worker): train ``trials`` with ``engine``."""
    return list(engine.run(plan, trials))


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # A RayTaskError's message is the remote traceback; its last line names the cause.
    return (lines[-1] if lines else type(err).__name__)[:300]


class RayEngine(Engine):
    """Run another engine's trials as Ray tasks; see the module docstring.

    Args:
        inner: the engine each task runs (``keras``, ``population``, ...).
        task_cpus, task_gpus: the resources each task requests.
        max_retries: how often Ray reruns a task whose worker died.
        trials_per_task: split units into tasks of at most this many trials.
        env: environment variables for the workers, on top of :func:`worker_env`'s.
    """

    name = "ray"

    def __init__(
        self,
        inner: Engine,
        *,
        task_cpus: float = 1.0,
        task_gpus: float = 0.0,
        max_retries: int = 3,
        trials_per_task: int | None = None,
        env: dict[str, str] | None = None,
    ):
        check_options(task_cpus, task_gpus, max_retries, trials_per_task)
        self.env = dict(env or {})
        self.inner = inner
        self.task_cpus = float(task_cpus)
        self.task_gpus = float(task_gpus)
        self.max_retries = int(max_retries)
        self.trials_per_task = trials_per_task
        self.attempts: dict[str, int] = {}

    def unsupported(self, plan: Any) -> str | None:
        return self.inner.unsupported(plan)

    def describe(self) -> str:
        where = ""
        with contextlib.suppress(Exception):
            import ray

            if ray.is_initialized():
                cpus = ray.cluster_resources().get("CPU", 0)
                nodes = len([n for n in ray.nodes() if n.get("Alive")])
                where = f" on {nodes} node(s), {cpus:g} CPUs"
        request = f"{self.task_cpus:g} CPU" + (
            f", {self.task_gpus:g} GPU" if self.task_gpus else ""
        )
        return f"Ray{where} ({self.inner.describe()}; {request} per task)"

    def run(self, plan: Any, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        ray = import_ray()
        with contextlib.ExitStack() as stack:
            if not ray.is_initialized():
                stack.enter_context(ray_session(None))
            yield from self._run(ray, plan, trials)

    def _run(self, ray: Any, plan: Any, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        units = task_units(self.inner, trials, self.trials_per_task)
        if not units:
            return
        env = worker_env(self.env)
        remote = ray.remote(_train_unit).options(
            num_cpus=self.task_cpus,
            num_gpus=self.task_gpus,
            max_retries=self.max_retries,
            retry_exceptions=False,
            runtime_env={"env_vars": env},
        )
        plan_ref = ray.put(plan)
        pending = {remote.remote(plan_ref, self.inner, unit): unit for unit in units}
        wanted = {t.key for t in trials}
        done: set[str] = set()
        try:
            while pending:
                refs = list(pending)
                ray.wait(refs, num_returns=1)  # block until one is done, then take all done
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
                for ref in ready:
                    unit = pending.pop(ref)
                    fresh = []
                    for result in self._collect(ray, ref, unit):
                        key = result.trial.key
                        if key in done or key not in wanted:
                            continue  # a duplicate (or foreign) result is never stored
                        done.add(key)
                        fresh.append(result)
                    for i, result in enumerate(fresh):  # a task's results: one transaction
                        yield dataclasses.replace(result, final_with_next=len(fresh) - 1 - i)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _collect(self, ray: Any, ref: Any, unit: list[Trial]) -> list[TrialResult]:
        """The unit's results; every trial without one is ``failed`` with the reason."""
        try:
            results = list(ray.get(ref))
            reason = "the task returned no result for it"
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            results = []
            if isinstance(err, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
                reason = (
                    f"its Ray worker died {self.max_retries + 1} time(s) "
                    f"({type(err).__name__}); rerun to retry it"
                )
            else:
                reason = f"Ray task failed: {_one_line(err)}"
        got = {r.trial.key for r in results}
        for trial in unit:
            if trial.key not in got:
                results.append(TrialResult(trial, "failed", message=reason, engine=self.inner.name))
        return results


def _keras_backend() -> str:
    with contextlib.suppress(Exception):
        import keras

        return keras.backend.backend()
    return "jax"  # pragma: no cover
