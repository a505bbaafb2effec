"""Sweeps: many runs of one workflow with some inputs varied (``cli.py sweep``), on this machine or elsewhere.

``plan.py`` turns the command line's axes into validated jobs, an executor (executors/) runs them and hands back
each result, ``driver.py`` writes the pictures, the manifest (``sweep.jsonl``) and the XY(Z) contact sheets.
Every name below loads on first use (walk_core/lazy.py).
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "JobResult": "jobs", "SweepJob": "jobs", "install_node_table": "jobs", "job_id_for": "jobs", "run_job": "jobs",
    "SweepPlan": "plan", "plan_sweep": "plan",
    "SweepOutcome": "driver", "run_sweep": "driver",
    "read_manifest": "manifest",
    "parse_seeds": "axes", "parse_vary": "axes",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
