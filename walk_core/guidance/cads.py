"""CADS (Sadat et al. 2024): condition-annealed sampling -- noise on the condition, annealed away as the walk ends."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, List, Optional

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, register_term, weight_unused

SEED_STREAM = 0x5CAD5  # CADS' noise for item i comes from its own generator seeded from seed i and this offset


class ConditionNoise:
    """Per walk: one CPU generator per item, seeded from the walk's per-item seed (made at the first evaluation)."""

    __slots__ = ("generators",)

    def __init__(self):
        self.generators: Optional[List[torch.Generator]] = None

    def draw(self, like: torch.Tensor, seeds) -> torch.Tensor:
        """Standard normal noise shaped like ``like`` [B, ...], item b from generator b."""
        if self.generators is None:
            seeds = seeds if seeds is not None else range(like.shape[0])
            self.generators = [torch.Generator().manual_seed((int(s) + SEED_STREAM) % (2 ** 63)) for s in seeds]
        if len(self.generators) != like.shape[0]:
            raise ValueError(f"GuidanceStep (cads): the walk's batch changed from {len(self.generators)} to "
                             f"{like.shape[0]} items; expected one batch per walk")
        rows = [torch.randn(like.shape[1:], generator=g, dtype=torch.float64) for g in self.generators]
        return torch.stack(rows).to(device=like.device, dtype=like.dtype)


@register_term
@dataclass(frozen=True)
class CADS(GuidanceTerm):
    """Condition-annealed sampling (Sadat, Buhmann, Bradley, Hilliges & Weber 2024, "CADS: Unleashing the Diversity
    of Diffusion Models through Condition-Annealed Sampling", ICLR). The conditional prediction is made with a
    noisy condition, the noise annealed away as the walk proceeds:

        y'  = sqrt(gamma(t)) y + s sqrt(1 - gamma(t)) n,     n ~ N(0, I) fresh at every evaluation, per item
        y'  <- psi * rescaled(y') + (1 - psi) y',            rescaled: y' with y's own mean and std (per item)
        gamma(t) = 1 for t <= tau1, (tau2 - t) / (tau2 - tau1) between, 0 for t >= tau2

    t is the walk's progress as the paper's diffusion time, 1 at the walk's first sigma and 0 at its last,
    log-linear in sigma as every term's percent is (t = 1 - percent). s = ``noise_scale``, psi = ``psi``. The term
    replaces the conditional part of the running estimate with the noisy-condition prediction,
    D <- D + (D_c(y') - D_c(y)) -- put it first, before CFG, which then extrapolates from it. It needs a target
    whose condition is a tensor it can reach (``WalkTarget.conditioned``: the exact class mixtures, where the class
    is a one-hot condition); others are refused. Each evaluation where it acts costs one more conditional
    prediction. Item i's noise comes from the walk's seed i, so an item remade alone with its seed is the same.
    Defaults: the paper's tau1 0.6, tau2 0.9, s 0.25, psi 1. The term has no weight of its own (``weight`` must
    stay 1); noise_scale 0 is the identity (up to the rescale, which then leaves y unchanged).
    """

    kind: ClassVar[str] = "cads"
    tau1: float = 0.6
    tau2: float = 0.9
    noise_scale: float = 0.25
    psi: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        weight_unused(self)
        for name in ("tau1", "tau2"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise invalid(self, name, getattr(self, name), "a walk time in 0..1 (1 = the start, pure noise)")
        if not (math.isfinite(self.noise_scale) and self.noise_scale >= 0.0):
            raise invalid(self, "noise_scale", self.noise_scale, "s >= 0 (0 = no noise on the condition)")
        if not 0.0 <= self.psi <= 1.0:
            raise invalid(self, "psi", self.psi, "0 <= psi <= 1 (the rescale's share)")

    def check(self, target) -> None:
        if self.tau1 > self.tau2:  # checked before the walk, not on construction (widgets are set one at a time)
            raise invalid(self, "tau1", self.tau1,
                          f"tau1 <= tau2={self.tau2} (gamma falls from 1 at tau1 to 0 at tau2)")
        if getattr(target, "conditioned", None) is None:
            raise ValueError(
                f"GuidanceStep (cads): target {target.name!r} has no condition tensor the term can reach; CADS needs "
                "a class chosen on a mixture target (TargetDistributionMixture's class, or an exact class mixture). "
                "A MODEL target's prompts are prepared inside ComfyUI's sampling and are not reachable here")

    def start(self, target) -> ConditionNoise:
        return ConditionNoise()

    def gamma(self, t: float) -> float:
        """The paper's piecewise-linear schedule gamma(t): 1 (clean condition) near the end, 0 near the start."""
        if t <= self.tau1:
            return 1.0
        if t >= self.tau2:
            return 0.0
        return (self.tau2 - t) / (self.tau2 - self.tau1)

    def time(self, sigma: float, walk_sigmas) -> float:
        """Diffusion time t in [0, 1] of ``sigma``: 1 at the walk's sigma_max, 0 at its sigma_min (log-linear)."""
        hi, lo = walk_sigmas
        if hi <= lo:
            return 0.0
        return min(max((math.log(max(sigma, 1e-30)) - math.log(lo)) / (math.log(hi) - math.log(lo)), 0.0), 1.0)

    def perturb(self, y: torch.Tensor, gamma: float, noise: torch.Tensor) -> torch.Tensor:
        """The paper's y' from the clean condition y [B, ...] and standard noise like it (rescale included)."""
        noisy = math.sqrt(gamma) * y + self.noise_scale * math.sqrt(1.0 - gamma) * noise
        if self.psi == 0.0:
            return noisy
        flat, clean = noisy.flatten(1), y.flatten(1)
        std = flat.std(1, correction=0).clamp_min(torch.finfo(flat.dtype).tiny)
        rescaled = (flat - flat.mean(1, keepdim=True)) / std[:, None] * clean.std(1, correction=0)[:, None] \
            + clean.mean(1, keepdim=True)
        return (self.psi * rescaled + (1.0 - self.psi) * flat).reshape(y.shape)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: ConditionNoise) -> torch.Tensor:
        s = float(ctx.sigma.reshape(-1)[0])
        walk = ctx.walk_sigmas or (s, s)
        gamma = self.gamma(self.time(s, walk))
        if gamma == 1.0:  # the clean condition: the prediction is the conditional one
            return denoised

        def transform(y: torch.Tensor) -> torch.Tensor:
            return self.perturb(y, gamma, state.draw(y, ctx.seeds))

        noisy = ctx.target.conditioned(ctx.x, ctx.sigma, transform, **ctx.extra)
        return denoised + (noisy - ctx.conditional)
