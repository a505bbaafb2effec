"""Learn a few-step schedule for one walk, NFE and target by matching a many-step teacher walk from the same noise.

LD3 (Tong et al., "Learning to Discretize Denoising Diffusion ODEs", ICLR 2025) and S4S (Frankel et al. 2025,
"S4S: Solving for a diffusion model solver") fit a sampler's time steps so that its few-step output lands where a
many-step solve of the same ODE lands from the same starting noise. Here:

1. Training noise x_T (item i seeded ``seed + i``, DESIGN.md) is walked once by the teacher: ``teacher_walk`` on a
   Karras schedule of ``teacher_steps`` levels, accurate enough to be the ODE's solution.
2. The student is the walk itself, at the most levels that fit the NFE budget, on the schedule
   ``sigmas_from_logits(z)`` (a softmax over log-sigma gaps: always descending and inside [sigma_min, sigma_max]).
   The loss is the mean over items of the root-mean-square distance between student and teacher outputs.
3. The logits start at the best fixed schedule of the registry (several rho's) and are fitted by Adam on autograd
   gradients through the walk and the denoiser where the walk is differentiable, else by a derivative-free simplex
   search (``search.py``). The pack's walks run under ``torch.no_grad`` and take python floats of sigma, and a
   ComfyUI MODEL or an own model's denoiser gives no gradients either: for them the simplex search is used (the
   result says which method ran).
4. Held-out noise (seeds ``seed + VALIDATION_OFFSET + i``, far from the training items) measures the learned
   schedule and every fixed one, so a user sees whether it generalises.

Only deterministic walks are learned: a stochastic walk's output does not follow the teacher's from the same noise.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch

from ..noise import ItemNoise
from ..schedules import make_sigmas
from ..targets import WalkTarget
from ..walks import WALKS, WalkSpec
from .parameters import logits_from_sigmas, positions, sigmas_from_logits
from .search import Best, gradient_descent, nelder_mead

log = logging.getLogger(__name__)

VALIDATION_OFFSET = 1_000_000_007  # held-out items: seeds far from every training item's. Below 2**32: torch's
# CPU generator keeps only the low 32 bits of a seed, so seed + 2**32 + i would repeat the training noise
METHODS = ("auto", "simplex", "gradient")
# the schedules the search may start from; the fixed schedules it is compared with are the registry's defaults
STARTS: Tuple[Tuple[str, Dict[str, float]], ...] = (
    ("karras", {}), ("karras", {"rho": 3.0}), ("karras", {"rho": 5.0}), ("karras", {"rho": 10.0}),
    ("exponential", {}), ("polyexponential", {"rho": 2.0}), ("linear", {}), ("vp", {}))
FIXED = ("karras", "exponential", "polyexponential", "linear", "vp")


@dataclass(frozen=True)
class LearnSpec:
    """What to learn and how hard to try. 0 for a sigma means the target's own."""

    walk: str = "adams"
    nfe: int = 8
    options: Dict[str, float] = field(default_factory=dict)  # the walk's options (order, ...)
    sigma_min: float = 0.0
    sigma_max: float = 0.0
    teacher_walk: str = "adams"
    teacher_steps: int = 80
    train_samples: int = 256
    val_samples: int = 256
    seed: int = 0
    evaluations: int = 300  # walks of the training batch the search may spend (a gradient step counts as one)
    minutes: float = 0.0  # stop after this long (0 = no time limit)
    method: str = "auto"  # auto | simplex | gradient
    chunk: int = 0  # items walked at once (0 = all): bounds the memory of big targets

    def check(self) -> None:
        who = "learn_schedule"
        if not 1 <= int(self.nfe) <= 1000 or int(self.nfe) != self.nfe:
            raise ValueError(f"{who}: nfe={self.nfe} is not allowed; expected an integer 1..1000")
        if not 2 <= self.teacher_steps <= 10_000:
            raise ValueError(f"{who}: teacher_steps={self.teacher_steps} is not allowed; expected 2..10000")
        for name in ("train_samples", "val_samples"):
            if not 1 <= getattr(self, name) <= 1_000_000:
                raise ValueError(f"{who}: {name}={getattr(self, name)} is not allowed; expected 1..1000000")
        if self.evaluations < 0 or self.minutes < 0 or self.chunk < 0:
            raise ValueError(f"{who}: evaluations={self.evaluations}, minutes={self.minutes}, chunk={self.chunk}; "
                             "expected each >= 0")
        if self.method not in METHODS:
            raise ValueError(f"{who}: method={self.method!r} is not allowed; expected one of {', '.join(METHODS)}")
        if self.sigma_min < 0 or self.sigma_max < 0:
            raise ValueError(f"{who}: sigma_min={self.sigma_min}, sigma_max={self.sigma_max}; expected >= 0 "
                             "(0 = the target's own)")


@dataclass(frozen=True)
class LearnedSchedule:
    """A learned schedule and how it was made. Losses (``*_rms``) are the mean over items of each item's
    root-mean-square distance to the teacher's output."""

    sigmas: torch.Tensor  # [steps + 1] float64, last 0
    walk: str
    nfe: int
    steps: int
    sigma_min: float
    sigma_max: float
    target: str
    teacher: str  # e.g. "adams, karras, 80 levels"
    method: str  # "simplex" or "gradient" (or "none": one level, nothing to fit)
    train_rms: float
    val_rms: float
    fixed_train: Dict[str, float]  # registry schedule -> training RMS
    fixed_val: Dict[str, float]  # registry schedule -> held-out RMS
    start: str  # the schedule the search started from
    evaluations: int
    seconds: float
    stopped: str  # evaluations | time | converged
    options: Dict[str, float] = field(default_factory=dict)
    train_samples: int = 0
    val_samples: int = 0
    seed: int = 0

    @property
    def positions(self) -> torch.Tensor:
        """[steps] level positions in [0, 1] of log sigma between sigma_max and sigma_min."""
        return positions(self.sigmas, self.sigma_min, self.sigma_max)

    @property
    def best_fixed(self) -> Tuple[str, float]:
        """(name, held-out RMS) of the best fixed schedule."""
        name = min(self.fixed_val, key=self.fixed_val.get)
        return name, self.fixed_val[name]

    def summary(self) -> str:
        name, value = self.best_fixed
        return (f"{self.walk} at NFE {self.nfe} ({self.steps} levels) on {self.target}: held-out distance to the "
                f"teacher (mean per-item RMS) {self.val_rms:.4g} (best fixed: {name} {value:.4g}; "
                f"{value / max(self.val_rms, 1e-300):.2f}x), "
                f"training {self.train_rms:.4g}; {self.method} search, {self.evaluations} walks, {self.seconds:.0f} s")


def walk_spec(walk: Union[str, WalkSpec]) -> WalkSpec:
    return WALKS[walk] if isinstance(walk, str) else walk


def steps_within(spec: WalkSpec, nfe: int, options: Dict[str, float]) -> int:
    """The most levels whose walk makes at most ``nfe`` evaluations (>= 1)."""
    steps = 1
    while spec.nfe(steps + 1, **options) <= nfe:
        steps += 1
    return steps


class WalkBatch:
    """A walk run on a fixed batch of starting points: ``run(sigmas)`` -> outputs, chunk by chunk."""

    def __init__(self, spec: WalkSpec, model, start: torch.Tensor, seeds: Sequence[int], options: Dict[str, float],
                 chunk: int = 0):
        self.spec, self.model, self.start, self.seeds = spec, model, start, list(seeds)
        self.options = {k: v for k, v in options.items() if k in spec.options}
        self.chunk = chunk or start.shape[0]

    def run(self, sigmas: torch.Tensor) -> torch.Tensor:
        outs = []
        for lo in range(0, self.start.shape[0], self.chunk):
            hi = min(lo + self.chunk, self.start.shape[0])
            noise = ItemNoise(self.seeds[lo:hi], prefetch=False)
            outs.append(self.spec.fn(self.model, self.start[lo:hi].clone(), sigmas, noise=noise, **self.options))
        return torch.cat(outs)


def mean_square(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B] mean squared difference per item."""
    return (a - b).reshape(a.shape[0], -1).to(torch.float64).square().mean(1)


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B] root-mean-square difference per item: the loss is its mean over the items. A mean of per-item distances
    rather than of squares, so the few items a schedule sends to another mode than the teacher's do not outweigh
    all the others (their squared error is a mode distance squared)."""
    return (mean_square(a, b) + 1e-20).sqrt()


def start_noise(target: WalkTarget, count: int, seed: int, sigma_max: float) -> Tuple[torch.Tensor, list]:
    """float32 [count, *shape] walk starts (item i seeded seed + i, on the target's mean) and the seeds."""
    noise = ItemNoise.from_seed(seed, count, prefetch=False)
    x = noise.randn((count,) + tuple(target.shape)) * float(sigma_max)
    if target.start_mean is not None:
        x = x + target.start_mean.to(x)
    return x, list(noise.seeds)


def _differentiable(batch: WalkBatch, logits: torch.Tensor, lo: float, hi: float) -> bool:
    """Whether autograd gives the walk's true gradient w.r.t. the logits (tried on two items): a gradient must flow,
    and along a random direction it must agree with a central finite difference -- a denoiser that reads sigma as a
    Python number passes gradients through the walk's step but not through itself, and would mislead the descent."""
    probe = WalkBatch(batch.spec, batch.model, batch.start[:2], batch.seeds[:2], batch.options)
    z = logits.detach().clone().requires_grad_(True)

    def value(w: torch.Tensor) -> torch.Tensor:
        return probe.run(sigmas_from_logits(w, lo, hi)).to(torch.float64).square().mean()

    try:
        with torch.enable_grad():
            out = value(z)
            if not out.requires_grad:
                return False
            (grad,) = torch.autograd.grad(out, z, allow_unused=True)
        if grad is None or not bool(torch.isfinite(grad).all()):
            return False
        direction = torch.randn(z.shape, generator=torch.Generator().manual_seed(0), dtype=z.dtype)
        step = 1e-3
        with torch.no_grad():
            numeric = float(value(z.detach() + step * direction) - value(z.detach() - step * direction)) / (2 * step)
        analytic = float((grad * direction).sum())
    except RuntimeError:
        return False
    agree = abs(analytic - numeric) <= 0.05 * max(abs(numeric), abs(analytic), 1e-12)
    if not agree:
        log.info("learn_schedule: autograd's slope %.4g differs from the finite difference %.4g: not using gradients",
                 analytic, numeric)
    return agree


def learn_schedule(target: WalkTarget, spec: LearnSpec = LearnSpec(), guidance=None,
                   progress: Optional[Callable[[int, int, float], None]] = None,
                   walk: Optional[WalkSpec] = None) -> LearnedSchedule:
    """Fit the schedule of ``spec.walk`` at ``spec.nfe`` evaluations on ``target`` (see the module docstring).

    ``guidance``: a GuidanceChain the walk is run with (teacher and student alike). ``walk``: a WalkSpec to learn
    for instead of the registry's ``spec.walk`` (a walk of one's own). ``progress(evaluations, budget, best)``."""
    spec.check()
    started = time.perf_counter()
    walker = walk or walk_spec(spec.walk)
    name = spec.walk if walk is None else getattr(walk.fn, "walk_name", spec.walk)
    if walker.stochastic:
        deterministic = [n for n, s in WALKS.items() if not s.stochastic]
        raise ValueError(f"learn_schedule: walk={name!r} is stochastic: its output does not follow a teacher walk "
                         f"from the same noise; expected a deterministic walk: {', '.join(deterministic)}")
    teacher_walk = walk_spec(spec.teacher_walk)
    if teacher_walk.stochastic:
        raise ValueError(f"learn_schedule: teacher_walk={spec.teacher_walk!r} is stochastic; expected a deterministic "
                         "walk (adams is the most accurate)")
    hi = spec.sigma_max or target.sigma_max
    lo = spec.sigma_min or target.sigma_min
    if not 0 < lo <= hi or not math.isfinite(hi):
        raise ValueError(f"learn_schedule: sigma range ({lo}, {hi}) is not allowed; expected 0 < sigma_min <= "
                         "sigma_max (0 = the target's own)")
    steps = steps_within(walker, spec.nfe, spec.options)
    model = target.denoiser if guidance is None else guidance.wrap(target, hi, lo)

    train_x, train_seeds = start_noise(target, spec.train_samples, spec.seed, hi)
    val_seed = spec.seed + VALIDATION_OFFSET
    val_x, val_seeds = start_noise(target, spec.val_samples, val_seed, hi)
    teacher_sigmas = make_sigmas("karras", spec.teacher_steps, lo, hi)
    teacher_options = {k: v for k, v in spec.options.items() if k in teacher_walk.options and spec.teacher_walk == name}
    teach = lambda x, seeds: WalkBatch(teacher_walk, model, x, seeds, teacher_options, spec.chunk).run(teacher_sigmas)
    train_teacher, val_teacher = teach(train_x, train_seeds), teach(val_x, val_seeds)
    log.info("learn_schedule: teacher %s (%d levels) walked %d + %d items in %.1f s", spec.teacher_walk,
             spec.teacher_steps, spec.train_samples, spec.val_samples, time.perf_counter() - started)
    train = WalkBatch(walker, model, train_x, train_seeds, spec.options, spec.chunk)
    val = WalkBatch(walker, model, val_x, val_seeds, spec.options, spec.chunk)

    measured = {}  # (batch, schedule values) -> distance: equal schedules (polyexponential rho 1) walk once

    def rms(batch: WalkBatch, teacher: torch.Tensor, sigmas: torch.Tensor) -> float:
        key = (id(batch), tuple(round(float(v), 12) for v in sigmas))
        if key not in measured:
            with torch.no_grad():
                out = batch.run(sigmas)
            value = float(distance(out, teacher).mean())
            measured[key] = value if math.isfinite(value) else math.inf
        return measured[key]

    fixed_train = {n: rms(train, train_teacher, make_sigmas(n, steps, lo, hi)) for n in FIXED}
    starts = {f"{n}{''.join(f' {k} {v:g}' for k, v in p.items())}": make_sigmas(n, steps, lo, hi, **p)
              for n, p in STARTS}
    start_rms = {label: rms(train, train_teacher, s) for label, s in starts.items()}
    start_label = min(start_rms, key=start_rms.get)
    best_sigmas, best_rms = starts[start_label], start_rms[start_label]
    method, evaluations, stopped = "none", len(starts), "converged"
    if steps >= 2 and spec.evaluations > 0:
        logits = logits_from_sigmas(best_sigmas, lo, hi)
        free = logits[:-1]  # the slack's logit stays 0

        def schedule(z: torch.Tensor) -> torch.Tensor:
            return sigmas_from_logits(torch.cat([z, z.new_zeros(1)]), lo, hi)

        def loss(z: torch.Tensor) -> float:
            return rms(train, train_teacher, schedule(z))

        differentiable = spec.method != "simplex" and _differentiable(train, logits, lo, hi)
        if spec.method == "gradient" and not differentiable:
            raise ValueError(f"learn_schedule: method='gradient', but no gradient flows through walk {name!r} on "
                             f"{target.name} (the pack's walks and most targets run without gradients); expected "
                             "method 'auto' or 'simplex'")
        best = Best(free.clone(), loss(free))
        seconds = spec.minutes * 60 - (time.perf_counter() - started) if spec.minutes > 0 else 0.0
        if spec.minutes > 0 and seconds <= 0:
            seconds = 1e-9
        if differentiable:
            method = "gradient"

            def loss_and_grad(z):
                z = z.clone().requires_grad_(True)
                with torch.enable_grad():
                    value = distance(train.run(schedule(z)), train_teacher).mean()
                    (grad,) = torch.autograd.grad(value, z)
                return float(value.detach()), grad

            best = gradient_descent(loss_and_grad, free, best, spec.evaluations, seconds, progress=progress)
        else:
            method = "simplex"
            log.info("learn_schedule: walk %s on %s gives no gradients: derivative-free simplex search", name,
                     target.name)
            best = nelder_mead(loss, free, best, spec.evaluations, seconds, progress=progress)
        evaluations += best.evaluations + 1
        stopped = best.stopped
        if best.loss < best_rms:
            best_sigmas, best_rms = schedule(best.logits).detach(), best.loss
    val_rms = rms(val, val_teacher, best_sigmas)
    fixed_val = {n: rms(val, val_teacher, make_sigmas(n, steps, lo, hi)) for n in FIXED}
    result = LearnedSchedule(
        sigmas=best_sigmas.detach().to(torch.float64), walk=name, nfe=int(spec.nfe), steps=steps, sigma_min=lo,
        sigma_max=hi, target=target.name, teacher=f"{spec.teacher_walk}, karras, {spec.teacher_steps} levels",
        method=method, train_rms=best_rms, val_rms=val_rms, fixed_train=fixed_train, fixed_val=fixed_val,
        start=start_label, evaluations=evaluations, seconds=time.perf_counter() - started, stopped=stopped,
        options=dict(spec.options), train_samples=spec.train_samples, val_samples=spec.val_samples, seed=spec.seed)
    log.info("learn_schedule: %s", result.summary())
    return result
