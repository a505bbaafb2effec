"""The WALK_GUIDANCE value: an ordered, immutable chain of guidance terms that wraps a denoiser.

``guided = chain.wrap(target, sigma_range)`` returns a denoiser with the target's signature, so walks
never know guidance exists (k-diffusion's CFG-denoiser pattern). Terms apply in chain order to the
running denoised estimate. Each term has

* a weight (its own meaning: the CFG scale, the energy step, ...),
* a start/end percent of the walk, converted once to a sigma interval, log-linearly over the walk's
  sigma range -- so every walk, schedule and step count uses the same sigmas (the guidance interval of
  Kynkaeaenniemi et al. 2024 falls out of it),
* a schedule of its strength over that interval (constant, linear or cosine fade): the chain blends
  ``current + strength * (term(current) - current)``, so strength 0 is "no term" for every kind of term.

ComfyUI caches node outputs and one output may feed several nodes, so ``plus`` returns a new chain;
per-walk state (APG's momentum) lives in the wrapper made by ``wrap``, never in a term.

A term with ``renoises`` (CFG++) also gives the walk the estimate to re-noise with: the wrapper then carries
``with_renoise(x, sigma) -> (denoised, renoise)``, which walks registered with ``renoise=True`` call through
walks.base.evaluate; run_walk refuses such a chain on any other walk. Chains without one are unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

import torch

STRENGTH_SCHEDULES = ("constant", "linear", "cosine")


class GuidanceContext:
    """What a term sees at one evaluation: x, sigma, the target and its raw predictions (computed lazily
    and at most once per evaluation)."""

    def __init__(self, target, x: torch.Tensor, sigma: torch.Tensor, extra: dict, conditional: torch.Tensor):
        self.target, self.x, self.sigma, self.extra = target, x, sigma, extra
        self.conditional = conditional  # the target's own (conditional) prediction, before any term
        self._unconditional: Optional[torch.Tensor] = None
        # (sigma_max, sigma_min) of the walk being guided, set by GuidanceChain.wrap: terms that act on a part of the
        # walk of their own (CFG-Zero*'s zero-init) place it with GuidanceTerm.sigma_at; None outside a wrapped walk
        self.walk_sigmas: Optional[Tuple[float, float]] = None
        # the walk's per-item seeds (seed + i), for terms that draw noise of their own (CADS); None = not known
        self.seeds: Optional[Tuple[int, ...]] = None

    @property
    def unconditional(self) -> torch.Tensor:
        if self._unconditional is None:
            branch = getattr(self.target, "unconditional", None)
            if branch is None:
                raise ValueError(f"guidance: target {self.target.name!r} has no unconditional branch")
            self._unconditional = branch(self.x, self.sigma, **self.extra)
        return self._unconditional


@dataclass(frozen=True)
class GuidanceTerm:
    """One term of the chain. Subclasses set ``kind`` and implement :meth:`apply` (and :meth:`check`,
    :meth:`start` when they need the target or per-walk state)."""

    kind: ClassVar[str] = "term"
    uses_unconditional: ClassVar[bool] = False  # reads ctx.unconditional (targets with ``paired`` batch both)
    renoises: ClassVar[bool] = False  # gives the walk a re-noising estimate (CFG++): see :meth:`renoise`
    weight: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    schedule: str = "constant"

    def __post_init__(self):
        who = f"GuidanceStep ({self.kind})"
        if not 0.0 <= self.start_percent <= 1.0 or not 0.0 <= self.end_percent <= 1.0:
            raise ValueError(f"{who}: start_percent={self.start_percent}, end_percent={self.end_percent}; "
                             "expected values in 0..1")
        if self.start_percent > self.end_percent:
            raise ValueError(f"{who}: start_percent={self.start_percent} is after end_percent={self.end_percent}; "
                             "expected start <= end")
        if self.schedule not in STRENGTH_SCHEDULES:
            raise ValueError(f"{who}: schedule={self.schedule!r}; expected one of {', '.join(STRENGTH_SCHEDULES)}")
        if not math.isfinite(self.weight):
            raise ValueError(f"{who}: weight={self.weight} must be finite")

    # -- what subclasses override
    def check(self, target) -> None:
        """Raise ValueError if the term cannot work on ``target`` (called before the walk starts)."""

    def start(self, target) -> Any:
        """Fresh per-walk state (None for stateless terms)."""
        return None

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: Any) -> torch.Tensor:
        raise NotImplementedError

    def renoise(self, ctx: GuidanceContext, denoised: torch.Tensor, state: Any) -> torch.Tensor:
        """For terms with ``renoises``: the estimate whose noise direction (x - estimate) / sigma the walk re-noises
        with, where the plain walk uses the guided estimate's own (CFG++ gives the unconditional one).
        ``denoised`` is the running estimate before this term. Called after :meth:`apply`."""
        raise NotImplementedError

    # -- shared
    @staticmethod
    def sigma_at(percent: float, sigma_max: float, sigma_min: float) -> float:
        """The sigma at ``percent`` of the walk: log-linear from sigma_max (0) to sigma_min (1)."""
        return math.exp(math.log(sigma_max) + percent * (math.log(sigma_min) - math.log(sigma_max)))

    def sigma_interval(self, sigma_max: float, sigma_min: float) -> Tuple[float, float]:
        """(sigma_hi, sigma_lo): active for sigma_lo <= sigma <= sigma_hi. Percent p maps log-linearly onto
        [sigma_max, sigma_min]; start 0 / end 1 are open-ended (the walk's first and last evaluations)."""
        hi = math.inf if self.start_percent == 0 else self.sigma_at(self.start_percent, sigma_max, sigma_min)
        lo = 0.0 if self.end_percent == 1 else self.sigma_at(self.end_percent, sigma_max, sigma_min)
        return hi, lo

    def strength(self, sigma: float, sigma_max: float, sigma_min: float) -> float:
        """The schedule's factor at ``sigma``: 1 throughout for constant; fading from 1 at the interval's
        start to 0 at its end for linear and cosine (progress measured in log sigma)."""
        if self.schedule == "constant":
            return 1.0
        hi, lo = self.sigma_interval(sigma_max, sigma_min)
        hi, lo = min(hi, sigma_max), max(lo, sigma_min)
        if hi <= lo:
            return 1.0
        t = min(max((math.log(hi) - math.log(max(sigma, 1e-30))) / (math.log(hi) - math.log(lo)), 0.0), 1.0)
        return 1.0 - t if self.schedule == "linear" else math.cos(math.pi * t / 2)


@dataclass
class GuidanceRecord:
    """Per evaluation: sigma and the norm (per item, RMS) of the change each active term made."""

    sigma: float
    norms: Dict[str, float]


@dataclass(frozen=True)
class GuidanceChain:
    """An ordered tuple of terms; the empty chain leaves the denoiser untouched."""

    terms: Tuple[GuidanceTerm, ...] = ()

    def plus(self, term: GuidanceTerm) -> "GuidanceChain":
        return GuidanceChain(self.terms + (term,))

    def __len__(self) -> int:
        return len(self.terms)

    def labels(self) -> List[str]:
        """``"1:cfg"``, ``"2:apg"``, ...: how terms are named in records."""
        return [f"{i + 1}:{t.kind}" for i, t in enumerate(self.terms)]

    def check(self, target) -> None:
        """Every term's check against ``target``: errors before any evaluation."""
        for term in self.terms:
            term.check(target)

    @property
    def renoises(self) -> bool:
        """Whether a term gives the walk a re-noising estimate (CFG++): only walks registered with
        ``renoise=True`` can use this chain (walk_core.walks.base.evaluate)."""
        return any(t.renoises for t in self.terms)

    def wrap(self, target, sigma_max: float, sigma_min: float,
             denoiser: Optional[Callable[..., torch.Tensor]] = None,
             records: Optional[List[GuidanceRecord]] = None,
             seeds: Optional[Sequence[int]] = None) -> Callable[..., torch.Tensor]:
        """The guided denoiser for one walk over [sigma_min, sigma_max].

        ``denoiser`` defaults to ``target.denoiser`` (pass a counting wrapper to count evaluations);
        ``records`` collects a :class:`GuidanceRecord` per evaluation when given; ``seeds``: the walk's per-item
        seeds, for terms that draw noise (CADS draws item i's from seed i, so item i equals a walk of its own).
        """
        base = denoiser or target.denoiser
        if not self.terms:
            return base
        self.check(target)
        intervals = [t.sigma_interval(sigma_max, sigma_min) for t in self.terms]
        states = [t.start(target) for t in self.terms]
        labels = self.labels()
        item_seeds = None if seeds is None else tuple(int(v) for v in seeds)

        paired = getattr(target, "paired", None)

        def evaluate(x, sigma, **extra):
            """(denoised, renoise): the guided estimate and the one the walk re-noises with (None = the same)."""
            s = float(sigma.reshape(-1)[0])
            active = [lo <= s <= hi for hi, lo in intervals]
            unconditional = None
            if paired is not None and any(on and t.uses_unconditional for on, t in zip(active, self.terms)):
                conditional, unconditional = paired(x, sigma, **extra)  # one batched call for both branches
            else:
                conditional = base(x, sigma, **extra)
            ctx = GuidanceContext(target, x, sigma, extra, conditional)
            ctx._unconditional = unconditional
            ctx.walk_sigmas = (sigma_max, sigma_min)
            ctx.seeds = item_seeds
            denoised, norms, renoise = conditional, {}, None
            for term, on, state, label in zip(self.terms, active, states, labels):
                if not on:
                    continue
                proposed = term.apply(ctx, denoised, state)
                strength = term.strength(s, sigma_max, sigma_min)
                new = proposed if strength == 1.0 else denoised + strength * (proposed - denoised)
                if term.renoises:  # blended as the estimate is: strength 0 re-noises with the estimate itself
                    wanted = term.renoise(ctx, denoised, state)
                    renoise = wanted if strength == 1.0 else denoised + strength * (wanted - denoised)
                if records is not None:
                    norms[label] = float((new - denoised).flatten(1).square().mean(1).sqrt().mean())
                denoised = new
            if records is not None:
                records.append(GuidanceRecord(s, norms))
            return denoised, renoise

        def guided(x, sigma, **extra):
            return evaluate(x, sigma, **extra)[0]

        # hints for walks that fit polynomials through past evaluations (adams, er_sde): the denoiser is guided (its
        # trajectory bends harder, so they keep a lower order) and where a term switches on or off it jumps
        guided.guided = True
        guided.sigma_breaks = tuple(sorted({edge for hi, lo in intervals for edge in (hi, lo)
                                            if sigma_min < edge < sigma_max}, reverse=True))
        if self.renoises:  # CFG++: walks registered with renoise=True ask for both estimates (walks.base.evaluate)
            def with_renoise(x, sigma, **extra):
                denoised, renoise = evaluate(x, sigma, **extra)
                return denoised, denoised if renoise is None else renoise

            guided.with_renoise = with_renoise
        return guided
