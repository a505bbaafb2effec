"""Content guidance for the patch target (photo style transfer without weights).

Image Analogies (Hertzmann et al. 2001) picks, for every output pixel, the reference patch that matches both
what has been synthesised so far and the *luminance structure* of the content picture at that place, after
the content's luminance is remapped to the reference's mean and spread. Here that second match is a prior on
the patch posterior: each bank patch's log-weight gains

    -content_weight * |L_content(patch at the pixel) - L_reference(bank patch)|^2_w / (2 v)

with L the luminance patch (Gaussian-windowed like the colour patches) and v the references' luminance
variance per pixel. It does not depend on sigma: at high sigma it decides the layout (so the output keeps the
content's structure), at low sigma the noisy picture itself dominates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
import torch.nn.functional as F

from .bank import patches, principal_basis, window
from .pyramid import pyramid

LUMA = (0.299, 0.587, 0.114)
LUMA_DIMS = 16
FLOOR = 0.25  # the content's luminance is trusted to about half the references' luminance std


def luminance(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 1, H, W]."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@dataclass(frozen=True)
class ContentLevel:
    query: torch.Tensor  # [N, k]: the content's luminance patches at this level of the output, PCA coords
    bank: torch.Tensor  # [M, k]: the references' luminance patches, same basis
    bank_sq: torch.Tensor  # [M]
    weight: float  # content_weight
    var: float  # the references' luminance variance per pixel at this level

    def scale(self, sigma: float) -> float:
        """The content term's weight at the level's noise std ``sigma``: content_weight * (1 / (FLOOR v) +
        1 / sigma^2). The first part sets the layout at high sigma (where the colour term is weak); the second
        keeps the content's say, in the colour term's units, as the picture sharpens."""
        return self.weight * (1.0 / (FLOOR * self.var) + 1.0 / max(sigma, 1e-8) ** 2)


    def to(self, device) -> "ContentLevel":
        return ContentLevel(self.query.to(device), self.bank.to(device), self.bank_sq.to(device), self.weight,
                            self.var)


@dataclass(frozen=True)
class ContentGuide:
    levels: List[ContentLevel]

    def to(self, device) -> "ContentGuide":
        return ContentGuide([level.to(device) for level in self.levels])


def content_guide(content: torch.Tensor, reference_pyramid: List[torch.Tensor], sizes: List[int], width: int,
                  height: int, depth: int, periodic: bool, weight: float) -> ContentGuide:
    """The content term of every level, for an output of ``width`` x ``height``; ``sizes``: each level's patch
    side (the colour bank's)."""
    content = F.interpolate(content.float(), size=(height, width), mode="bilinear", antialias=True,
                            align_corners=False)
    ref_luma = luminance(reference_pyramid[0])
    mean, std = ref_luma.mean(), ref_luma.std().clamp_min(1e-3)
    luma = luminance(content)
    luma = (luma - luma.mean()) / luma.std().clamp_min(1e-3) * std + mean  # remapped to the references'
    content_pyr = pyramid(luma, depth, periodic)
    out = []
    for level in range(depth + 1):
        p = sizes[level]
        sqrt_w = window(p, luma).sqrt()
        bank = patches(luminance(reference_pyramid[level]), p, False).reshape(-1, p * p) * sqrt_w
        query = patches(content_pyr[level], p, periodic)[0] * sqrt_w
        centre = bank.mean(0)
        basis = principal_basis(bank - centre, LUMA_DIMS)
        b = (bank - centre) @ basis
        var = float(luminance(reference_pyramid[level]).var().clamp_min(1e-6))
        out.append(ContentLevel((query - centre) @ basis, b, b.square().sum(1), weight, var))
    return ContentGuide(out)
