"""``cli.py sweep``: plan and validate every job, make the executor, run the sweep, report (see cli_args.py)."""
from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

from ..runner.errors import WorkflowError
from ..runner.paths import RunnerPaths
from .axes import parse_seeds, parse_vary
from .contact import axis_summary
from .driver import check_output_dir, run_sweep
from .executors.base import make_executor
from .jobs import install_node_table
from .plan import plan_sweep

log = logging.getLogger(__name__)

MAX_LISTED = 20  # failed jobs listed on stderr at the end


@contextmanager
def quiet_jobs(verbose: bool) -> Iterator[None]:
    """The pack's log lines from inside the jobs (the runner's 'node 5 (WalkSampler): running', each walk's
    summary) only with -v; the sweep's own lines stay."""
    pack_log = logging.getLogger(__name__.split(".walk_core.")[0])
    sweep_log = logging.getLogger(__name__.rpartition(".")[0])
    old = pack_log.level, sweep_log.level
    if not verbose:
        sweep_log.setLevel(pack_log.getEffectiveLevel())
        pack_log.setLevel(max(logging.WARNING, pack_log.getEffectiveLevel()))
    try:
        yield
    finally:
        pack_log.setLevel(old[0])
        sweep_log.setLevel(old[1])


def _seeds(args: argparse.Namespace):
    if args.seeds is not None and args.seed is not None:
        raise WorkflowError(None, None, None, f"--seed {args.seed} and --seeds {args.seeds!r}: give one of them "
                            "(--seeds 7 sets one seed on every job too)")
    if args.seeds is not None:
        return parse_seeds(args.seeds)
    return (args.seed,) if args.seed is not None else None


def run(args: argparse.Namespace, api: Mapping[str, Any], ui: Optional[dict], table: Mapping[str, type],
        paths: RunnerPaths) -> int:
    """The sweep of ``args`` over the loaded workflow; 0 when every job is done, 1 when some failed (listed on
    stderr). A problem with the sweep is a WorkflowError (cli.py: exit 2) raised before anything is written."""
    if args.server and args.executor != "comfyui":
        raise WorkflowError(None, None, None, f"--server is for --executor comfyui; this sweep runs on --executor "
                            f"{args.executor}")
    varies = [parse_vary(text) for text in args.vary]
    plan = plan_sweep(api, ui, table, varies=varies, seeds=_seeds(args), zipped=args.zip, fixed=list(args.set),
                      paths=paths)
    check_output_dir(args.output_dir, args.resume)
    log.info("sweep: %d jobs (%s) on the %s executor", len(plan.jobs), axis_summary(plan.axes), args.executor)
    install_node_table(table, paths.input_dir, paths.output_dir)
    try:
        try:
            executor = make_executor(args.executor, args)
        except ValueError as error:  # a bad executor option (--workers 0, ...)
            raise WorkflowError(None, None, None, str(error)) from None
        with quiet_jobs(args.verbose):
            outcome = run_sweep(plan, executor, args.output_dir, resume=args.resume,
                                progress=not (args.quiet or args.no_progress))
    finally:
        install_node_table(None)
    print(outcome.manifest)
    for sheet in outcome.sheets:
        print(sheet)
    log.info("sweep: %d ran, %d skipped (done before), %d failed", outcome.ran, outcome.skipped, len(outcome.failed))
    if outcome.failed:
        listed = sorted(outcome.failed, key=lambda item: item[0].index)
        lines = [f"  job {job.index + 1} ({job.job_id}): {error}" for job, error in listed[:MAX_LISTED]]
        if len(listed) > MAX_LISTED:
            lines.append(f"  ... and {len(listed) - MAX_LISTED} more (see {outcome.manifest})")
        sys.stderr.write(f"error: {len(listed)} of {len(plan.jobs)} jobs failed (--resume runs them again):\n"
                         + "\n".join(lines) + "\n")
        return 1
    return 0
