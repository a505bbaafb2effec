"""Refinements of classifier-free guidance: CFG rescale, adaptive projected guidance, autoguidance.

Like every term they act on the running denoised estimate D(x, sigma) (shapes [B, ...]); "per item" means
over all non-batch dimensions of one batch item.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch

from ..targets.base import WalkTarget
from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, needs_branch, per_item, register_term, weight_unused


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item inner product <a, b>, [B]."""
    return (a.flatten(1) * b.flatten(1)).sum(1)


@register_term
@dataclass(frozen=True)
class Rescale(GuidanceTerm):
    """CFG rescale (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"):

        x_rescaled = x_cfg * std(x_pos) / std(x_cfg)
        D          = phi * x_rescaled + (1 - phi) * x_cfg

    x_cfg is the running estimate -- put this term after a cfg (or apg) term -- and x_pos the target's own
    conditional prediction; std is per item. phi = 0.7 is the paper's value; phi = 0 leaves x_cfg unchanged,
    phi = 1 gives it exactly the conditional prediction's spread.

    The paper rescales the network output (a v-prediction). Here, as every term, it rescales the denoised
    estimate x0: the guided image keeps the contrast of the conditional one at every sigma, which is the
    over-exposure the rescale is meant to undo. The two agree at high sigma (where v is close to -x0 up to a
    common scale) and differ at low sigma (where v is mostly the noise estimate, so the paper's rescale fades
    out there while this one keeps acting; fade it with end_percent or the schedule if that is too strong).

    The term has no weight of its own (``weight`` must stay 1); its interval and strength schedule apply.
    """

    kind: ClassVar[str] = "rescale"
    phi: float = 0.7

    def __post_init__(self):
        super().__post_init__()
        weight_unused(self)
        if not 0.0 <= self.phi <= 1.0:
            raise invalid(self, "phi", self.phi, "0 <= phi <= 1 (0: plain cfg, 1: fully rescaled)")

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        std_pos = ctx.conditional.flatten(1).std(dim=1, correction=0)  # [B]
        std_cfg = denoised.flatten(1).std(dim=1, correction=0)  # [B]
        # a constant estimate has no spread to rescale: keep it (ratio 1) instead of dividing by zero
        ratio = torch.where(std_cfg > 0, std_pos / std_cfg.clamp_min(torch.finfo(std_cfg.dtype).tiny), 1.0)
        rescaled = denoised * per_item(ratio, denoised)
        return self.phi * rescaled + (1.0 - self.phi) * denoised


class MomentumBuffer:
    """APG's per-walk running average of the guidance update (reset by ``APG.start`` for every walk)."""

    __slots__ = ("running",)

    def __init__(self):
        self.running: Optional[torch.Tensor] = None  # [B, ...] once the first evaluation has run


@register_term
@dataclass(frozen=True)
class APG(GuidanceTerm):
    """Adaptive projected guidance (Sadat, Hilliges & Weber 2024, "Eliminating Oversaturation and Artifacts of
    High Guidance Scales in Diffusion Models"), on the denoised estimate as in the paper:

        delta     = D_c - D_u                                 (D_c the running estimate, D_u unconditional)
        delta    <- delta + beta * running;  running = delta  (reverse momentum, beta = ``momentum``)
        delta    <- delta * min(1, r / ||delta||)             (per item, r = ``norm_threshold``; 0 = off)
        delta_par = (<delta, D_c> / <D_c, D_c>) D_c,  delta_perp = delta - delta_par
        D         = D_c + (w - 1) (delta_perp + eta * delta_par)        (w = ``weight``)

    eta = 1 without momentum or threshold is exactly cfg with scale w; the paper's eta = 0 drops the parallel
    part, which is what over-saturates. The paper adds negative momentum (e.g. beta = -0.5) for its DDIM-style
    sampling; here it is off by default (0): measured on an exact class-conditional mixture at scale 4,
    beta = -0.5 threw euler_ancestral's samples off the target at 10 and 20 evaluations (the running update
    mixes updates from different fresh-noise draws and from far-apart sigmas) and adams' at 10, while
    beta = 0 kept the class precision at 1 and 87-103 % of the exact diversity. The running average is
    updated once per evaluation, so a second-order walk updates it twice per step.
    The paper tunes r for latent-diffusion models' latents; a norm over a [-1, 1] image grows with its size,
    so no size-free default exists for pixels and the threshold is off (0) by default: for an image of
    n values a threshold near 0.5 * sqrt(n) caps the update at a per-value RMS of 0.5.
    """

    kind: ClassVar[str] = "apg"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0
    eta: float = 0.0
    norm_threshold: float = 0.0
    momentum: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.eta <= 1.0:
            raise invalid(self, "eta", self.eta, "0 <= eta <= 1 (0: orthogonal part only, 1: cfg's parallel part)")
        if not (math.isfinite(self.norm_threshold) and self.norm_threshold >= 0.0):
            raise invalid(self, "norm_threshold", self.norm_threshold, "a finite value >= 0 (0 = no threshold)")
        if not -1.0 < self.momentum < 1.0:
            raise invalid(self, "momentum", self.momentum, "-1 < momentum < 1 (negative in the paper; 0 = off)")

    def check(self, target) -> None:
        needs_branch(self, target)

    def start(self, target) -> MomentumBuffer:
        return MomentumBuffer()

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: MomentumBuffer) -> torch.Tensor:
        delta = denoised - ctx.unconditional  # [B, ...]
        if self.momentum != 0.0:
            if state.running is not None:
                delta = delta + self.momentum * state.running
            state.running = delta
        if self.norm_threshold > 0.0:
            norm = delta.flatten(1).norm(dim=1)  # [B]
            scale = torch.where(norm > self.norm_threshold, self.norm_threshold / norm.clamp_min(1e-30), 1.0)
            delta = delta * per_item(scale, delta)
        energy = _dot(denoised, denoised)  # [B]
        coef = torch.where(energy > 0, _dot(delta, denoised) / energy.clamp_min(torch.finfo(energy.dtype).tiny), 0.0)
        parallel = per_item(coef, denoised) * denoised
        orthogonal = delta - parallel
        return denoised + (self.weight - 1.0) * (orthogonal + self.eta * parallel)


@register_term
@dataclass(frozen=True)
class Autoguidance(GuidanceTerm):
    """Autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself"):

        D = D_bad + w (D_c - D_bad)

    D_c is the running estimate and D_bad the denoiser of ``guide``, a weaker target of the same task (a
    smaller or less trained model, conditioned the same way), evaluated at the same x and sigma; w = ``weight``
    (2.0; w = 1 is the target alone). The guide must live in the same space with the same sample shape (a
    guide that takes a size is used at the target's size); ``check`` says so before the walk starts. The
    guide's evaluations are extra model calls, not counted in the walk's nfe.

    The guide takes part in ``==`` but not in the hash (a target holds dicts) nor the repr (the guide's name
    is shown in errors).
    """

    kind: ClassVar[str] = "autoguidance"
    weight: float = 2.0
    guide: Optional[WalkTarget] = field(default=None, hash=False, repr=False)

    def __post_init__(self):
        super().__post_init__()
        if self.guide is not None and not isinstance(self.guide, WalkTarget):
            raise invalid(self, "guide", type(self.guide).__name__, "a WALK_TARGET (the weaker model)")

    def _guide_for(self, target) -> WalkTarget:
        if self.guide is None:
            raise invalid(self, "guide", None, "a weaker target to guide with (connect a TargetDistribution)")
        guide = self.guide
        if guide.takes_size and len(target.shape) >= 2 and tuple(guide.shape) != tuple(target.shape):
            guide = guide.at_size(target.shape[-1], target.shape[-2])
        if guide.space != target.space:
            raise invalid(self, "guide", f"{guide.name} (space {guide.space!r})",
                          f"a guide in the target's space {target.space!r}")
        if tuple(guide.shape) != tuple(target.shape):
            raise invalid(self, "guide", f"{guide.name} (shape {tuple(guide.shape)})",
                          f"a guide with the target's shape {tuple(target.shape)}")
        return guide

    def check(self, target) -> None:
        self._guide_for(target)

    def start(self, target) -> WalkTarget:
        return self._guide_for(target)  # the guide at the target's size, for this walk

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: WalkTarget) -> torch.Tensor:
        bad = state.denoiser(ctx.x, ctx.sigma, **ctx.extra)
        return bad + self.weight * (denoised - bad)
