"""One target's metrics: a sample set -> {metric: value}, and each metric's finite-sample floor.

The floor of a metric is its value for independent exact sample sets of the same size (mean and sd over
``floor_repeats`` sets), so a sampler is judged against what the sample size can resolve. Unguided targets
are scored against the mixture itself; the guided one against its exact class-conditional distribution.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from .guidance_metrics import class_precision, in_class_tv, spread
from .metrics import (Floor, component_errors, detail_variance_ratio, exact_samples, mode_weight_tv,
                      random_directions, sliced_w2, summarize)
from .targets import BenchTarget


@dataclass(frozen=True)
class MetricInfo:
    label: str
    kind: str  # "error": 0 is exact, lower is better; "ratio": 1 is exact; "fraction": 1 is best
    digits: int = 3


METRICS: Dict[str, MetricInfo] = {
    "sw2": MetricInfo("sliced W2", "error"),
    "tv": MetricInfo("mode-weight TV", "error"),
    "mean_err": MetricInfo("component mean error", "error"),
    "cov_err": MetricInfo("component covariance error (relative)", "error"),
    "detail": MetricInfo("fine-detail variance ratio", "ratio"),
    "precision": MetricInfo("class precision", "fraction", 4),
    "diversity": MetricInfo("diversity kept", "ratio"),
    "class_tv": MetricInfo("in-class mode TV", "error"),
}

OFF_TARGET = 0.01  # a sample set with more samples off the target than this is flagged "off-target"

UNGUIDED = ("sw2", "tv", "mean_err", "cov_err")
GUIDED = ("precision", "diversity", "class_tv")


def metric_keys(target: BenchTarget) -> Tuple[str, ...]:
    keys = GUIDED if target.guided else UNGUIDED
    return keys + (("detail",) if target.detail_variance is not None else ())


class Scorer:
    """Scores sample sets of ``samples`` items on ``target``; ``floors`` are computed on construction."""

    def __init__(self, target: BenchTarget, samples: int, directions: int = 128, reference_seed: int = 1_000_000,
                 floor_repeats: int = 5):
        if samples < 2 or floor_repeats < 1:
            raise ValueError(f"Scorer: samples={samples}, floor_repeats={floor_repeats} are not allowed; "
                             "expected samples >= 2 and floor_repeats >= 1")
        self.target = target
        self.samples = samples
        self.keys = metric_keys(target)
        self.reference = exact_samples(target.sampled, samples, reference_seed)
        self.directions = random_directions(target.mixture.dim, directions, reference_seed)
        exact_sets = [exact_samples(target.sampled, samples, reference_seed + 1 + j) for j in range(floor_repeats)]
        self.exact_spread = statistics.fmean(spread(x) for x in [self.reference] + exact_sets)
        self.scale = float(self.reference.abs().max())
        self.signal_rms = float(_item_rms(self.reference).median())
        per_set: List[Dict[str, float]] = [self.score(x) for x in exact_sets]
        self.floors: Dict[str, Floor] = {k: summarize([s[k] for s in per_set]) for k in self.keys}

    def score(self, x: torch.Tensor, components: Optional[torch.Tensor] = None) -> Dict[str, float]:
        """Every metric of the target for samples ``x`` [n, *shape] (finite)."""
        t = self.target
        x = x.to(torch.float64)
        components = t.exact.assign(x) if components is None else components
        out: Dict[str, float] = {}
        if t.guided:
            out["precision"] = class_precision(t.mixture, components, t.label)
            out["diversity"] = spread(x) / self.exact_spread
            out["class_tv"] = in_class_tv(t.mixture, components, t.label)
        else:
            out["sw2"] = sliced_w2(x, self.reference, self.directions)
            out["tv"] = mode_weight_tv(t.mixture, x, components)
            out["mean_err"], out["cov_err"] = component_errors(t.mixture, x, components)
        if t.detail_variance is not None:
            out["detail"] = detail_variance_ratio(t.mixture, x, t.detail_variance, components)
        return out

    def evaluate(self, x: torch.Tensor, factor: float = 1e3) -> Tuple[str, str, Dict[str, float]]:
        """(status, why, metrics) of a sample set. Status ``diverged`` (no metrics): non-finite values or values
        beyond ``factor`` times the exact samples' largest magnitude. ``off-target`` (metrics still computed):
        more than ``OFF_TARGET`` of the samples are farther from their nearest component's mean (per-item RMS)
        than the exact samples' median per-item RMS -- noise as large as the signal, which no exact sample comes
        near. ``ok`` otherwise."""
        if not bool(torch.isfinite(x).all()):
            return "diverged", "non-finite samples", {}
        largest = float(x.abs().max())
        if largest > factor * self.scale:
            return "diverged", f"samples up to {largest:.3g} (exact samples stay within {self.scale:.3g})", {}
        x = x.to(torch.float64)
        components = self.target.exact.assign(x)
        flat = x.reshape(x.shape[0], -1)
        deviation = _item_rms(flat - self.target.mixture.means[components])
        off = float((deviation > self.signal_rms).to(torch.float64).mean())
        values = self.score(x, components)
        if off > OFF_TARGET:
            return "off-target", (f"{off:.1%} of the samples are farther from every mode (RMS) than "
                                  f"{self.signal_rms:.3g}, the exact samples' median RMS"), values
        return "ok", "", values


def _item_rms(x: torch.Tensor) -> torch.Tensor:
    """[n] root mean square of each item."""
    return x.reshape(x.shape[0], -1).to(torch.float64).square().mean(1).sqrt()


def within(value: float, floor: Floor, sds: float, kind: str) -> bool:
    """Whether ``value`` is within ``sds`` standard deviations of the floor (one-sided for errors: below the
    floor is fine; two-sided for ratios; for fractions, not below)."""
    if not math.isfinite(value):
        return False
    if kind == "error":
        return value <= floor.mean + sds * floor.sd
    if kind == "fraction":
        return value >= floor.mean - sds * floor.sd
    return abs(value - floor.mean) <= sds * floor.sd
