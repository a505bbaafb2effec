"""Prepares a fresh worker process to run sweep jobs: the pack registered under its package name, torch's
thread count, and the driver's node table and input folder installed (jobs.install_node_table).

A spawned process starts with none of the driver's modules, and cannot unpickle the pack's functions until the
pack is importable by name. So the process pool's initializer is the standard library's ``runpy.run_path`` on
this file, with :data:`BOOT` (plain strings and numbers) in its globals; this file imports the standard library
only, finds the pack beside itself, and hands over to the pack's own modules.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import types
from pathlib import Path
from typing import Any, Dict, Optional


def boot(package: str, root: str, threads: int, node_classes: Dict[str, str], input_dir: str = "",
         output_dir: str = "", environ: Optional[Dict[str, str]] = None) -> None:
    """Register the pack at ``root`` as ``package`` (its ``__init__`` unrun, as cli.py and the tests do), set
    torch's threads and install the node table named by ``node_classes`` (jobs.class_references); ``environ``
    (the driver's resource limits, walk_core/limits.py) is set before anything reads it."""
    os.environ.update(environ or {})
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it cancels the jobs and ends us
    if package not in sys.modules:
        pack = types.ModuleType(package)
        pack.__path__ = [root]
        pack.__file__ = os.path.join(root, "__init__.py")
        sys.modules[package] = pack
    import torch

    torch.set_num_threads(max(1, int(threads)))
    jobs = importlib.import_module(package + ".walk_core.sweep.jobs")
    jobs.install_node_table(jobs.resolve_references(node_classes), Path(input_dir) if input_dir else None,
                            Path(output_dir) if output_dir else None)


def boot_arguments(package: str, root: Path, threads: int, node_classes: Dict[str, str], input_dir: str = "",
                   output_dir: str = "", environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """``init_globals`` for ``runpy.run_path(this file, init_globals=...)``."""
    return {"BOOT": {"package": package, "root": str(root), "threads": int(threads),
                     "node_classes": dict(node_classes), "input_dir": input_dir, "output_dir": output_dir,
                     "environ": dict(environ or {})}}


if isinstance(globals().get("BOOT"), dict):  # run by runpy.run_path in a new worker
    boot(**globals()["BOOT"])
