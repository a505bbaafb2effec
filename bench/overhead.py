"""Per-evaluation overhead of every walk and peer against a bare Euler loop.

The denoiser is trivial (``x * 0.5``) so what is timed is the sampler itself: its tensor arithmetic, its
non-finite check, its noise draws. The reference is the plainest Euler loop on the probability-flow ODE,
written here, with as many steps as the budget has evaluations. Medians of consecutive runs after warm-up;
a sampler whose runs are slow gets fewer timed runs (at least ``min_repeats``, then until ``max_seconds``).
"""
from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..walk_core import ItemNoise, make_sigmas
from .samplers import Sampler, pack_samplers

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
    device: str = "cpu"  # "cuda": the walk state and denoiser on the GPU (noise still drawn on the CPU, per item)
    min_repeats: int = 2  # a slow sampler: at least this many timed runs ...
    max_seconds: float = 2.0  # ... and more only while its timed runs took less than this


@dataclass(frozen=True)
class WalkOverhead:
    walk: str  # the sampler's name (a pack walk or a peer)
    stochastic: bool
    steps: int
    nfe: int
    ms_per_nfe: float  # median over repeats
    ratio: float  # ms_per_nfe over the bare loop's
    extra_ms_per_nfe: float  # ms_per_nfe minus the bare loop's
    group: str = "pack"
    repeats: int = 0  # timed runs


@dataclass(frozen=True)
class CostItem:
    key: str  # elementwise | finite_check | naive_check | item_noise | batch_noise
    what: str
    ms: float


@dataclass
class OverheadResult:
    config: OverheadConfig
    bare_ms_per_nfe: float  # median over both bare blocks
    bare_blocks_ms: Tuple[float, float]  # median ms / NFE of the block before and the block after the walks
    walks: List[WalkOverhead]
    costs: List[CostItem]
    threads: int = 1  # torch threads during the measurement


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


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _seconds(fn: Callable[[], object]) -> float:
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - start


def _block(fn: Callable[[], object], repeats: int, warmup: int, min_repeats: Optional[int] = None,
           max_seconds: float = math.inf) -> List[float]:
    """Seconds of ``repeats`` consecutive runs of ``fn`` after ``warmup`` untimed ones; with ``min_repeats``,
    the runs stop early once ``min_repeats`` are done and together took ``max_seconds`` (and one warm-up run
    that took ``max_seconds`` is enough)."""
    for _ in range(warmup):
        if _seconds(fn) >= max_seconds and min_repeats is not None:
            break
    times: List[float] = []
    for _ in range(repeats):
        times.append(_seconds(fn))
        if min_repeats is not None and len(times) >= min_repeats and sum(times) >= max_seconds:
            break
    return times


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    return 1000 * statistics.median(_block(fn, repeats, 1))


def measure_costs(config: OverheadConfig, draws: int = 20) -> List[CostItem]:
    """What one step's pieces cost on this shape: the numbers that explain the ratios."""
    x = torch.randn(config.shape)
    noise = ItemNoise.from_seed(config.seed, config.shape[0])
    g = torch.Generator().manual_seed(config.seed)
    return [
        CostItem("elementwise", "one elementwise op (x * 0.5, the trivial denoiser)",
                 _median_ms(lambda: x * 0.5, draws)),
        CostItem("finite_check", "the walks' non-finite check, isfinite(aminmax(x))",
                 _median_ms(lambda: bool(torch.isfinite(torch.stack(torch.aminmax(x))).all()), draws)),
        CostItem("naive_check", "the naive check torch.isfinite(x).all(), for comparison",
                 _median_ms(lambda: bool(torch.isfinite(x).all()), draws)),
        CostItem("item_noise", f"per-item noise draw ItemNoise.randn, {config.shape[0]} CPU generators",
                 _median_ms(lambda: noise.randn(config.shape), draws)),
        CostItem("batch_noise", "one torch.randn of the whole batch, one generator",
                 _median_ms(lambda: torch.randn(config.shape, generator=g), draws)),
    ]


def measure_overhead(config: OverheadConfig, samplers: Optional[Sequence[Sampler]] = None,
                     denoiser: Optional[Callable] = None) -> OverheadResult:
    """Every sampler (default: every registered walk) at ``config.nfe`` evaluations against the bare loop, both
    calling ``denoiser`` (default: the trivial one; bench/gpu.py passes a busy one: what a network's time hides).

    Each piece is timed in its own block of consecutive runs: alternating bare loop and walk made the
    bare loop pay for the walk's allocations (its 1 MB tensors then miss glibc's reused heap). A bare block
    is timed between every two samplers' blocks and the reference is the median of those blocks' medians (on
    a shared machine the speed drifts by up to 2x within a run, most at its start: one slow block must not
    set every ratio). Every sampler is timed in two passes and keeps its faster block; the bare loop likewise
    keeps the faster pass (median of that pass's blocks). The first and last bare blocks are reported, so
    drift shows.
    """
    samplers = list(pack_samplers().values()) if samplers is None else list(samplers)
    model = denoiser or trivial_denoiser
    x0 = (torch.randn(config.shape, generator=torch.Generator().manual_seed(config.seed)) * config.sigma_max
          ).to(config.device)
    bare_sigmas = make_sigmas(config.schedule, config.nfe, config.sigma_min, config.sigma_max).float().to(config.device)

    def bare_block() -> List[float]:
        return _block(lambda: bare_euler(model, x0, bare_sigmas), config.repeats, config.warmup)

    before = _settled(bare_block)
    rows, bare_blocks = [], [before]
    for sampler in samplers:  # bare blocks between the samplers: the reference is the median over all of them
        rows.append(_time_sampler(config, sampler, x0, model))
        bare_blocks.append(bare_block())
    first_pass = len(bare_blocks)
    for i, sampler in enumerate(samplers):  # a second pass; each sampler keeps its faster block (transient slowness)
        again = _time_sampler(config, sampler, x0, model)
        if again.ms_per_nfe < rows[i].ms_per_nfe:
            rows[i] = again
        bare_blocks.append(bare_block())
    after = bare_blocks[-1]
    passes = (bare_blocks[:first_pass], bare_blocks[first_pass:] or bare_blocks)
    bare_ms = 1000 * min(statistics.median([statistics.median(b) for b in p]) for p in passes) / config.nfe
    rows = [replace(r, ratio=r.ms_per_nfe / bare_ms, extra_ms_per_nfe=r.ms_per_nfe - bare_ms) for r in rows]
    for r in rows:
        log.info("overhead %s: %d levels, %d NFE, %.3f ms/NFE, %.2fx the bare loop (%.3f ms/NFE), %d runs", r.walk,
                 r.steps, r.nfe, r.ms_per_nfe, r.ratio, bare_ms, r.repeats)
    blocks = tuple(1000 * statistics.median(b) / config.nfe for b in (before, after))
    return OverheadResult(config, bare_ms, blocks, rows, measure_costs(config), torch.get_num_threads())


def _settled(block: Callable[[], List[float]], tolerance: float = 0.1, max_seconds: float = 5.0,
             min_seconds: float = 1.0) -> List[float]:
    """Repeat ``block`` for at least ``min_seconds`` and until two consecutive medians agree within
    ``tolerance`` (or ``max_seconds`` pass) and return the last: the first blocks of a run were measured up to
    3x slower than the machine's steady state (allocator and caches warming up)."""
    start = time.perf_counter()
    last = block()
    while time.perf_counter() - start < max_seconds:
        now = block()
        settled = abs(statistics.median(now) - statistics.median(last)) <= tolerance * statistics.median(now)
        if settled and time.perf_counter() - start >= min_seconds:
            return now
        last = now
    return last


def _time_sampler(config: OverheadConfig, sampler: Sampler, x0: torch.Tensor, model: Callable) -> WalkOverhead:
    steps = sampler.steps_for(config.nfe)
    nfe = sampler.nfe_of(steps)
    sigmas = make_sigmas(config.schedule, steps, config.sigma_min, config.sigma_max).float().to(config.device)

    def run():
        sampler.run(model, x0, sigmas, config.seed)

    times = _block(run, config.repeats, config.warmup, config.min_repeats, config.max_seconds)
    ms = 1000 * statistics.median(times) / nfe
    return WalkOverhead(sampler.name, sampler.stochastic, steps, nfe, ms, float("nan"), float("nan"),
                        sampler.group, len(times))
