"""docs/BENCHMARKS.md: the machine, the command, the goals, what ran where, the overhead and accuracy tables and
the figures."""
from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch

from .accuracy import AccuracyConfig
from .goals import GoalResult, goals_table
from .markdown import fmt, table
from .overhead import OverheadResult
from .ranking import best_run
from .report_accuracy import accuracy_section
from .result import BenchResult
from .scoring import METRICS


@dataclass(frozen=True)
class RunInfo:
    command: str
    preset: str
    seconds: float
    machine: Dict[str, str]
    figures: Dict[str, str]  # caption -> path relative to the report


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> Dict[str, str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "CPU": cpu_model(),
        "cores": str(os.cpu_count()),
        "torch": f"{torch.__version__} ({torch.get_num_threads()} threads)",
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load average at start": "n/a" if load is None else " / ".join(f"{v:.1f}" for v in load) + " (1/5/15 min)",
    }


def overhead_section(result: OverheadResult) -> List[str]:
    c = result.config
    shape = "×".join(str(d) for d in c.shape)
    before, after = result.bare_blocks_ms
    lines = [
        "## Per-evaluation overhead",
        "",
        f"Trivial denoiser `D(x, σ) = 0.5·x` on a float32 batch of {shape}; every walk and peer gets a budget of "
        f"{c.nfe} evaluations on the {c.schedule} schedule ({c.sigma_min:g}..{c.sigma_max:g}). The reference is a "
        f"bare Euler loop of {c.nfe} steps written in the benchmark (`bench/overhead.py: bare_euler`): "
        f"**{fmt(result.bare_ms_per_nfe)} ms per evaluation** (median; {fmt(before)} in the block before the "
        f"samplers, {fmt(after)} after). Each sampler runs as a block of up to {c.repeats} consecutive timed runs "
        f"after {c.warmup} warm-up run(s)"
        + (f" (fewer, but at least {c.min_repeats}, once its runs took {c.max_seconds:g} s)"
           if c.repeats > c.min_repeats else "")
        + f", {result.threads} torch thread(s); medians. Every sampler is timed in two passes and keeps its "
        "faster block, and the bare loop is timed between all blocks and keeps its faster pass: this shared "
        "machine's speed drifts by up to 3x within a run, so ratios within about ±30 % of each other are ties.",
        "",
    ]
    rows = [[f"`{w.walk}`", w.group, "yes" if w.stochastic else "no", str(w.steps), str(w.nfe), fmt(w.ms_per_nfe),
             f"{w.ratio:.2f}×", fmt(w.extra_ms_per_nfe), str(w.repeats)] for w in result.walks]
    lines += table(["sampler", "group", "stochastic", "levels", "NFE", "ms / NFE", "ratio to bare Euler",
                    "extra ms / NFE", "runs"], rows)
    lines += ["", "What the pieces of one step cost on this batch (median of 20):", ""]
    lines += table(["operation", "ms"], [[item.what, fmt(item.ms)] for item in result.costs])
    cost = {item.key: item.ms for item in result.costs}
    lines += ["", *_cost_remarks(cost), ""]
    return lines


def _cost_remarks(cost: Dict[str, float]) -> List[str]:
    """The explanation under the cost table, with the ratios of this run."""
    unit = cost.get("elementwise", 0.0)
    check = noise = ""
    if unit > 0 and "finite_check" in cost:
        check = f" (here about {cost['finite_check'] / unit:.0f} elementwise operations"
        if cost.get("naive_check", 0) > 0:
            check += f"; the naive `torch.isfinite(x).all()` would be {cost['naive_check'] / unit:.0f}"
        check += ")"
    if unit > 0 and "item_noise" in cost and cost.get("batch_noise", 0) > 0:
        noise = (f" One draw here costs about {cost['item_noise'] / unit:.0f} elementwise operations, "
                 f"{cost['item_noise'] / cost['batch_noise']:.1f}× a single batch-wide `torch.randn`.")
    return [
        "Every walk of the pack checks its state for NaN/inf after each step with one min/max reduction, "
        "`isfinite(aminmax(x))`" + check
        + ", which the bare loop does not. **Stochastic walks also pay for per-item CPU noise generation**: "
        "every fresh-noise draw runs one CPU generator per batch item (so image *i* of a batch equals a single "
        "run with seed+i), and on a GPU the draw is then copied to the device." + noise
        + " Peers draw their noise from one generator for the whole batch (k-diffusion: torch's global one; "
        "ComfyUI: one seeded from the seed), or from torchsde's Brownian tree (the `dpmpp_*sde` samplers).",
    ]


def _plan_line(config: AccuracyConfig) -> str:
    def budgets(nfes, schedules):
        return f"NFE {'/'.join(map(str, nfes))} on {' and '.join(schedules)}"

    peer_nfes = config.peer_nfes or config.nfes
    peer_schedules = config.peer_schedules or config.schedules
    peers = budgets(peer_nfes, peer_schedules[:1])
    if len(peer_schedules) > 1:
        peers += ", " + budgets(config.peer_other_nfes or peer_nfes, peer_schedules[1:])
    slow = budgets(config.slow_nfes or peer_nfes, config.slow_schedules or peer_schedules)
    spread = (f"; seed-to-seed spread of `{config.spread_sampler}` at NFE {config.spread_nfe} over "
              f"{config.spread_seeds} seeds" if config.spread_seeds > 1 else "")
    return (f"{config.samples} samples, floors over {config.floor_repeats} exact sets; the pack's walks "
            f"{budgets(config.nfes, config.schedules)}; peers {peers}; Brownian-tree peers {slow}{spread}")


def samplers_section(result: BenchResult) -> List[str]:
    lines = ["## Samplers and what ran where", ""]
    pack = [a for a in result.accuracy[0].samplers.values() if a.is_pack] if result.accuracy else []
    lines.append("- The pack's walks (`walk_core.WALKS`): " + ", ".join(f"`{s.name}`" for s in pack) + ".")
    for group, where in result.peers.sources.items():
        names = [s for s in result.peers.samplers.values() if s.group == group]
        lines.append(f"- {group} peers ({len(names)}), from {where}: " + ", ".join(f"`{s.name}`" for s in names) + ".")
    for group, why in result.peers.unavailable.items():
        lines.append(f"- {group} peers: not run — {why}.")
    by_reason: Dict[str, List[str]] = {}
    for name, why in result.peers.skipped.items():
        by_reason.setdefault(why, []).append(f"`{name}`")
    for why, names in by_reason.items():
        lines.append(f"- Not run, {why}: {', '.join(names)}.")
    lines += ["", "Peers get the same initial noise as the walks; their own noise is seeded from the run's seed "
              "(torch's global generator, restored afterwards; ComfyUI's samplers also get `extra_args['seed']`). "
              "ComfyUI's samplers get a plain denoiser wrapped with a stand-in for the EDM/eps `model_sampling` "
              "object they query (`bench/peer_comfy.py`). Each sampler's levels per budget come from counting its "
              "denoiser calls (multi-stage samplers get fewer levels); the tables show the NFE actually used.", ""]
    for acc in result.accuracy:
        lines.append(f"- `{acc.target.key}`: {_plan_line(acc.config)}.")
    lines.append("")
    return lines


GLANCE = {"ring": ("sw2",), "image": ("cov_err", "detail"), "classes": ("diversity",)}


def glance_section(result: BenchResult) -> List[str]:
    """Per target, headline metric and budget: the floor, the best walk and the best peer (any schedule)."""
    rows = []
    for acc in result.accuracy:
        for key in GLANCE.get(acc.target.key, ()):
            floor = acc.floors.get(key)
            if floor is None:
                continue
            for budget in acc.budgets:
                cells = []
                for pack in (True, False):
                    s = best_run(acc, key, budget, pack)
                    ratio = f", {s.get(key) / floor.mean:.2f}× floor" if s and floor.mean > 0 else ""
                    cells.append("–" if s is None else
                                 f"`{s.row}` ({s.schedule}, NFE {s.nfe}): {fmt(s.get(key))}{ratio}")
                rows.append([acc.target.key, METRICS[key].label, str(budget), str(floor)] + cells)
    if not rows:
        return []
    return (["## At a glance", "", "Per target and budget, the floor of a headline metric and the run closest to "
             "exact on it among the pack's walks and among the peers (any schedule; runs that diverged or went off "
             "the target excluded). The tables below have every metric of every run.", ""]
            + table(["target", "metric", "budget", "floor", "best walk", "best peer"], rows) + [""])


def render(result: BenchResult, command: str, goals: Sequence[GoalResult],
           figures_by_target: Dict[str, Dict[str, str]]) -> str:
    seconds = result.seconds
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if k != "total")
    lines = [
        "# Benchmarks",
        "",
        "Generated by one command; do not edit by hand — rerun it:",
        "",
        "```",
        command,
        "```",
        "",
        f"Preset `{result.preset}`, {seconds.get('total', 0):.0f} s wall time ({parts}).",
        "",
    ]
    lines += table(["machine", ""], [[k, v] for k, v in result.machine.items()]) + [""]
    lines += ["## Goals (issue 6, part 3)", "",
              "Each goal for the pack's best walk (best of every walk × schedule × guidance chain measured here), "
              "next to the best peer on the same goal. Floors and sds are those of the tables below.", ""]
    lines += goals_table(goals) + [""]
    lines += glance_section(result)
    lines += samplers_section(result)
    if result.overhead is not None:
        lines += overhead_section(result.overhead)
    if result.accuracy:
        lines += [
            "## Accuracy on exact mixtures",
            "",
            "Each sampler samples an analytic Gaussian mixture whose denoiser is exact, so every error is the "
            "sampler's own (discretisation, too little mixing, leftover noise). Samples go to their most responsible "
            "component at σ = 0. Metrics (definitions in `bench/metrics.py`, `bench/guidance_metrics.py`): sliced "
            "Wasserstein-2 against exact samples; mode-weight TV (fraction of samples per component against the "
            "weights); component mean error (weight-averaged ‖mean − μ_k‖) and covariance error (weight-averaged "
            "‖Cov − Σ_k‖_F / ‖Σ_k‖_F); fine-detail variance ratio (variance orthogonal to each component's "
            "low-rank directions over the exact one; < 1 too smooth, > 1 leftover noise); for guidance: class "
            "precision, diversity kept (spread over the exact conditional's) and in-class mode TV.",
            "",
        ]
        for acc in result.accuracy:
            lines += accuracy_section(acc, figures_by_target.get(acc.target.key, {}))
    return "\n".join(lines).rstrip() + "\n"
