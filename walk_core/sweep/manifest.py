"""``sweep.jsonl``: one JSON line per finished job, added as each job finishes.

A line holds ``job_id``, ``index``, ``overrides`` ([node, input, value] as given), ``seed``, ``outputs`` (file
names relative to the manifest's folder), ``seconds``, ``status`` ("done" or "failed"), ``error`` and
``prompt_sha256`` (the graph the job ran, so ``--resume`` never counts a job of another workflow as done); a
job's later line replaces its earlier one. The sweep starts the file atomically (walk_core/atomic_files.py: the
lines kept from an earlier run, in job order, or nothing), then appends each job's line with one ``write`` of
the whole line and an fsync: a reader, or a sweep stopped by Ctrl-C, sees whole lines only. (Rewriting the
whole file per job cost ~30 ms a job at 1,000 jobs; an append costs one fsync.) Only a crash of the machine
can cut the last line short; reading skips such a line and the next sweep's start drops it.
"""
from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..atomic_files import write_text_replace
from ..runner.errors import WorkflowError
from .jobs import JobResult, SweepJob, prompt_digest

log = logging.getLogger(__name__)

MANIFEST_NAME = "sweep.jsonl"


def record(job: SweepJob, result: JobResult, outputs: List[str]) -> Dict[str, Any]:
    """The manifest line of a finished job (``outputs``: the written files, relative to the manifest)."""
    return {"job_id": job.job_id, "index": job.index, "overrides": [list(o) for o in job.overrides],
            "seed": job.seed, "outputs": outputs, "seconds": round(float(result.seconds), 4),
            "status": result.status, "error": result.error, "prompt_sha256": prompt_digest(job.prompt)}


def read_manifest(path: Path) -> Dict[str, Dict[str, Any]]:
    """The records of a manifest by job id (the last line of a job wins); a damaged file is a WorkflowError."""
    records: Dict[str, Dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return records
    except (OSError, UnicodeDecodeError) as error:
        raise WorkflowError(None, None, None, f"--resume: cannot read {path} ({error})") from None
    lines = text.split("\n")
    if lines[-1].strip():  # no newline after it: a line cut short by a crash
        log.warning("%s: its last line is incomplete (the machine stopped while writing it); that job runs again",
                    path)
    for number, line in enumerate(lines[:-1], 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise WorkflowError(None, None, None, f"--resume: {path} line {number} is not JSON ({error.msg}); "
                                "expected the manifest a sweep wrote") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("job_id"), str):
            raise WorkflowError(None, None, None, f"--resume: {path} line {number} has no job_id; expected the "
                                "manifest a sweep wrote")
        records[entry["job_id"]] = entry
    return records


def is_done(entry: Optional[Mapping[str, Any]], job: SweepJob, folder: Path) -> bool:
    """True when ``entry`` records ``job`` (this very graph) as done and its files are all there."""
    if not entry or entry.get("status") != "done" or entry.get("prompt_sha256") != prompt_digest(job.prompt):
        return False
    outputs = entry.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        return False
    missing = [name for name in outputs if not isinstance(name, str) or not (folder / name).is_file()]
    if missing:
        log.info("job %s: recorded as done but %s is missing; running it again", job.job_id, missing[0])
    return not missing


class Manifest:
    """The manifest of one sweep: :meth:`start` writes the kept records, :meth:`add` appends one job's line."""

    def __init__(self, path: Path, kept: Optional[Mapping[str, Dict[str, Any]]] = None):
        self.path = path
        self.records: Dict[str, Dict[str, Any]] = dict(kept or {})

    def start(self) -> None:
        """The file with the kept records only, in job order (replaced atomically)."""
        ordered = sorted(self.records.values(), key=lambda e: (e.get("index", 0), e["job_id"]))
        write_text_replace(self.path, "".join(_line(e) for e in ordered))

    def add(self, entry: Dict[str, Any]) -> None:
        """Record a finished job: its line appended in one write, then flushed to disk."""
        data = _line(entry).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            written = os.write(fd, data)
            if written != len(data):  # a full disk: take the part back rather than leave half a line
                os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, f"{self.path}: only {written} of {len(data)} bytes could be written")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records[entry["job_id"]] = entry


def _line(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True) + "\n"
