"""The sweep's driver: hands the jobs to an executor and, as each result comes back, writes its pictures (each
atomically, under the job's name), its manifest line and the progress; the contact sheets come last.

Only the driver writes, so the executors need no shared file system and a job's files and manifest line
appear together: a Ctrl-C between two results leaves complete pictures and a manifest that lists exactly the
jobs whose pictures are there (``--resume`` runs the rest).
"""
from __future__ import annotations

import itertools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

from ..atomic_files import not_regular_file, write_new
from ..runner.errors import WorkflowError
from ..runner.terminal import LogProgress, TerminalProgress, is_terminal
from .contact import write_contact_sheets
from .executors.base import Executor
from .jobs import JobResult, SweepJob
from .manifest import MANIFEST_NAME, Manifest, is_done, read_manifest, record
from .plan import SweepPlan

log = logging.getLogger(__name__)


@dataclass
class SweepOutcome:
    """What a sweep did: the manifest, the contact sheets, and the jobs that ran, were skipped or failed."""

    manifest: Path
    sheets: List[Path] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    failed: List[Tuple[SweepJob, str]] = field(default_factory=list)


def check_output_dir(folder: Path, resume: bool) -> Path:
    """The manifest's path in ``folder``; a folder that is a file, or an earlier sweep's folder without
    ``--resume``, is a WorkflowError (exit 2, nothing written)."""
    if folder.exists() and not folder.is_dir():
        raise WorkflowError(None, None, None, f"--output-dir {str(folder)!r} is a file; expected a folder")
    manifest = folder / MANIFEST_NAME
    problem = not_regular_file(manifest)
    if problem:
        raise WorkflowError(None, None, None, f"{manifest} {problem}")
    if manifest.exists() and not resume:
        raise WorkflowError(None, None, None, f"--output-dir {str(folder)!r} already holds a sweep ({MANIFEST_NAME}); "
                            "give --resume to run what it lacks, or choose another --output-dir")
    return manifest


def write_output(folder: Path, name: str, data: bytes) -> Path:
    """``data`` as ``folder/name``, atomically and never over another file: a file of that name with these very
    bytes is kept (a job re-run after an interruption), another gets ``name_2`` ..."""
    target = folder / name
    try:
        if target.is_file() and target.read_bytes() == data:
            return target
    except OSError:
        pass
    stem, suffix = target.stem, target.suffix
    names = itertools.chain((target,), (folder / f"{stem}_{n}{suffix}" for n in itertools.count(2)))
    return write_new(names, lambda temp: temp.write_bytes(data))


def _progress(enabled: bool):
    """One bar for the whole sweep on a terminal, else log lines (from the sweep's logger, which stays on while
    the jobs' own lines are quiet)."""
    if is_terminal(sys.stderr):
        return TerminalProgress("sweep", sys.stderr, enabled=enabled)
    return LogProgress("sweep", enabled=enabled, unit="jobs", logger=log)


def run_sweep(plan: SweepPlan, executor: Executor, folder: Path, *, resume: bool = False,
              progress: bool = True) -> SweepOutcome:
    """Run the jobs of ``plan`` that ``folder``'s manifest does not record as done (all of them without
    ``resume``); failures are recorded and the sweep goes on."""
    manifest_path = check_output_dir(folder, resume)
    kept = read_manifest(manifest_path) if resume else {}
    todo = [job for job in plan.jobs if not is_done(kept.get(job.job_id), job, folder)]
    outcome = SweepOutcome(manifest_path, skipped=len(plan.jobs) - len(todo))
    if outcome.skipped:
        log.info("--resume: %d of %d jobs are done already; running %d", outcome.skipped, len(plan.jobs), len(todo))
    folder.mkdir(parents=True, exist_ok=True)
    by_id = {job.job_id: job for job in todo}
    # the file restarts with the lines of the jobs that stay done (a job to run gets its line when it finishes)
    manifest = Manifest(manifest_path, {job_id: entry for job_id, entry in kept.items() if job_id not in by_id})
    manifest.start()
    bar = _progress(progress)
    done = failed = 0
    seen: set = set()

    def on_result(result: JobResult) -> None:
        nonlocal done, failed
        job = by_id.get(result.job_id)
        if job is None or job.job_id in seen:
            log.warning("an executor returned a result for job %r, which it was not given or gave before",
                        result.job_id)
            return
        seen.add(job.job_id)
        outputs: List[str] = []
        if result.status == "done":
            try:
                outputs = [write_output(folder, name, data).name for name, data in result.outputs]
            except OSError as error:
                result = JobResult(result.job_id, "failed", (), result.seconds,
                                   f"cannot write its pictures into {folder}: {error.strerror or error}")
        entry = record(job, result, outputs if result.status == "done" else [])
        manifest.add(entry)
        if result.status == "done":
            done += 1
        else:
            failed += 1
            outcome.failed.append((job, result.error or "failed"))
            log.warning("job %d (%s) failed: %s", job.index + 1, job.job_id, result.error)
        bar(done + failed, len(todo), f"{done} done, {failed} failed, {len(todo) - done - failed} left")

    try:
        if todo:
            bar(0, len(todo), f"0 done, 0 failed, {len(todo)} left")
            executor.run(todo, on_result)
            for job in todo:  # an executor that came back without a job's result: that job failed
                if job.job_id not in seen:
                    on_result(JobResult(job.job_id, "failed", (), 0.0, f"the {executor.name} executor gave no result"))
    finally:
        bar.close()
    outcome.ran = done + failed
    outcome.sheets = write_contact_sheets(plan, manifest.records, folder)
    return outcome
