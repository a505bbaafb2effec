"""Accuracy of every walk on exact mixtures at fixed evaluation budgets.

For each schedule and NFE budget, each walk runs on the noise levels ``steps_for_nfe`` allows, from the
same initial noise (per-item generators seeded ``seed + i``, shared by all walks), with the exact
denoiser. Its samples are compared to one fixed set of exact samples of the same size (sliced W2), to the
mixture weights (mode-weight TV) and, for targets with a fine-detail part, to the exact detail variance.
The floors are the same metrics for independent exact sample sets.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from ..walk_core import WALKS, ItemNoise, WalkDivergedError, make_sigmas, steps_for_nfe
from .metrics import (Floor, assign, detail_variance_ratio, exact_samples, mode_weight_tv, random_directions,
                      sliced_w2, summarize)
from .targets import BenchTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccuracyConfig:
    nfes: Tuple[int, ...] = (10, 20, 50, 100)  # evaluation budgets
    schedules: Tuple[str, ...] = ("karras",)
    samples: int = 2000  # per walk run and per exact set
    seed: int = 0  # walk noise: item i uses seed + i (the same for every walk)
    reference_seed: int = 1_000_000  # the exact reference set; floor sets use reference_seed + 1 + j
    directions: int = 128  # random projections of the sliced W2
    floor_repeats: int = 5
    chunk: int = 250  # items per exact-denoiser call (keeps the [B, K, D] work in cache)
    plot_nfe: int = 20  # samples kept for the plots at this budget (first schedule)


@dataclass(frozen=True)
class WalkScore:
    walk: str
    schedule: str
    budget: int  # the NFE budget asked for
    steps: int  # noise levels used
    nfe: int  # denoiser evaluations actually made (counted)
    sw2: float = float("nan")
    tv: float = float("nan")
    detail: Optional[float] = None
    seconds: float = 0.0
    error: Optional[str] = None


@dataclass
class TargetAccuracy:
    target: BenchTarget
    config: AccuracyConfig
    sw2_floor: Floor
    tv_floor: Floor
    detail_floor: Optional[Floor]
    reference: torch.Tensor  # [n, *shape] exact samples
    scores: List[WalkScore] = field(default_factory=list)
    plot_samples: Dict[str, torch.Tensor] = field(default_factory=dict)  # walk -> [n, *shape] at plot_nfe

    def score(self, walk: str, schedule: str, budget: int) -> Optional[WalkScore]:
        for s in self.scores:
            if (s.walk, s.schedule, s.budget) == (walk, schedule, budget):
                return s
        return None


class CountingDenoiser:
    """The exact denoiser evaluated in chunks of items, counting walk-level calls."""

    def __init__(self, target: BenchTarget, chunk: int):
        self.denoise = target.mixture.denoise
        self.chunk = chunk
        self.calls = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
        self.calls += 1
        if bool((sigma == sigma[0]).all()):  # one sigma for the batch: skip the mixture's per-sigma grouping
            level = float(sigma[0])
            return torch.cat([self.denoise(xs, level) for xs in x.split(self.chunk)])
        return torch.cat([self.denoise(xs, ss) for xs, ss in zip(x.split(self.chunk), sigma.split(self.chunk))])


def run_walk(target: BenchTarget, walk: str, sigmas: torch.Tensor, n: int, seed: int, chunk: int):
    """Samples [n, *shape] (float64) of ``walk`` from noise seeded ``seed + i``, and the calls it made."""
    model = CountingDenoiser(target, chunk)
    noise = ItemNoise.from_seed(seed, n)
    x = noise.randn((n,) + target.shape) * float(sigmas[0])  # float32 walk state
    out = WALKS[walk].fn(model, x, sigmas, noise=noise)
    return out.to(torch.float64), model.calls


def _floors(target: BenchTarget, config: AccuracyConfig, reference: torch.Tensor, directions: torch.Tensor):
    sw2, tv, detail = [], [], []
    for j in range(config.floor_repeats):
        other = exact_samples(target.mixture, config.samples, config.reference_seed + 1 + j)
        components = assign(target.mixture, other)
        sw2.append(sliced_w2(reference, other, directions))
        tv.append(mode_weight_tv(target.mixture, other, components))
        if target.detail_variance is not None:
            detail.append(detail_variance_ratio(target.mixture, other, target.detail_variance, components))
    return summarize(sw2), summarize(tv), (summarize(detail) if detail else None)


def _score(target: BenchTarget, config: AccuracyConfig, walk: str, schedule: str, budget: int,
           reference: torch.Tensor, directions: torch.Tensor) -> Tuple[WalkScore, Optional[torch.Tensor]]:
    steps = steps_for_nfe(walk, budget)
    sigmas = make_sigmas(schedule, steps, target.sigma_min, target.sigma_max)
    start = time.perf_counter()
    try:
        samples, calls = run_walk(target, walk, sigmas, config.samples, config.seed, config.chunk)
    except WalkDivergedError as err:
        return WalkScore(walk, schedule, budget, steps, WALKS[walk].nfe(steps), error=str(err)), None
    seconds = time.perf_counter() - start
    expected = WALKS[walk].nfe(steps)
    if calls != expected:
        log.warning("walk %s: made %d denoiser calls on %d levels but its spec says nfe=%d",
                    walk, calls, steps, expected)
    components = assign(target.mixture, samples)
    detail = None
    if target.detail_variance is not None:
        detail = detail_variance_ratio(target.mixture, samples, target.detail_variance, components)
    score = WalkScore(walk, schedule, budget, steps, calls, sliced_w2(samples, reference, directions),
                      mode_weight_tv(target.mixture, samples, components), detail, seconds)
    return score, samples


def measure_accuracy(target: BenchTarget, config: AccuracyConfig, walks: Optional[List[str]] = None) -> TargetAccuracy:
    """Every walk x schedule x NFE budget on ``target``."""
    walks = list(WALKS) if walks is None else walks
    reference = exact_samples(target.mixture, config.samples, config.reference_seed)
    directions = random_directions(target.mixture.dim, config.directions, config.reference_seed)
    sw2_floor, tv_floor, detail_floor = _floors(target, config, reference, directions)
    log.info("%s: floors SW2 %s, TV %s, detail %s", target.key, sw2_floor, tv_floor, detail_floor)
    result = TargetAccuracy(target, config, sw2_floor, tv_floor, detail_floor, reference)
    for schedule in config.schedules:
        for budget in config.nfes:
            for walk in walks:
                score, samples = _score(target, config, walk, schedule, budget, reference, directions)
                result.scores.append(score)
                if samples is not None and schedule == config.schedules[0] and budget == config.plot_nfe:
                    result.plot_samples[walk] = samples
                log.info("%s %s %s nfe %d (%d levels): SW2 %.4g TV %.4g detail %s [%.1fs]%s", target.key, schedule,
                         walk, score.nfe, score.steps, score.sw2, score.tv,
                         "-" if score.detail is None else f"{score.detail:.3f}", score.seconds,
                         f" ERROR {score.error}" if score.error else "")
    return result
