"""Per-evaluation overhead of every walk against a bare Euler loop.

The denoiser is trivial (``x * 0.5``) so what is timed is the walk itself: its tensor arithmetic, its
non-finite check, its noise draws. The reference is the plainest Euler loop on the probability-flow ODE,
written here, with as many steps as the walk makes evaluations. Bare loop and walk are timed alternately
(after warm-up) and the ratio is taken per repeat, so load from other processes affects both alike;
medians are reported.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch

from ..walk_core import WALKS, ItemNoise, make_sigmas, steps_for_nfe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverheadConfig:
    shape: Tuple[int, ...] = (4, 4, 128, 128)  # [B, C, H, W], float32
    nfe: int = 50  # evaluation budget of every walk
    repeats: int = 7  # timed runs (after warm-up); the median is reported
    warmup: int = 2
    schedule: str = "karras"
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    seed: int = 0


@dataclass(frozen=True)
class WalkOverhead:
    walk: str
    stochastic: bool
    steps: int
    nfe: int
    ms_per_nfe: float  # median over repeats
    bare_ms_per_nfe: float  # the bare Euler loop, timed alongside
    ratio: float  # median of per-repeat (walk time / bare time)
    extra_ms_per_nfe: float  # median of per-repeat (walk time - bare time) / NFE


@dataclass(frozen=True)
class CostItem:
    key: str  # elementwise | finite_check | max_check | item_noise | batch_noise
    what: str
    ms: float


@dataclass
class OverheadResult:
    config: OverheadConfig
    walks: List[WalkOverhead]
    costs: List[CostItem]


def trivial_denoiser(x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
    return x * 0.5


@torch.no_grad()
def bare_euler(model, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """The reference: Euler on dx/dsigma = (x - D(x, sigma)) / sigma, nothing else."""
    ones = x.new_ones(x.shape[0])
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = model(x, sigma * ones)
        x = x + (x - denoised) / sigma * (sigma_next - sigma)
    return x


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    return 1000 * statistics.median(_seconds(fn) for _ in range(repeats))


def measure_costs(config: OverheadConfig, draws: int = 20) -> List[CostItem]:
    """What one step's pieces cost on this shape: the numbers that explain the ratios."""
    x = torch.randn(config.shape)
    noise = ItemNoise.from_seed(config.seed, config.shape[0])
    g = torch.Generator().manual_seed(config.seed)
    return [
        CostItem("elementwise", "one elementwise op (x * 0.5, the trivial denoiser)", _median_ms(lambda: x * 0.5, draws)),
        CostItem("finite_check", "non-finite check torch.isfinite(x).all()", _median_ms(lambda: bool(torch.isfinite(x).all()), draws)),
        CostItem("max_check", "the same check as one reduction, torch.isfinite(x.abs().amax())",
                 _median_ms(lambda: bool(torch.isfinite(x.abs().amax())), draws)),
        CostItem("item_noise", f"per-item noise draw ItemNoise.randn, {config.shape[0]} CPU generators",
                 _median_ms(lambda: noise.randn(config.shape), draws)),
        CostItem("batch_noise", "one torch.randn of the whole batch, one generator",
                 _median_ms(lambda: torch.randn(config.shape, generator=g), draws)),
    ]


def measure_overhead(config: OverheadConfig, walks: Optional[List[str]] = None) -> OverheadResult:
    """Every walk at ``config.nfe`` evaluations, timed against the bare loop."""
    walks = list(WALKS) if walks is None else walks
    x0 = torch.randn(config.shape)
    sigmas = make_sigmas(config.schedule, config.nfe, config.sigma_min, config.sigma_max).float()
    # warm everything up before the first row: the allocator settles (glibc's mmap threshold adapts to the
    # tensor size), so the first rows are not timed against a slower bare loop than the later ones
    for _ in range(config.warmup):
        bare_euler(trivial_denoiser, x0, sigmas)
        for walk in walks:
            WALKS[walk].fn(trivial_denoiser, x0, sigmas, noise=ItemNoise.from_seed(config.seed, config.shape[0]))
    return OverheadResult(config, [_time_walk(config, walk) for walk in walks], measure_costs(config))


def _time_walk(config: OverheadConfig, walk: str) -> WalkOverhead:
    spec = WALKS[walk]
    steps = steps_for_nfe(walk, config.nfe)
    nfe = spec.nfe(steps)
    sigmas = make_sigmas(config.schedule, steps, config.sigma_min, config.sigma_max).float()
    bare_sigmas = make_sigmas(config.schedule, nfe, config.sigma_min, config.sigma_max).float()
    x0 = torch.randn(config.shape, generator=torch.Generator().manual_seed(config.seed)) * config.sigma_max

    def run_walk():
        spec.fn(trivial_denoiser, x0, sigmas, noise=ItemNoise.from_seed(config.seed, config.shape[0]))

    def run_bare():
        bare_euler(trivial_denoiser, x0, bare_sigmas)

    for _ in range(config.warmup):
        run_bare(), run_walk()
    walk_s, bare_s = [], []
    for _ in range(config.repeats):  # alternate, so a busy moment slows both
        bare_s.append(_seconds(run_bare))
        walk_s.append(_seconds(run_walk))
    row = WalkOverhead(walk, spec.stochastic, steps, nfe, 1000 * statistics.median(walk_s) / nfe,
                       1000 * statistics.median(bare_s) / nfe,
                       statistics.median(w / b for w, b in zip(walk_s, bare_s)),
                       1000 * statistics.median(w - b for w, b in zip(walk_s, bare_s)) / nfe)
    log.info("overhead %s: %d levels, %d NFE, %.3f ms/NFE, bare %.3f ms/NFE, ratio %.2f", walk, steps, nfe,
             row.ms_per_nfe, row.bare_ms_per_nfe, row.ratio)
    return row
