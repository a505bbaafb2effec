"""``--executor local``: the jobs on this machine -- in this process one after another (``--workers 1``), or in
``N`` worker processes.

Every job runs with ``--cpus-per-job`` torch threads (default 1), in this process as in a worker and as on Ray:
torch's CPU kernels may split a sum differently with another thread count, which can change a picture's last
bits, so one thread count per job is what makes every executor give the same pictures. On ``C`` cores,
``--workers C`` (one thread each) is the fast choice; ``--cpus-per-job C`` speeds up a sequential sweep instead.

Worker processes are *spawned* (never forked: a fork of a process whose torch thread pool has started can
hang), prepared by worker_boot.py, and run :func:`~..jobs.run_job` on the same validated graphs, so each
picture has the same bits as in a sequential run (a job's picture depends only on its graph and seed). A
worker that dies takes only its jobs with it: they are reported failed and the others go on.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import runpy
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Dict, Sequence

from ...limits import ENV as LIMIT_ENV
from ...limits import current_limits
from ..jobs import (JobResult, SweepJob, class_references, installed_input_dir, installed_output_dir, node_table,
                    run_job)
from .base import OnResult
from .worker_boot import boot_arguments

log = logging.getLogger(__name__)

MAX_WORKERS = 256


def limits_environment() -> Dict[str, str]:
    """The driver's resource limits (``--max-memory`` included) as the environment variables a worker reads."""
    current = current_limits()
    return {name: repr(getattr(current, field)) for field, name in LIMIT_ENV.items()}


def cpu_count() -> int:
    """The cores this process may use (its affinity where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(count: int):
    """torch's intra-op threads set to ``count`` for a block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LocalExecutor:
    """Jobs in this process (``workers == 1``) or in ``workers`` spawned processes, with the node table and
    folders installed in this process (jobs.install_node_table) when it is made."""

    name = "local"

    def __init__(self, workers: int = 1, threads: int = 1):
        if not 1 <= int(workers) <= MAX_WORKERS:
            raise ValueError(f"--workers {workers}: expected 1..{MAX_WORKERS}")
        if not 1 <= int(threads) <= 1024:
            raise ValueError(f"--cpus-per-job {threads}: expected 1..1024 torch threads per job")
        self.workers = int(workers)
        self.threads = int(threads)
        if self.workers * self.threads > cpu_count():
            log.warning("%d workers x %d threads per job is more than the %d cores here: the workers will wait for "
                        "each other", self.workers, self.threads, cpu_count())
        # the node table as other processes rebuild it, checked now (before the sweep writes anything)
        self._classes = class_references(node_table()) if self.workers > 1 else {}

    def run(self, jobs: Sequence[SweepJob], on_result: OnResult) -> None:
        if self.workers == 1 or len(jobs) <= 1:
            for job in jobs:  # KeyboardInterrupt stops between or inside jobs; nothing else is pending
                with torch_threads(self.threads):
                    result = run_job(job)
                on_result(result)
            return
        self._run_pool(jobs, on_result)

    def _pool(self, count: int) -> ProcessPoolExecutor:
        jobs_module = run_job.__module__  # "<package>.walk_core.sweep.jobs"
        package = jobs_module.split(".walk_core.")[0]
        root = Path(__file__).resolve().parents[3]
        folders = [str(f) if f is not None else "" for f in (installed_input_dir(), installed_output_dir())]
        boot = boot_arguments(package, root, self.threads, self._classes, *folders,
                              environ=limits_environment())
        return ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=runpy.run_path,
                                   initargs=(str(Path(__file__).with_name("worker_boot.py")), boot))

    def _run_pool(self, jobs: Sequence[SweepJob], on_result: OnResult) -> None:
        pool = self._pool(min(self.workers, len(jobs)))
        pending: Dict[Future, SweepJob] = {}
        try:
            pending = {pool.submit(run_job, job): job for job in jobs}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: pending[f].index):
                    job = pending.pop(future)
                    on_result(_result(job, future))
        except BaseException:  # KeyboardInterrupt, SIGTERM (atomic_files.Terminated), a failing on_result
            for future in pending:
                future.cancel()
            _stop(pool)
            raise
        pool.shutdown(wait=True)


def _result(job: SweepJob, future: Future) -> JobResult:
    """The job's result; a worker that died (or could not start) fails the job, not the sweep."""
    try:
        return future.result()
    except BrokenProcessPool as error:
        return JobResult(job.job_id, "failed", (), 0.0, f"its worker process died ({error}); run the sweep again "
                         "with --resume to retry it")
    except Exception as error:  # e.g. a result that could not be sent back
        return JobResult(job.job_id, "failed", (), 0.0, f"{type(error).__name__}: {error}")


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the workers now and cancel what has not started (their jobs' pictures are dropped, never written)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown forgets them
    for process in processes:
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=5)


def create(options: argparse.Namespace) -> LocalExecutor:
    """``EXECUTORS["local"]``: ``options.workers`` (default 1), ``options.cpus_per_job`` threads per job (default 1)."""
    workers = getattr(options, "workers", None)
    threads = getattr(options, "cpus_per_job", None)
    if threads is not None and float(threads) != int(threads):
        raise ValueError(f"--cpus-per-job {threads}: the local executor runs whole threads; expected a whole number")
    return LocalExecutor(1 if workers is None else workers, 1 if threads is None else int(threads))
