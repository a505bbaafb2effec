"""Momentum guidance (Liao et al. 2026): the walk's velocity extrapolated away from its own recent average."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, per_item, register_term


class VelocityAverage:
    """Per walk: the exponential moving average of the velocities seen so far (reset by ``start``)."""

    __slots__ = ("average",)

    def __init__(self):
        self.average: Optional[torch.Tensor] = None  # [B, ...] after the first evaluation


@register_term
@dataclass(frozen=True)
class MomentumGuidance(GuidanceTerm):
    """Momentum guidance (Liao, Yu, Su, Zhang, Chen & Liu 2026, "Momentum Guidance: Plug-and-Play Guidance for Flow
    Models", arXiv 2602.20360): the current velocity extrapolated away from an exponential moving average (EMA) of
    the past velocities of the same trajectory -- guidance at one evaluation per step, with no second branch:

        v    = (x - D) / sigma                     (the velocity of the probability-flow ODE in sigma, dx/dsigma)
        v'   = v + alpha (v - m)                   (alpha = ``weight``; m the EMA of the earlier evaluations' v)
        D'   = x - sigma v'  =  D - alpha sigma (v - m)
        m   <- beta m + (1 - beta) v               (beta = ``beta``; m starts at the first evaluation's v)

    The paper states it for flow models' velocity; a flow model's velocity and this one differ by the change of
    variables the pack walks flow models with (walk_core.bridge), so here it acts on the VE velocity every walk
    integrates. It is not APG's momentum: APG averages the guidance *difference* D_c - D_u with a negative
    coefficient; this averages the trajectory's own velocity and needs no unconditional branch (it also acts on
    a target without one, or after a CFG term on the guided estimate). alpha = 0 is the identity. The average is
    updated at every evaluation, so a second-order walk updates it twice per step. The defaults (alpha 0.3, beta
    0.5) are the pack's, not the paper's. The paper integrates an ODE: on a stochastic walk each step's fresh
    noise enters v and the extrapolation amplifies it (alpha 1 after CFG 4 diverged with euler_ancestral on the
    exact class mixture, docs/guidance.md), so use it with deterministic walks.
    """

    kind: ClassVar[str] = "momentum"
    weight: float = 0.3
    beta: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.weight) and self.weight >= 0.0):
            raise invalid(self, "weight", self.weight, "alpha >= 0 (0 = no guidance)")
        if not 0.0 <= self.beta < 1.0:
            raise invalid(self, "beta", self.beta, "0 <= beta < 1 (the EMA's decay; 0 = the previous velocity)")

    def start(self, target) -> VelocityAverage:
        return VelocityAverage()

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: VelocityAverage) -> torch.Tensor:
        sigma = per_item(ctx.sigma.to(denoised.dtype), denoised)  # [B, 1, ...]
        velocity = (ctx.x - denoised) / sigma
        average = velocity if state.average is None else state.average
        state.average = torch.lerp(velocity, average, self.beta)  # beta m + (1 - beta) v
        return denoised - self.weight * sigma * (velocity - average)
