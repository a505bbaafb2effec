"""Sliding-window guidance (Kaiser, Adaloglou & Kollmann 2024, "The Unreasonable Effectiveness of Guidance for
Diffusion Models"; Adaloglou et al. 2025, "Guiding a diffusion model using sliding windows").

The guiding model is the model itself with a restricted receptive field: it denoises overlapping crops
(windows) of the input separately and the crops' estimates are stitched back, averaged where they overlap.
Such a model sees no long-range structure, so extrapolating away from it up-weights long-range spatial
dependencies (global composition), without a prompt or class:

    D_swg = stitch(D_c(crop_k(x)))                  windows of ``window`` x the latent's size per side, at the
                                                     four corners (a 2 x 2 grid that covers every position)
    D    <- D + w (D_c - D_swg)                                                        (w = ``weight``)

It evaluates the conditional prompt on four crops per step while active (each ``window``^2 of the full size).
A window of 1 is the full picture: D_swg = D_c and the term does nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Tuple

import torch

from .chain import GuidanceContext, GuidanceTerm
from .perturbed import Perturbation, needs_insides
from .terms import invalid, register_term

MIN_WINDOW, MAX_WINDOW = 0.25, 1.0


def window_starts(size: int, window: int) -> List[int]:
    """Start offsets of the windows along one axis: the two ends (one window when it covers the axis)."""
    return [0] if window >= size else [0, size - window]


def windows(height: int, width: int, fraction: float) -> Tuple[int, int, List[Tuple[int, int]]]:
    """(window height, window width, [(top, left), ...]) for a latent of ``height`` x ``width``."""
    wh, ww = max(1, round(height * fraction)), max(1, round(width * fraction))
    return wh, ww, [(t, l) for t in window_starts(height, wh) for l in window_starts(width, ww)]


@register_term
@dataclass(frozen=True)
class SWG(GuidanceTerm):
    """Sliding-window guidance: guides away from the model's own estimate made on overlapping crops (a model that
    cannot see the whole picture); see the module docstring."""

    kind: ClassVar[str] = "swg"
    weight: float = 1.0
    window: float = 0.75

    def __post_init__(self):
        super().__post_init__()
        if not MIN_WINDOW <= self.window <= MAX_WINDOW:
            raise invalid(self, "window", self.window,
                          f"{MIN_WINDOW} <= window <= {MAX_WINDOW} (the crop's side as a fraction of the latent's)")

    def check(self, target) -> None:
        needs_insides(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        x = ctx.x  # [B, C, h, w]
        wh, ww, starts = windows(x.shape[-2], x.shape[-1], self.window)
        if len(starts) == 1 or self.weight == 0.0:
            return denoised
        plain = Perturbation("plain", term=self.kind)
        total = torch.zeros_like(denoised)
        count = torch.zeros_like(denoised[:1, :1])  # [1, 1, h, w]: windows covering each position
        for top, left in starts:
            crop = x[..., top:top + wh, left:left + ww]
            total[..., top:top + wh, left:left + ww] += ctx.target.perturbed(crop, ctx.sigma, plain, **ctx.extra)
            count[..., top:top + wh, left:left + ww] += 1
        return denoised + self.weight * (ctx.conditional - total / count)
