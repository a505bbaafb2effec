"""The exact targets of the accuracy benchmark: Gaussian mixtures whose samples, responsibilities and
denoiser are known in closed form (``walk_core.targets.mixture.GaussianMixture``).

* ``ring``: 2-D, 8 modes on a circle with weights 1..8, each stretched along its tangent -- unequal
  weights and anisotropic modes are what separates a walk that finds the right modes from one that
  finds the right mass in them.
* ``image``: 3 x 16 x 16 "pictures", 12 smooth random means with unequal weights, each with a low-rank
  smooth variation (rank 6) plus a small isotropic fine-detail part -- the structure of natural images
  (a few large-scale directions, much fine texture of small variance) in a size the exact denoiser can
  afford for thousands of samples.
* ``classes``: the ``image`` mixture with a class label per component (component k in class k mod 3), sampled
  with classifier-free guidance towards class 0: the conditional branch is the exact class-0 mixture, the
  unconditional one the whole mixture (``walk_core.targets.exact_target``), so precision, diversity and
  in-class mode weights are measured against the exact conditional.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..walk_core import GaussianMixture, WalkTarget
from ..walk_core.targets import exact_target
from .fast_exact import LowRankExact

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0  # EDM's range


@dataclass(frozen=True)
class BenchTarget:
    """An exact mixture with the sigma range the walks run on.

    ``detail_variance`` is the isotropic variance of the fine-detail part (None when the target has no
    low-rank/detail split worth measuring).
    """

    key: str
    title: str
    mixture: GaussianMixture
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    detail_variance: Optional[float] = None
    label: Optional[int] = None  # guided towards this class (the mixture has labels); None = unconditional

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.mixture.shape

    @property
    def guided(self) -> bool:
        return self.label is not None

    @functools.cached_property
    def sampled(self) -> GaussianMixture:
        """The exact distribution the samples are compared to: the class-conditional one when guided."""
        return self.mixture if self.label is None else self.mixture.condition(self.label)

    @functools.cached_property
    def exact(self) -> LowRankExact:
        """Fast exact denoiser / responsibilities of the (unconditional) mixture."""
        return LowRankExact(self.mixture)

    @functools.cached_property
    def exact_sampled(self) -> LowRankExact:
        return self.exact if self.label is None else LowRankExact(self.sampled)

    @functools.cached_property
    def walk_target(self) -> WalkTarget:
        """The WALK_TARGET of the pack (``exact_target``) with the fast exact denoisers: the conditional one, and
        the unconditional branch when guided."""
        target = exact_target(self.mixture, self.label, space="pixels" if len(self.shape) == 3 else "vector",
                              sigma_min=self.sigma_min, sigma_max=self.sigma_max, name=f"bench {self.key}")
        return replace(target, denoiser=self.exact_sampled.denoise,
                       unconditional=None if self.label is None else self.exact.denoise)


def ring_target(modes: int = 8, radius: float = 4.0, variance: float = 0.05, stretch: float = 0.6) -> BenchTarget:
    """Modes on a circle of ``radius``, weight k for mode k (1..modes), isotropic ``variance`` plus a rank-1
    factor of length ``stretch`` along the tangent (so each mode is an ellipse along the ring)."""
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)  # [K, 2]
    tangent = torch.stack([-angle.sin(), angle.cos()], dim=1)  # [K, 2]
    weights = torch.arange(1, modes + 1, dtype=torch.float64)
    mixture = GaussianMixture(weights, means, variance, stretch * tangent[..., None])  # factors [K, 2, 1]
    title = (f"2-D ring: {modes} modes on a circle of radius {radius:g}, weights 1..{modes}, "
             f"variance {variance:g} + rank-1 tangent factor of length {stretch:g}")
    return BenchTarget("ring", title, mixture)


def _smooth_fields(count: int, channels: int, size: int, coarse: int, generator: torch.Generator) -> torch.Tensor:
    """[count, channels, size, size] random fields with unit RMS, smooth at the scale size/coarse."""
    low = torch.randn(count, channels, coarse, coarse, dtype=torch.float64, generator=generator)
    fields = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return fields / fields.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()


def _image_mixture(components: int, size: int, rank: int, detail: float, variation: float, seed: int,
                   labels=None) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    means = torch.tanh(0.6 * _smooth_fields(components, 3, size, 4, g))  # [K, 3, S, S]
    directions = _smooth_fields(components * rank, 3, size, 3, g)  # [K*r, 3, S, S]
    directions = directions.reshape(components, rank, 3, size, size).permute(0, 2, 3, 4, 1)  # [K, 3, S, S, r]
    factors = directions * (variation / math.sqrt(rank))
    weights = torch.arange(1, components + 1, dtype=torch.float64)
    return GaussianMixture(weights, means, detail**2, factors, labels=labels)


def image_target(components: int = 12, size: int = 16, rank: int = 6, detail: float = 0.05,
                 variation: float = 0.15, seed: int = 0) -> BenchTarget:
    """``components`` pictures [3, size, size] in roughly [-1, 1]: smooth random means (RMS 0.5), weights
    1..K, covariance U U^T + detail^2 I where U holds ``rank`` smooth directions whose total per-pixel
    variance is variation^2."""
    mixture = _image_mixture(components, size, rank, detail, variation, seed)
    title = (f"3x{size}x{size} image-like: {components} smooth random means, weights 1..{components}, "
             f"rank-{rank} smooth variation (std {variation:g}/pixel) + isotropic detail (std {detail:g})")
    return BenchTarget("image", title, mixture, detail_variance=detail**2)


def class_target(components: int = 12, size: int = 16, rank: int = 6, classes: int = 3, label: int = 0,
                 detail: float = 0.05, variation: float = 0.15, seed: int = 0) -> BenchTarget:
    """The ``image`` mixture with component k in class k mod ``classes``, guided towards class ``label``."""
    if not 0 <= label < classes <= components:
        raise ValueError(f"class_target: label={label}, classes={classes} are not allowed; expected "
                         f"0 <= label < classes <= components ({components})")
    labels = [k % classes for k in range(components)]
    mixture = _image_mixture(components, size, rank, detail, variation, seed, labels=labels)
    members = [k + 1 for k in range(components) if labels[k] == label]
    title = (f"the image-like mixture with {classes} classes (component k in class k mod {classes}), guided "
             f"towards class {label} (components of weight {', '.join(map(str, members))})")
    return BenchTarget("classes", title, mixture, detail_variance=detail**2, label=label)
