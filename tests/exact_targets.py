"""Exact mixtures shared by the statistical tests (built deterministically, no files)."""
from __future__ import annotations

import math

import torch

from rwalk.walk_core import GaussianMixture


def ring_2d() -> GaussianMixture:
    """8 modes on a circle of radius 4, weights 1..8, each elongated along the circle (rank-1 part)."""
    k = 8
    angle = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    means = torch.stack([angle.cos(), angle.sin()], 1) * 4
    tangent = torch.stack([-angle.sin(), angle.cos()], 1)
    return GaussianMixture(torch.arange(1, k + 1), means, 0.05, factors=(tangent * 0.6)[..., None])


def image_3x16x16(k: int = 3, rank: int = 3, detail: float = 0.05, direction_std=(2.0, 0.8),
                  labels=None) -> GaussianMixture:
    """An image-like mixture: distinct means, smooth low-rank variation, a small isotropic fine-detail part."""
    g = torch.Generator().manual_seed(1234)
    coarse = torch.randn(k, 3, 4, 4, generator=g, dtype=torch.float64)
    means = torch.nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=False) * 0.6
    fields = torch.randn(k * rank, 3, 4, 4, generator=g, dtype=torch.float64)
    fields = torch.nn.functional.interpolate(fields, size=(16, 16), mode="bilinear", align_corners=False)
    fields = fields / fields.flatten(1).norm(dim=1)[:, None, None, None]  # unit directions
    scales = torch.linspace(*direction_std, rank, dtype=torch.float64)  # std along each direction
    factors = (fields.reshape(k, rank, 3, 16, 16) * scales[None, :, None, None, None]).permute(0, 2, 3, 4, 1)
    return GaussianMixture(torch.arange(1, k + 1) + 1.0, means, detail**2, factors=factors, labels=labels)


def song_ermon_2d() -> GaussianMixture:
    """Song & Ermon (2019), Fig. 3: 1/5 N((-5,-5), I) + 4/5 N((5,5), I)."""
    return GaussianMixture([0.2, 0.8], [[-5.0, -5.0], [5.0, 5.0]], 1.0)


def mode_weights(mixture: GaussianMixture, x: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose most likely component (at sigma = 0) is k, [K]."""
    assigned = mixture.responsibilities(x, 0.0).argmax(1)
    return torch.bincount(assigned, minlength=mixture.n_components).double() / x.shape[0]


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * float((p - q).abs().sum())
