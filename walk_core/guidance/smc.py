"""SMC-CFG (Wang et al. 2026): classifier-free guidance with a sliding-mode correction of the guidance signal."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, needs_branch, per_item, register_term


class PreviousError:
    """Per walk: the corrected guidance error of the previous evaluation (reset by ``start``)."""

    __slots__ = ("error",)

    def __init__(self):
        self.error: Optional[torch.Tensor] = None


@register_term
@dataclass(frozen=True)
class SlidingModeCFG(GuidanceTerm):
    """Sliding-mode control CFG (Wang, Liu, Chi, Liu, Xue & Duan 2026, "CFG-Ctrl: Control-Based Classifier-Free
    Diffusion Guidance", arXiv 2603.03281).

    CFG read as a proportional controller on the error e = v_c - v_u (the conditional minus the unconditional
    velocity prediction); SMC-CFG adds a switching term that drives e onto the sliding surface
    s = (e - e_prev) + lambda e_prev:

        e   = (D_u - D_c) / t,   t = sigma / (1 + sigma)   (v_c - v_u per value; D_c the running estimate)
        s   = (e - e_prev) + lambda e_prev           (e_prev: the previous evaluation's corrected error; first: e)
        e  <- e - k sign(s)                          (element-wise switching control, gain k)
        D   = D_u - w t e                            (v = v_u + w e;  w = ``weight``)

    The paper states it on flow models' velocity predictions with lambda = 0.05, k = 0.3. Here the error is taken
    in the same units: a rectified flow x_t = (1 - t) x0 + t n walked as VE has sigma = t / (1 - t) and velocity
    v = n - x0, whose difference between the branches is (D_u - D_c) / t, so k keeps the paper's scale (the noise
    prediction's difference (D_u - D_c) / sigma vanishes at high sigma, where a constant k would swamp it).
    k = 0 is exactly CFG with scale w (and w = 1, k = 0 the conditional prediction). The previous error is kept
    per walk and updated at every evaluation (a second-order walk updates it twice per step).
    """

    kind: ClassVar[str] = "smc_cfg"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0
    lam: float = 0.05
    k: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.lam) and self.lam >= 0.0):
            raise invalid(self, "lam", self.lam, "lambda >= 0 (the sliding surface's slope; the paper's 0.05)")
        if not (math.isfinite(self.k) and self.k >= 0.0):
            raise invalid(self, "k", self.k, "a switching gain k >= 0 (0 = plain CFG; the paper's 0.3)")

    def check(self, target) -> None:
        needs_branch(self, target)

    def start(self, target) -> PreviousError:
        return PreviousError()

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: PreviousError) -> torch.Tensor:
        uncond = ctx.unconditional
        sigma = per_item(ctx.sigma.to(denoised.dtype), denoised)
        t = sigma / (1.0 + sigma)  # the flow time of sigma
        error = (uncond - denoised) / t  # v_c - v_u
        if self.k > 0.0:
            previous = error if state.error is None else state.error
            surface = (error - previous) + self.lam * previous
            error = error - self.k * torch.sign(surface)
            state.error = error
        return uncond - self.weight * t * error
