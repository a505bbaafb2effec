"""Accuracy of every sampler (the pack's walks and the peers) on one exact target at fixed evaluation budgets.

For each planned (guidance chain, schedule, NFE budget), a sampler runs on the most noise levels that fit the
budget, from the same initial noise as every other sampler (item i drawn from a generator seeded
``seed + i``); its own noise is seeded ``seed + NOISE_STREAM`` (per item for the pack's walks). The exact
denoiser is wrapped in a call counter, so the NFE reported is the number of evaluations actually made.
A run that raises ``WalkDivergedError`` or returns non-finite or huge samples is recorded as diverged, one with
more than 1 % of its samples far off the target as off-target (``Scorer.evaluate``), any other failure as an
error: none of these stops the benchmark.
"""
from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..walk_core import ItemNoise, WalkDivergedError, make_sigmas
from ..walk_core.guidance import GuidanceChain
from .chains import guidance_chain
from .metrics import Floor, summarize
from .samplers import CallCounter, Sampler
from .scoring import Scorer
from .targets import BenchTarget

log = logging.getLogger(__name__)

_NON_FINITE = re.compile(r"\b(nan|inf|non-finite)\b", re.I)
NOISE_STREAM = 1 << 32  # the samplers' own noise: seeds far from the initial noise's seed + i


@dataclass(frozen=True)
class AccuracyConfig:
    nfes: Tuple[int, ...] = (10, 20, 50, 100)  # budgets of the pack's walks
    schedules: Tuple[str, ...] = ("karras",)
    samples: int = 2000  # per run and per exact set
    seed: int = 0
    reference_seed: int = 1_000_000  # the exact reference set; floor sets use reference_seed + 1 + j
    directions: int = 128  # random projections of the sliced W2
    floor_repeats: int = 5
    plot_nfe: int = 20  # samples kept for the plots at this budget (first schedule, first chain)
    peer_nfes: Optional[Tuple[int, ...]] = None  # budgets of the peers (None: nfes)
    peer_schedules: Optional[Tuple[str, ...]] = None  # (None: schedules)
    peer_other_nfes: Optional[Tuple[int, ...]] = None  # the peers' budgets on schedules after the first (None: same)
    slow_nfes: Optional[Tuple[int, ...]] = None  # budgets of the slow (Brownian-tree) peers (None: peer_nfes)
    slow_schedules: Optional[Tuple[str, ...]] = None  # (None: peer_schedules)
    spread_sampler: str = "euler_ancestral"  # its seed-to-seed spread is reported ('' = none)
    spread_nfe: int = 20
    spread_seeds: int = 5
    chains: Tuple[str, ...] = ("cfg",)  # guided targets: every sampler runs with chains[0]
    pack_chains: Tuple[str, ...] = ("cfg",)  # ... and the pack's walks with each of these
    scale: float = 4.0  # guidance scale
    # unguided targets: every sampler also runs from repeat_seeds - 1 further initial noises at these budgets,
    # so a goal can judge a walk by its mean over seeds rather than by one noise set's luck (goals.py)
    repeat_seeds: int = 1
    repeat_nfes: Tuple[int, ...] = ()

    def plan(self, sampler: Sampler, guided: bool) -> List[Tuple[str, str, int]]:
        """(chain, schedule, budget) runs of ``sampler``; chain is '' on unguided targets."""
        if sampler.is_pack:
            nfes, schedules = self.nfes, self.schedules
        elif sampler.slow:
            nfes = self.slow_nfes or self.peer_nfes or self.nfes
            schedules = self.slow_schedules or self.peer_schedules or self.schedules
        else:
            nfes, schedules = self.peer_nfes or self.nfes, self.peer_schedules or self.schedules
        if sampler.own_schedule:
            schedules = schedules[:1]  # it only uses the schedule's ends
        chain_names = (self.pack_chains if sampler.is_pack else self.chains[:1]) if guided else ("",)
        runs = []
        for i, schedule in enumerate(schedules):
            budgets = nfes if (sampler.is_pack or i == 0 or sampler.slow) else (self.peer_other_nfes or nfes)
            runs += [(chain, schedule, budget) for chain in chain_names for budget in budgets]
        return runs


@dataclass(frozen=True)
class Score:
    sampler: str
    chain: str  # '' unguided
    schedule: str
    budget: int  # the NFE budget asked for
    steps: int  # noise levels used
    nfe: int  # denoiser evaluations actually made (counted)
    values: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "ok"  # ok | off-target (metrics kept) | diverged | error
    message: str = ""

    @property
    def row(self) -> str:
        return row_name(self.sampler, self.chain)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def get(self, key: str) -> float:
        """The metric's value (also for an off-target run); nan when not measured."""
        return self.values.get(key, float("nan"))


def row_name(sampler: str, chain: str) -> str:
    return f"{sampler} + {chain}" if chain else sampler


@dataclass(frozen=True)
class Spread:
    """Seed-to-seed spread of one sampler: each metric's mean and sd over ``seeds`` runs."""

    sampler: str
    schedule: str
    nfe: int
    seeds: int
    values: Dict[str, Floor]


@dataclass
class TargetAccuracy:
    target: BenchTarget
    config: AccuracyConfig
    keys: Tuple[str, ...]
    floors: Dict[str, Floor]
    reference: torch.Tensor  # [n, *shape] exact samples
    samplers: Dict[str, Sampler] = field(default_factory=dict)  # name -> sampler, in run order
    scores: List[Score] = field(default_factory=list)
    plot_samples: Dict[str, torch.Tensor] = field(default_factory=dict)  # row -> [n, *shape] at plot_nfe
    spread: Optional[Spread] = None
    # (row, schedule, budget) -> the scores of the runs from further initial noises (AccuracyConfig.repeat_seeds)
    repeats: Dict[Tuple[str, str, int], List[Score]] = field(default_factory=dict)

    def score(self, row: str, schedule: str, budget: int) -> Optional[Score]:
        for s in self.scores:
            if (s.row, s.schedule, s.budget) == (row, schedule, budget):
                return s
        return None

    def rows(self) -> List[str]:
        return list(dict.fromkeys(s.row for s in self.scores))

    def sampler_of(self, row: str) -> Sampler:
        return self.samplers[row.split(" + ")[0]]

    @property
    def budgets(self) -> List[int]:
        return sorted({s.budget for s in self.scores})

    @property
    def schedules(self) -> List[str]:
        return list(dict.fromkeys(s.schedule for s in self.scores))


def initial_noise(n: int, shape: Sequence[int], seed: int, sigma_max: float) -> torch.Tensor:
    """float32 [n, *shape]: item i from a generator seeded seed + i, times sigma_max (the same for all samplers)."""
    return ItemNoise.from_seed(seed, n).randn((n,) + tuple(shape)) * float(sigma_max)


def run_sampler(target: BenchTarget, sampler: Sampler, sigmas: torch.Tensor, x: torch.Tensor, seed: int,
                chain: Optional[GuidanceChain] = None) -> Tuple[torch.Tensor, int]:
    """Samples (float64) of ``sampler`` from ``x`` with the exact (guided) denoiser, and the calls it made."""
    walk_target = target.walk_target
    denoiser = walk_target.denoiser
    if chain is not None:
        denoiser = chain.wrap(walk_target, float(sigmas[0]), float(sigmas[sigmas > 0].min()))
    model = CallCounter(denoiser)
    out = sampler.run(model, x.clone(), sigmas, seed + NOISE_STREAM)
    return out.to(torch.float64), model.calls


def _run_scored(scorer: Scorer, sampler: Sampler, chain: str, schedule: str, budget: int, x: torch.Tensor,
                seed: int, scale: float) -> Tuple[Score, Optional[torch.Tensor]]:
    target = scorer.target
    steps = sampler.steps_for(budget)
    sigmas = make_sigmas(schedule, steps, target.sigma_min, target.sigma_max)
    expected = sampler.nfe_of(steps) or 0
    start = time.perf_counter()
    try:
        samples, calls = run_sampler(target, sampler, sigmas, x, seed, guidance_chain(chain, scale) if chain else None)
    except WalkDivergedError as err:
        return Score(sampler.name, chain, schedule, budget, steps, expected, status="diverged", message=str(err)), None
    except Exception as err:  # noqa: BLE001 -- one sampler's failure must not stop the benchmark
        log.warning("%s %s: %s failed: %s", target.key, schedule, row_name(sampler.name, chain), err,
                    exc_info=sampler.is_pack)
        status = "diverged" if _NON_FINITE.search(str(err)) else "error"
        return Score(sampler.name, chain, schedule, budget, steps, expected, status=status,
                     message=f"{type(err).__name__}: {err}"), None
    seconds = time.perf_counter() - start
    if calls != expected:
        log.warning("%s: made %d denoiser calls on %d levels; %d were expected", sampler.name, calls, steps, expected)
    status, problem, values = scorer.evaluate(samples)
    score = Score(sampler.name, chain, schedule, budget, steps, calls, values, seconds, status, problem)
    return score, (None if status == "diverged" else samples)


def measure_accuracy(target: BenchTarget, config: AccuracyConfig, samplers: Sequence[Sampler]) -> TargetAccuracy:
    """Every sampler's planned runs on ``target``, the floors, and one sampler's seed-to-seed spread."""
    scorer = Scorer(target, config.samples, config.directions, config.reference_seed, config.floor_repeats)
    log.info("%s: floors %s", target.key, ", ".join(f"{k} {v}" for k, v in scorer.floors.items()))
    result = TargetAccuracy(target, config, scorer.keys, scorer.floors, scorer.reference,
                            {s.name: s for s in samplers})
    x = initial_noise(config.samples, target.shape, config.seed, target.sigma_max)
    first_schedule = config.schedules[0]
    for sampler in samplers:
        for chain, schedule, budget in config.plan(sampler, target.guided):
            score, samples = _run_scored(scorer, sampler, chain, schedule, budget, x, config.seed, config.scale)
            result.scores.append(score)
            first_chain = not target.guided or chain == (config.pack_chains if sampler.is_pack else config.chains)[0]
            if samples is not None and schedule == first_schedule and budget == config.plot_nfe and first_chain:
                result.plot_samples[score.row] = samples.float()
            values = " ".join(f"{k} {v:.4g}" for k, v in score.values.items())
            log.info("%s %s %s nfe %d (%d levels) %s [%.1fs]%s", target.key, schedule, score.row, score.nfe,
                     score.steps, values, score.seconds, "" if score.ok else f" {score.status} {score.message}")
    result.spread = _spread(scorer, config, {s.name: s for s in samplers})
    if not target.guided:
        result.repeats = _repeats(scorer, config, samplers)
    return result


def repeat_seed(config: AccuracyConfig, j: int) -> int:
    """The initial-noise seed of repeat j (1, 2, ...): items disjoint from the main, spread and other runs'."""
    return config.seed + (config.spread_seeds + j) * config.samples


def _repeats(scorer: Scorer, config: AccuracyConfig, samplers: Sequence[Sampler]) -> Dict[Tuple[str, str, int], List[Score]]:
    repeats: Dict[Tuple[str, str, int], List[Score]] = {}
    target = scorer.target
    for j in range(1, config.repeat_seeds):
        seed = repeat_seed(config, j)
        x = initial_noise(config.samples, target.shape, seed, target.sigma_max)
        for sampler in samplers:
            for _, schedule, budget in config.plan(sampler, False):
                if budget in config.repeat_nfes:
                    score, _ = _run_scored(scorer, sampler, "", schedule, budget, x, seed, config.scale)
                    repeats.setdefault((score.row, schedule, budget), []).append(score)
    if repeats:
        log.info("%s: %d further initial noises for every sampler at budgets %s", target.key,
                 config.repeat_seeds - 1, list(config.repeat_nfes))
    return repeats


def _spread(scorer: Scorer, config: AccuracyConfig, samplers: Dict[str, Sampler]) -> Optional[Spread]:
    sampler = samplers.get(config.spread_sampler)
    if sampler is None or config.spread_seeds < 2:
        return None
    target = scorer.target
    schedule = config.schedules[0]
    chain = ""
    if target.guided:
        chain = config.pack_chains[0] if sampler.is_pack else config.chains[0]
    runs = []
    for j in range(config.spread_seeds):
        seed = config.seed + (j + 1) * config.samples  # items disjoint from the main runs' and each other's
        x = initial_noise(config.samples, target.shape, seed, target.sigma_max)
        score, _ = _run_scored(scorer, sampler, chain, schedule, config.spread_nfe, x, seed, config.scale)
        if score.ok:
            runs.append(score.values)
    if len(runs) < 2:
        return None
    values = {}
    for key in scorer.keys:
        finite = [r[key] for r in runs if math.isfinite(r[key])]
        values[key] = summarize(finite) if finite else Floor(float("nan"), float("nan"))
    spread = Spread(row_name(sampler.name, chain), schedule, config.spread_nfe, len(runs), values)
    log.info("%s: seed-to-seed spread of %s: %s", target.key, spread.sampler,
             ", ".join(f"{k} {v}" for k, v in values.items()))
    return spread
