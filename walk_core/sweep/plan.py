"""A sweep's jobs: the cartesian product (or ``--zip``) of its axes, each job the workflow with its overrides
applied and the whole graph validated -- every job, before any of them runs."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..runner.errors import WorkflowError
from ..runner.overrides import apply_overrides, find_node, parse_override, seed_overrides
from ..runner.paths import RunnerPaths, use_paths
from ..runner.validate import plan_workflow
from .axes import Axis, Vary, make_axes
from .capture import capture_table, check_outputs
from .jobs import SweepJob, job_id_for

MAX_JOBS = 10_000  # every job's graph is built and kept before the sweep starts


@dataclass(frozen=True)
class SweepPlan:
    """The validated jobs, in order, with the axes they lie on; ``coordinates[i]`` is job i's value index on
    each axis (the contact sheet's cell)."""

    axes: Tuple[Axis, ...]
    jobs: Tuple[SweepJob, ...]
    coordinates: Tuple[Tuple[int, ...], ...]


def _check_conflicts(api: Mapping[str, Any], table: Mapping[str, type], varies: Sequence[Vary], fixed: Sequence[str],
                     seeds: Optional[Sequence[int]]) -> None:
    """Two ``--vary`` on one input, or a ``--set`` on an input that ``--vary`` or ``--seeds`` sets, would hide one
    another: refused."""
    varied: Dict[Tuple[str, str], str] = {}
    for vary in varies:
        key = (find_node(api, vary.node_ref), vary.input_name)
        if key in varied:
            raise WorkflowError(key[0], api[key[0]].get("class_type"), key[1], f"--vary {vary.title} and --vary "
                                f"{varied[key]} change the same input; give its values in one --vary")
        varied[key] = f"--vary {vary.title}"
    if seeds:
        for text in seed_overrides(api, seeds[0], table):
            ref, name, _ = parse_override(text)
            varied.setdefault((ref, name), "--seeds")
    for text in fixed:
        ref, name, _ = parse_override(text)
        key = (find_node(api, ref), name)
        if key in varied:
            raise WorkflowError(key[0], api[key[0]].get("class_type"), key[1], f"--set {text} changes an input that "
                                f"{varied[key]} sets; leave one of them out")


def _seed_texts(api, seed: Optional[int], table) -> List[str]:
    if seed is None:
        return []
    found = seed_overrides(api, seed, table)
    if not found:
        raise WorkflowError(None, None, None, "--seeds: no node in this workflow has a seed or noise_seed input "
                            "that is not linked, so the seeds would change nothing")
    return found


def _validate(index: int, total: int, job_id: str, texts: List[str], api, ui, table,
              paths) -> Tuple[dict, Optional[dict]]:
    """The job's graph (and editor workflow) with its overrides, validated; a WorkflowError names the job."""
    job_ui = copy.deepcopy(ui) if ui is not None else None
    try:
        with use_paths(paths):
            prompt = apply_overrides(api, texts, table, ui_workflow=job_ui)
        order = plan_workflow(prompt, table, paths=paths)
        check_outputs(prompt, table, order)
    except WorkflowError as error:
        named = WorkflowError(None, None, None, f"sweep job {index + 1} of {total} ({job_id}): {error}")
        named.node_id, named.class_type, named.input_name = error.node_id, error.class_type, error.input_name
        raise named from None
    return prompt, job_ui


def plan_sweep(api: Mapping[str, Any], ui: Optional[dict], table: Mapping[str, type], *, varies: Sequence[Vary],
               seeds: Optional[Sequence[int]] = None, zipped: bool = False, fixed: Sequence[str] = (),
               paths: Optional[RunnerPaths] = None) -> SweepPlan:
    """Every job of the sweep, validated; the first bad job is one WorkflowError naming the job, node, input
    and value (nothing has run or been written).

    ``fixed`` are ``--set`` texts applied to every job (after the seed, before the varied values).
    """
    if not varies and not (seeds and len(seeds) > 1):
        raise WorkflowError(None, None, None, "nothing to sweep: give --vary NODE.INPUT=v1,v2,... and/or --seeds "
                            "with more than one seed")
    paths = paths or RunnerPaths.default()
    table = capture_table(table)  # validated as the jobs will run
    _check_conflicts(api, table, varies, fixed, seeds)
    axes = make_axes(varies, seeds, zipped)
    sizes = [len(axis) for axis in axes]
    total = 1
    for size in sizes:
        total *= size
    if total > MAX_JOBS:
        raise WorkflowError(None, None, None, f"this sweep has {total} jobs ({' x '.join(map(str, sizes))}); a sweep "
                            f"may have at most {MAX_JOBS}")
    single_seed = seeds[0] if seeds and len(seeds) == 1 else None
    jobs: List[SweepJob] = []
    coordinates = list(itertools.product(*(range(n) for n in sizes)))
    for index, where in enumerate(coordinates):
        overrides = tuple(o for axis, i in zip(axes, where) for o in axis.overrides[i])
        seed = next((axis.seeds[i] for axis, i in zip(axes, where) if axis.seeds is not None), single_seed)
        job_id = job_id_for(overrides, seed)
        texts = (_seed_texts(api, seed, table) + list(fixed)
                 + [f"{ref}.{name}={value}" for ref, name, value in overrides])
        prompt, job_ui = _validate(index, total, job_id, texts, api, ui, table, paths)
        jobs.append(SweepJob(job_id, index, overrides, seed, prompt, job_ui))
    ids = [job.job_id for job in jobs]
    if len(set(ids)) != len(ids):  # pragma: no cover - distinct values give distinct ids (hash suffix)
        raise WorkflowError(None, None, None, "two jobs of this sweep got one name; report this as a bug")
    return SweepPlan(tuple(axes), tuple(jobs), tuple(coordinates))
