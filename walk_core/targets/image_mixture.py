"""A mixture target made from pictures: the exact target users can put in the editor.

Component k is a Gaussian around picture k (a built-in pattern, or an image of the user's) with
smooth large-scale variation (a low-rank part made of blurred random fields) and fine per-pixel
detail (an isotropic part). Its denoiser is exact, so what a walk does to it can be seen and measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .base import WalkTarget
from .exact import class_condition
from .mixture import GaussianMixture
from .patterns import PATTERNS, pattern

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0  # EDM's range for [-1, 1] pixels
VARIATION_RANK = 4
MIN_DETAIL = 1e-3  # the isotropic std never goes below this (keeps every covariance invertible)


@dataclass(frozen=True)
class ImageMixtureSpec:
    """How to build the mixture at any size. ``images`` are [K, 3, H, W] in [0, 1] or None (patterns)."""

    images: Optional[torch.Tensor] = None
    weights: Optional[Tuple[float, ...]] = None
    detail: float = 0.05  # std of the fine per-pixel part, in [-1, 1] pixel units
    variation: float = 0.15  # std of the smooth large-scale part along each of its directions
    structure_seed: int = 0  # seeds the smooth variation fields (not the walk)
    spread_scales: Optional[Tuple[float, ...]] = None  # per-component factor on detail and variation
    labels: Optional[Tuple[str, ...]] = None  # class name per component (None: each its own name)
    condition: str = ""  # the class to sample ("" = all: unconditional, no CFG branch)

    def n_components(self) -> int:
        return len(PATTERNS) if self.images is None else int(self.images.shape[0])

    def class_names(self) -> Tuple[str, ...]:
        """The class of each component: ``labels``, else the pattern names / image indices."""
        if self.labels is not None:
            return self.labels
        return tuple(PATTERNS) if self.images is None else tuple(str(i) for i in range(self.n_components()))


def parse_labels(text: str, k: int, who: str = "labels") -> Optional[Tuple[str, ...]]:
    """'' -> None (each component its own class); 'warm, warm, cool' -> one name per component."""
    text = (text or "").strip()
    if not text:
        return None
    names = tuple(t.strip() for t in text.split(","))
    if len(names) != k or any(not n for n in names):
        raise ValueError(f"{who}={text!r}: expected {k} non-empty class names (one per component) or empty")
    return names


def parse_per_component(text: str, k: int, who: str = "weights") -> Optional[Tuple[float, ...]]:
    """'' -> None (all equal); '1, 2, 3' -> positive floats, one per component (the count must equal ``k``)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        values = tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())
    except ValueError:
        raise ValueError(f"{who}={text!r} is not a comma-separated list of numbers") from None
    if len(values) != k or any(not v > 0 for v in values):
        raise ValueError(f"{who}={text!r}: expected {k} positive numbers (one per component) or empty for all equal")
    return values


def _means(spec: ImageMixtureSpec, width: int, height: int) -> torch.Tensor:
    if spec.images is None:
        pics = torch.stack([pattern(name, width, height) for name in PATTERNS])
    else:
        pics = spec.images.float()
        if pics.shape[-2:] != (height, width):
            pics = F.interpolate(pics, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return pics.clamp(0, 1) * 2 - 1  # [K, 3, H, W] in [-1, 1]


def _variation_fields(k: int, width: int, height: int, seed: int) -> torch.Tensor:
    """[K, 3, H, W, r] smooth unit-RMS random fields (4x4 noise upsampled), one set per component."""
    g = torch.Generator().manual_seed(int(seed))
    coarse = torch.randn(k * VARIATION_RANK, 3, 4, 4, generator=g)
    fields = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    fields = fields / fields.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return fields.reshape(k, VARIATION_RANK, 3, height, width).permute(0, 2, 3, 4, 1)


def build_mixture(spec: ImageMixtureSpec, width: int, height: int) -> GaussianMixture:
    k = spec.n_components()
    means = _means(spec, width, height)
    weights = spec.weights or (1.0,) * k
    scales = torch.tensor(spec.spread_scales or (1.0,) * k, dtype=torch.float64)  # [K]
    detail = (spec.detail * scales).clamp_min(MIN_DETAIL)
    factors = None
    if spec.variation > 0:
        # scaled so that the smooth part's variance per pixel is (variation * scale_k)^2
        scale = spec.variation * scales / VARIATION_RANK**0.5
        factors = _variation_fields(k, width, height, spec.structure_seed) * scale[:, None, None, None, None]
    names = spec.class_names()
    ids = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return GaussianMixture(weights, means, detail**2, factors, labels=[ids[n] for n in names])


def image_mixture_target(spec: ImageMixtureSpec, width: int, height: int) -> WalkTarget:
    """A sized WALK_TARGET over [3, height, width] pixels whose ``resize`` rebuilds it at another size."""
    if width < 1 or height < 1:
        raise ValueError(f"image_mixture_target: size {width}x{height} is not allowed; expected >= 1x1")
    mixture = build_mixture(spec, width, height)
    name = f"mixture of {spec.n_components()} pictures"
    unconditional = conditioned = None
    sampled = mixture
    if spec.condition:
        names = list(dict.fromkeys(spec.class_names()))
        if spec.condition not in names:
            raise ValueError(f"TargetDistributionMixture: class={spec.condition!r} is not a class of this mixture; "
                             f"expected one of: {', '.join(names)} (or empty for all)")
        sampled = mixture.condition(names.index(spec.condition))
        unconditional = mixture.denoise
        conditioned = class_condition(mixture, names.index(spec.condition))
        name += f", class {spec.condition!r}"
    return WalkTarget(
        name=name,
        denoiser=sampled.denoise,
        space="pixels",
        sigma_min=SIGMA_MIN,
        sigma_max=SIGMA_MAX,
        shape=(3, height, width),
        resize=lambda w, h: image_mixture_target(spec, w, h),
        exact=sampled,
        unconditional=unconditional,
        conditioned=conditioned,
        info={"unconditional_exact": mixture, "components": spec.n_components(),
              "source": "patterns" if spec.images is None else "images",
              # walk state copies of working memory (walk_core.limits): a mean and low-rank factors per
              # component, and the per-component residuals of the exact denoiser (~80 each, measured on the CPU)
              "memory_factor": 80.0 * spec.n_components()},
    )
