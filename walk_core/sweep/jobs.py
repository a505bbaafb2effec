"""One job of a sweep -- the workflow with some inputs changed -- and running it without touching the disk.

A :class:`SweepJob` carries the whole validated graph, so any process that can import the pack runs it: the
driver in-process, a local worker process, a Ray task. :func:`run_job` runs it with the save nodes replaced by
ones that keep the pictures in memory (capture.py), so the job's PNGs come back as bytes -- with the job's own
``prompt`` / ``workflow`` chunks -- and only the driver writes files.

The node table a job runs with is the one :func:`install_node_table` put in this process (the driver installs
the CLI's table, a local worker gets it from executors/worker_boot.py); a process where none was installed
uses the pack's headless table (its NODE_CLASS_MAPPINGS plus the runner's image IO nodes), loaded by name.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..runner.execute import run_workflow
from ..runner.io_nodes import IO_NODE_CLASSES
from ..runner.paths import RunnerPaths
from .capture import capture_table, captured_pictures

log = logging.getLogger(__name__)

Override = Tuple[str, str, str]  # (node reference as given, input name, value text)


@dataclass(frozen=True)
class SweepJob:
    """One run of the sweep's workflow."""

    job_id: str  # deterministic and file-name safe, from the job's overrides and seed (job_id_for)
    index: int  # position in the sweep's order
    overrides: tuple  # ((node_ref, input_name, value), ...) as given on the command line
    seed: Optional[int]
    prompt: dict  # API-format graph with the overrides applied and validated
    workflow: Optional[dict]  # UI graph with the same overrides (the PNG 'workflow' chunk), if any


@dataclass(frozen=True)
class JobResult:
    """What a job gave: its pictures as bytes (never written by the worker), or why it failed."""

    job_id: str
    status: str  # "done" | "failed"
    outputs: tuple  # ((relative_file_name, bytes), ...): PNG bytes with the job's prompt/workflow chunks
    seconds: float
    error: Optional[str]


# ---- job ids -------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
MAX_ID_LENGTH = 120  # leaves room for "_NN.webp" and a numbered copy within a file name's 255 bytes


def job_id_for(overrides: Sequence[Override], seed: Optional[int]) -> str:
    """``WalkSampler.steps-10__WalkSampler.walk-euler__seed-3``: the job's name from what it changes.

    Characters a file name should not carry become ``_``; when that changed the text (so two jobs could meet
    on one name) or the name is long, 8 hex digits of the exact overrides' hash are added (shortened names).
    """
    parts = [f"{ref}.{name}-{value}" for ref, name, value in overrides]
    if seed is not None:
        parts.append(f"seed-{int(seed)}")
    raw = "__".join(parts) or "job"
    safe = _UNSAFE.sub("_", raw).strip("._") or "job"
    if safe == raw and len(safe) <= MAX_ID_LENGTH:
        return safe
    digest = hashlib.sha256(json.dumps([list(o) for o in overrides] + [seed]).encode("utf-8")).hexdigest()[:8]
    return f"{safe[:MAX_ID_LENGTH].rstrip('._')}_{digest}"


def prompt_digest(prompt: Mapping[str, Any]) -> str:
    """SHA-256 of the graph's canonical JSON: the manifest's proof that a recorded job ran this very graph."""
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


# ---- the node table of this process ------------------------------------------------------------------------

_installed: Dict[str, Any] = {"table": None, "input_dir": None, "output_dir": None}


def install_node_table(table: Optional[Mapping[str, type]], input_dir: Optional[Path] = None,
                       output_dir: Optional[Path] = None) -> None:
    """Make ``table`` (class name -> node class) and the folders what jobs run with in this process: ``input_dir``
    (LoadImage's), ``output_dir`` (where nodes look for files earlier runs saved, such as style codes; a job
    writes nothing there). ``None`` goes back to the pack's headless table and ``./input``, ``./output``."""
    _installed["table"] = dict(table) if table is not None else None
    _installed["input_dir"] = Path(input_dir) if input_dir is not None else None
    _installed["output_dir"] = Path(output_dir) if output_dir is not None else None


def installed_input_dir() -> Optional[Path]:
    return _installed["input_dir"]


def installed_output_dir() -> Optional[Path]:
    return _installed["output_dir"]


def job_paths() -> RunnerPaths:
    """The folders jobs run with here (installed, else ./input and ./output)."""
    default = RunnerPaths.default()
    return RunnerPaths(_installed["input_dir"] or default.input_dir, _installed["output_dir"] or default.output_dir)


def headless_node_table() -> Dict[str, type]:
    """The pack's nodes plus the runner's headless image IO nodes (what ``cli.py run`` uses), by module name:
    the engine never imports the node classes, the process that runs a job loads them."""
    package = __name__.split(".walk_core.")[0]
    nodes = importlib.import_module(package + ".nodes")
    return {**nodes.NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}


def node_table() -> Dict[str, type]:
    """The table jobs run with here (installed, else the pack's headless one)."""
    if _installed["table"] is None:
        _installed["table"] = headless_node_table()
    return _installed["table"]


#: class_references' value for a class that is the pack's own (its headless table's) of that name
PACK_CLASS = ""


def class_references(table: Mapping[str, type]) -> Dict[str, str]:
    """``{class name: reference}`` of a node table, to rebuild it in another process (:func:`resolve_references`):
    :data:`PACK_CLASS` for the pack's own class of that name (some are made by factories and cannot be found by
    module and name), else ``"module:qualname"``. A class that another process cannot import by name (defined
    inside a function) is a ValueError naming it."""
    own = headless_node_table()
    refs = {}
    for name, cls in table.items():
        if own.get(name) is cls:
            refs[name] = PACK_CLASS
            continue
        qualname = getattr(cls, "__qualname__", "")
        if "<locals>" in qualname or not getattr(cls, "__module__", None):
            raise ValueError(f"node class {name!r} ({qualname}) cannot be loaded in a worker process: define it at "
                             "the top level of an importable module")
        refs[name] = f"{cls.__module__}:{qualname}"
    return refs


def resolve_references(refs: Mapping[str, str]) -> Dict[str, type]:
    """The node table named by :func:`class_references`."""
    own = headless_node_table() if PACK_CLASS in refs.values() else {}
    table = {}
    for name, ref in refs.items():
        if ref == PACK_CLASS:
            table[name] = own[name]
            continue
        module, _, qualname = ref.partition(":")
        value: Any = importlib.import_module(module)
        for part in qualname.split("."):
            value = getattr(value, part)
        table[name] = value
    return table


# ---- running one job -----------------------------------------------------------------------------------------

def output_names(job_id: str, suffixes: Sequence[str]) -> Tuple[str, ...]:
    """``<job_id>.png`` for a job's only picture, ``<job_id>_01.png``, ``_02`` ... when it has several."""
    if len(suffixes) == 1:
        return (f"{job_id}{suffixes[0]}",)
    return tuple(f"{job_id}_{i:02d}{suffix}" for i, suffix in enumerate(suffixes, 1))


def run_job(job: SweepJob) -> JobResult:
    """Run ``job`` in this process, per-job progress quiet, nothing written to disk.

    A failure of the workflow (a node raising, a value the graph refuses) becomes status "failed" with its
    message; KeyboardInterrupt (and SystemExit) pass through.
    """
    started = time.perf_counter()
    table = capture_table(node_table())
    try:
        with captured_pictures() as pictures:
            run_workflow(job.prompt, table, ui_workflow=job.workflow, progress=False, paths=job_paths())
    except Exception as error:  # the job failed; the sweep goes on (the driver records it)
        log.debug("job %s failed", job.job_id, exc_info=True)
        return JobResult(job.job_id, "failed", (), time.perf_counter() - started,
                         str(error) or type(error).__name__)
    if not pictures:
        return JobResult(job.job_id, "failed", (), time.perf_counter() - started,
                         "the workflow ran but its save nodes got no pictures")
    names = output_names(job.job_id, [suffix for suffix, _ in pictures])
    outputs = tuple((name, data) for name, (_, data) in zip(names, pictures))
    return JobResult(job.job_id, "done", outputs, time.perf_counter() - started, None)
