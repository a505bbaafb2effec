"""docs/BENCHMARKS.md: the machine, the command, the overhead and accuracy tables and the figures."""
from __future__ import annotations

import datetime
import math
import os
import platform
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from .accuracy import TargetAccuracy, WalkScore
from .overhead import OverheadResult


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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fmt(value: Optional[float], digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}g}"


def overhead_section(result: OverheadResult) -> List[str]:
    c = result.config
    shape = "×".join(str(d) for d in c.shape)
    before, after = result.bare_blocks_ms
    lines = [
        "## Per-evaluation overhead",
        "",
        f"Trivial denoiser `D(x, σ) = 0.5·x` on a float32 batch of {shape}; every walk gets a budget of {c.nfe} "
        f"evaluations on the {c.schedule} schedule ({c.sigma_min:g}..{c.sigma_max:g}). The reference is a bare "
        f"Euler loop of {c.nfe} steps written in the benchmark (`bench/overhead.py: bare_euler`): "
        f"**{_fmt(result.bare_ms_per_nfe)} ms per evaluation** (median; {_fmt(before)} in the block before the "
        f"walks, {_fmt(after)} after). Each walk and the bare loop run as blocks of {c.repeats} consecutive "
        f"timed runs after {c.warmup} warm-up run(s), {torch.get_num_threads()} torch thread(s); medians.",
        "",
    ]
    rows = [[f"`{w.walk}`", "yes" if w.stochastic else "no", str(w.steps), str(w.nfe), _fmt(w.ms_per_nfe),
             f"{w.ratio:.2f}×", _fmt(w.extra_ms_per_nfe)] for w in result.walks]
    lines += _table(["walk", "stochastic", "levels", "NFE", "ms / NFE", "ratio to bare Euler",
                     "extra ms / NFE"], rows)
    lines += ["", "What the pieces of one step cost on this batch (median of 20):", ""]
    lines += _table(["operation", "ms"], [[item.what, _fmt(item.ms)] for item in result.costs])
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
        "Every walk checks its state for NaN/inf after each step with one min/max reduction, "
        "`isfinite(aminmax(x))`" + check
        + ", which the bare loop does not. **Stochastic walks also pay for per-item CPU noise generation**: "
        "every fresh-noise draw runs one CPU generator per batch item (so image *i* of a batch equals a single "
        "run with seed+i), and on a GPU the draw is then copied to the device." + noise
        + " `euler_ancestral` draws once per step, `edm` once per churned step (σ in [S_tmin, S_tmax]), "
        "`langevin` once per evaluation but the last, `pc` once per corrector step and once per predictor step.",
    ]


def _cell(score: Optional[WalkScore], metric: str) -> str:
    if score is None:
        return "–"
    if score.error:
        return f"diverged ({score.nfe})"
    return f"{_fmt(getattr(score, metric))} ({score.nfe})"


def accuracy_section(result: TargetAccuracy, figures: Dict[str, str]) -> List[str]:
    c, t = result.config, result.target
    walks = list(dict.fromkeys(s.walk for s in result.scores))
    lines = [
        f"### {t.key}: {t.title}",
        "",
        f"{c.samples} samples per run, σ {t.sigma_min:g}..{t.sigma_max:g}, the same initial noise for every walk "
        f"(item i seeded {c.seed}+i), exact denoiser. Sliced W2 uses {c.directions} random directions against "
        f"one exact sample set of the same size. Cells: value (NFE actually used).",
        "",
        f"Floors (independent exact sample sets of the same size, mean ± sd over {c.floor_repeats}): "
        f"sliced W2 **{result.sw2_floor}**, mode-weight TV **{result.tv_floor}**"
        + (f", fine-detail variance ratio **{result.detail_floor}**" if result.detail_floor else "") + ".",
        "",
    ]
    metrics = [("sw2", "sliced W2"), ("tv", "mode-weight TV")]
    if result.detail_floor is not None:
        metrics.append(("detail", "fine-detail variance ratio (1 = exact; < 1 too smooth, > 1 leftover noise)"))
    for schedule in c.schedules:
        for metric, label in metrics:
            lines += [f"**{label}**, {schedule} schedule:", ""]
            rows = [[f"`{w}`"] + [_cell(result.score(w, schedule, b), metric) for b in c.nfes] for w in walks]
            lines += _table(["walk"] + [f"budget {b}" for b in c.nfes], rows) + [""]
    lines += _verdict(result)
    for caption, path in figures.items():
        lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return lines


def _verdict(result: TargetAccuracy) -> List[str]:
    """Computed remarks: which walks reach the floor (within 3 sd) at the largest budget, and which do not."""
    c = result.config
    largest = max(c.nfes)
    lines = []
    for schedule in c.schedules:
        near, far = [], []
        for s in result.scores:
            if s.schedule != schedule or s.budget != largest:
                continue
            ok = (s.error is None and s.sw2 <= result.sw2_floor.mean + 3 * result.sw2_floor.sd
                  and s.tv <= result.tv_floor.mean + 3 * result.tv_floor.sd)
            (near if ok else far).append(f"`{s.walk}`")
        lines.append(f"- {schedule}, budget {largest}: at the floor (SW2 and TV within 3 sd of it): "
                     f"{', '.join(near) or 'none'}; above it: {', '.join(far) or 'none'}.")
    return lines + [""]


def render(info: RunInfo, overhead: Optional[OverheadResult], accuracy: Sequence[TargetAccuracy],
           figures_by_target: Dict[str, Dict[str, str]]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by one command; do not edit by hand — rerun it:",
        "",
        "```",
        info.command,
        "```",
        "",
        f"Preset `{info.preset}`, {info.seconds:.0f} s wall time.",
        "",
    ]
    lines += _table(["machine", ""], [[k, v] for k, v in info.machine.items()]) + [""]
    if overhead is not None:
        lines += overhead_section(overhead)
    if accuracy:
        lines += [
            "## Accuracy on exact mixtures",
            "",
            "Each walk samples an analytic Gaussian mixture whose denoiser is exact, so every error is the "
            "walk's own (discretisation, too little mixing, leftover noise). Metrics: sliced Wasserstein-2 "
            "against exact samples; total variation between the mixture weights and the fraction of samples "
            "whose most responsible component (at σ = 0) is each component; for the image-like target also "
            "the variance of the fine detail (the residual from the component mean orthogonal to its "
            "low-rank directions) relative to the exact value. Each metric is shown next to its floor: the "
            "same metric between independent exact sample sets of the same size.",
            "",
        ]
        for result in accuracy:
            lines += accuracy_section(result, figures_by_target.get(result.target.key, {}))
    return "\n".join(lines).rstrip() + "\n"
