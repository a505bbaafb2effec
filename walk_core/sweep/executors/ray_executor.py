"""``--executor ray``: every sweep job is one Ray task (https://docs.ray.io), on this machine or a cluster.

- ``--ray-address auto`` (a cluster started on this machine with ``ray start --head``) or
  ``--ray-address ray://HOST:10001`` (Ray Client) connects to a running cluster, and disconnects after;
  without it a private Ray instance on loopback is started for the sweep (``--workers`` CPUs, default all
  cores) and stopped after. Inside a process that already called ``ray.init`` (a notebook, the tests) that
  connection is used and left open.
- Each task asks for ``cpus_per_job`` CPUs (torch gets as many threads) and ``--gpus-per-job`` GPUs: by
  default one where the cluster has GPUs, none otherwise.
- The pack's code reaches the workers through Ray's runtime environment (``working_dir``: a copy of the pack's
  folder, without what .gitignore lists, tests and docs), so a node needs only Python with torch, ray and
  requirements.txt. Files the workflow reads (weights in models/weights, --input-dir pictures) are not copied.
- A task returns the job's pictures as bytes; the driver writes them (``on_result``), so workers need no
  shared file system and nothing is ever half-written by a worker. A job's pictures depend only on its
  inputs and seed, so a task retried after its worker died (``max_retries``) gives the same bits.
- Ctrl-C cancels every outstanding task (their workers are stopped) and re-raises; results already handed to
  ``on_result`` stay.

Ray is optional: without it this executor is one :class:`WorkflowError` saying how to install it.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

from ...runner.errors import WorkflowError
from ..jobs import JobResult, SweepJob, class_references, installed_input_dir, node_table
from . import ray_worker

log = logging.getLogger(__name__)

RAY_REQUIREMENT = "ray==2.60.0"  # the version requirements-dev.txt pins and the tests run
INSTALL_HINT = (f"install it into this Python with `{Path(sys.executable).name} -m pip install '{RAY_REQUIREMENT}'` "
                "(scripts/env.sh installs it into .venv with the test requirements)")
PACK_ROOT = Path(__file__).resolve().parents[3]
#: left out of the working_dir copy besides what .gitignore lists (Ray honours it): not needed to run a job
EXCLUDES = [".git", "tests", "docs", "bench", "scripts"]
TASK_NAME = "rwalk_sweep_job"  # a worker process running a job is titled ray::<TASK_NAME>
WAIT_SECONDS = 0.5  # ray.wait returns this often, so Ctrl-C is seen at once


def import_ray() -> Any:
    """The ``ray`` module, or one error saying how to install it."""
    try:
        import ray  # optional (tests/test_layering.py allows it here, inside functions only)
    except ImportError as e:
        raise WorkflowError(None, None, None, f"--executor ray needs the optional package ray, which this Python "
                            f"({sys.executable}) cannot import ({e}); {INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class RaySettings:
    """How the sweep uses Ray; see the module docstring."""

    address: Optional[str] = None  # None: a private local instance (or the connection this process has)
    local_cpus: Optional[int] = None  # CPUs of the private local instance; None: all cores
    cpus_per_job: float = 1.0
    gpus_per_job: Optional[float] = None  # None: 1 where the cluster has GPUs, else 0
    max_retries: int = 3  # times a task is re-run after its worker process or node died
    pack_root: Path = PACK_ROOT

    def __post_init__(self):
        if self.address is not None and not str(self.address).strip():
            raise WorkflowError(None, None, None, "--ray-address '': expected 'auto', HOST:PORT or ray://HOST:PORT")
        if self.local_cpus is not None and self.local_cpus < 1:
            raise WorkflowError(None, None, None, f"--workers {self.local_cpus}: expected at least 1 CPU for Ray")
        if not 0 < self.cpus_per_job <= 1024:
            raise WorkflowError(None, None, None, f"--cpus-per-job {self.cpus_per_job}: expected a number in (0, 1024]")
        if self.gpus_per_job is not None and not 0 <= self.gpus_per_job <= 64:
            raise WorkflowError(None, None, None, f"--gpus-per-job {self.gpus_per_job}: expected a number in 0..64")
        if self.max_retries < 0:
            raise WorkflowError(None, None, None, f"max_retries={self.max_retries}: expected 0 or more")


def settings_from_options(options: Any) -> RaySettings:
    """:class:`RaySettings` from the sweep's parsed options (``ray_address``, ``workers``, ``gpus_per_job``,
    ``cpus_per_job``; absent ones take their defaults)."""
    cpus = getattr(options, "cpus_per_job", None)
    return RaySettings(address=getattr(options, "ray_address", None) or None,
                       local_cpus=getattr(options, "workers", None) or None,
                       cpus_per_job=float(cpus) if cpus is not None else 1.0,
                       gpus_per_job=getattr(options, "gpus_per_job", None))


def _no_exclude_notes(record: logging.LogRecord) -> bool:
    """Drops Ray's note that .git and .venv are left out of the working_dir copy (so are tests, docs, ...)."""
    return "is now ignored by default when packaging" not in str(record.msg)


@contextmanager
def ray_session(ray: Any, settings: RaySettings) -> Iterator[str]:
    """Connected to Ray for the sweep; yields where (for messages). Starts/stops or connects/disconnects."""
    if ray.is_initialized():  # the caller's connection (a notebook, the tests): used as it is and left open
        yield "this process's Ray connection"
        return
    runtime_env = {"working_dir": str(settings.pack_root), "excludes": EXCLUDES}
    ray_log = logging.getLogger("ray._private.worker")  # it says what it leaves out; we leave out more on purpose
    ray_log.addFilter(_no_exclude_notes)
    try:
        if settings.address:
            try:
                ray.init(address=settings.address, runtime_env=runtime_env, logging_level=logging.WARNING)
            except Exception as e:  # ConnectionError, ValueError, ...: say which address and why
                raise WorkflowError(None, None, None, f"--ray-address {settings.address!r}: cannot connect to the "
                                    f"Ray cluster ({type(e).__name__}: {e}); start one with `ray start --head`"
                                    ) from None
            where = f"the Ray cluster at {settings.address}"
            if settings.local_cpus:
                log.warning("--workers %d sizes a local Ray instance; %s has the CPUs it has", settings.local_cpus,
                            where)
        else:
            ray.init(address="local", num_cpus=settings.local_cpus or os.cpu_count() or 1, include_dashboard=False,
                     runtime_env=runtime_env, logging_level=logging.WARNING)  # "local": never a running cluster
            where = "a local Ray instance"
    finally:
        ray_log.removeFilter(_no_exclude_notes)
    try:
        yield where
    finally:
        ray.shutdown()


def _gpus(ray: Any, settings: RaySettings, where: str) -> float:
    available = float(ray.cluster_resources().get("GPU", 0))
    if settings.gpus_per_job is None:
        return 1.0 if available > 0 else 0.0
    if settings.gpus_per_job > available:
        raise WorkflowError(None, None, None, f"--gpus-per-job {settings.gpus_per_job:g}: {where} has "
                            f"{available:g} GPU(s); every task would wait for ever (use 0 on CPUs)")
    return settings.gpus_per_job


def _slots(ray: Any, settings: RaySettings, gpus: float, where: str) -> int:
    """How many tasks the cluster runs at once (to keep twice that many in flight)."""
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 0))
    if settings.cpus_per_job > cpus:
        raise WorkflowError(None, None, None, f"--cpus-per-job {settings.cpus_per_job:g}: {where} has {cpus:g} "
                            "CPU(s); every task would wait for ever")
    slots = int(cpus // settings.cpus_per_job)
    if gpus > 0:
        slots = min(slots, int(float(resources.get("GPU", 0)) // gpus))
    return max(1, slots)


def _failure(ray: Any, job: SweepJob, error: BaseException, retries: int) -> JobResult:
    exceptions = ray.exceptions
    if isinstance(error, (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.OwnerDiedError)):
        text = f"its Ray worker died {retries + 1} time(s) running it ({type(error).__name__})"
    elif isinstance(error, exceptions.RayTaskError):  # the task raised outside run_job: the worker's setup
        cause = getattr(error, "cause", None) or error
        last = (str(cause).strip().splitlines() or [""])[-1]
        text = f"the Ray task failed on its worker: {type(cause).__name__}: {last}"
    else:
        text = f"Ray could not run it: {type(error).__name__}: {error}"
    return JobResult(job.job_id, "failed", (), 0.0, text)


class RayExecutor:
    """Runs sweep jobs as Ray tasks; results reach ``on_result`` in the calling thread as tasks finish."""

    name = "ray"

    def __init__(self, settings: RaySettings):
        self.settings = settings

    def run(self, jobs: Sequence[SweepJob], on_result: Callable[[JobResult], None]) -> None:
        if not jobs:
            return
        ray = import_ray()
        # the worker function travels by value: a worker imports the pack only once the task has set it up
        ray.cloudpickle.register_pickle_by_value(ray_worker)
        with ray_session(ray, self.settings) as where:
            gpus = _gpus(ray, self.settings, where)
            window = 2 * _slots(ray, self.settings, gpus, where)
            task = ray.remote(ray_worker.run_job_task).options(
                num_cpus=self.settings.cpus_per_job, num_gpus=gpus, max_retries=self.settings.max_retries,
                retry_exceptions=False, name=TASK_NAME)
            log.info("running %d job(s) on %s, %d at a time, %g CPU and %g GPU each", len(jobs), where,
                     window // 2, self.settings.cpus_per_job, gpus)
            self._drive(ray, task, list(jobs), on_result, window)

    def _drive(self, ray: Any, task: Any, jobs: list, on_result: Callable[[JobResult], None], window: int) -> None:
        """Keep ``window`` tasks in flight; hand each result to ``on_result`` as it comes."""
        threads = max(1, int(self.settings.cpus_per_job))
        input_dir = installed_input_dir()
        # the driver's node table, by module and name, put in the object store once for all tasks
        try:
            classes = class_references(node_table())
        except ValueError as e:
            raise WorkflowError(None, None, None, f"--executor ray: {e}") from None
        common = (threads, ray.put(classes), str(input_dir.resolve()) if input_dir else None,
                  str(self.settings.pack_root))
        pending: Dict[Any, SweepJob] = {}
        queue = iter(jobs)
        try:
            for job in queue:
                pending[task.remote(_fields(job), *common)] = job
                if len(pending) >= window:
                    break
            while pending:
                waiting = list(pending)
                done, _ = ray.wait(waiting, num_returns=1, timeout=WAIT_SECONDS)
                if done and len(waiting) > 1:  # and every other one finished by now, in one call
                    done, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0)
                for ref in done:
                    job = pending.pop(ref)
                    on_result(self._result(ray, ref, job))
                    following = next(queue, None)
                    if following is not None:
                        pending[task.remote(_fields(following), *common)] = following
        except BaseException:  # Ctrl-C, or on_result failed: stop the outstanding tasks, then re-raise
            for ref in pending:
                ray.cancel(ref, force=True)
            log.warning("cancelled %d outstanding Ray task(s)", len(pending))
            raise

    def _result(self, ray: Any, ref: Any, job: SweepJob) -> JobResult:
        try:
            status, outputs, seconds, error = ray.get(ref)
        except ray.exceptions.RayError as e:
            return _failure(ray, job, e, self.settings.max_retries)
        return JobResult(job.job_id, status, tuple(outputs), seconds, error)


def _fields(job: SweepJob) -> dict:
    """The job as plain values (a worker cannot unpickle the pack's classes before it has loaded the pack)."""
    return {f.name: getattr(job, f.name) for f in fields(SweepJob)}


def create(options: Any) -> RayExecutor:
    """The ``ray`` entry of the executors registry: checks that ray imports, then builds the executor."""
    import_ray()
    return RayExecutor(settings_from_options(options))
