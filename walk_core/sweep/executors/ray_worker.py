"""What a Ray worker runs for one sweep job (``--executor ray``).

Ray ships this module's functions *by value* (ray_executor.py registers it with cloudpickle), because a
worker cannot import the pack by its module name ``rwalk`` until the pack is loaded: the task arrives, finds
the pack in its working directory (Ray's runtime environment ``working_dir`` -- a copy of the pack's folder
on every node), registers it as ``rwalk`` and runs the job there. So this file imports only the standard
library at module level, and the job and its result cross the wire as plain dicts and tuples, never as the
pack's classes.
"""
from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any, Dict, Optional, Tuple

PACKAGE = "rwalk"
JOBS_FILE = os.path.join("walk_core", "sweep", "jobs.py")


def load_pack(root: str) -> types.ModuleType:
    """The pack at ``root`` as package ``rwalk`` (its ``__init__`` unrun, as tests/conftest.py registers it)."""
    pack = sys.modules.get(PACKAGE)
    if pack is None:
        pack = types.ModuleType(PACKAGE)
        pack.__path__ = [root]
        pack.__file__ = os.path.join(root, "__init__.py")
        sys.modules[PACKAGE] = pack
    return pack


def pack_root(driver_root: str) -> str:
    """Where this worker finds the pack: its working directory (the runtime environment's copy), else the
    driver's folder (a connection made without working_dir, on the driver's machine)."""
    here = os.getcwd()
    return here if os.path.isfile(os.path.join(here, JOBS_FILE)) else driver_root


def run_job_task(job_fields: Dict[str, Any], threads: int, classes: Optional[Dict[str, str]],
                 input_dir: Optional[str], driver_root: str) -> Tuple[str, tuple, float, Any]:
    """Run one sweep job in this worker; returns ``(status, outputs, seconds, error)`` of its JobResult.

    ``job_fields`` are the SweepJob's fields; ``threads`` the CPUs the task was given (torch uses that many);
    ``classes`` the driver's node table as ``{name: "module:qualname"}`` (None: the pack's headless table);
    ``input_dir`` the driver's LoadImage folder, used where it exists (this machine, a shared file system);
    ``driver_root`` the pack's folder on the driver (see :func:`pack_root`).
    """
    load_pack(pack_root(driver_root))
    import torch

    torch.set_num_threads(max(1, int(threads)))
    jobs = importlib.import_module(PACKAGE + ".walk_core.sweep.jobs")
    table = jobs.resolve_references(classes) if classes else None
    jobs.install_node_table(table, input_dir if input_dir and os.path.isdir(input_dir) else None)
    result = jobs.run_job(jobs.SweepJob(**job_fields))
    return result.status, tuple(result.outputs), result.seconds, result.error
