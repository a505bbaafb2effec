"""Any GaussianMixture as a WALK_TARGET, optionally conditioned on one class (with its unconditional
branch for guidance): the exact references the walks and guidance terms are verified against."""
from __future__ import annotations

from typing import Optional

from .base import WalkTarget
from .mixture import GaussianMixture


def exact_target(mixture: GaussianMixture, label: Optional[int] = None, *, space: str = "vector",
                 sigma_min: float = 0.002, sigma_max: float = 80.0, name: str = "exact mixture") -> WalkTarget:
    """``mixture`` as a target; with ``label`` it samples p(x | class) and guidance may use p(x) as the
    unconditional branch."""
    sampled = mixture if label is None else mixture.condition(label)
    return WalkTarget(
        name=name if label is None else f"{name}, class {label}",
        denoiser=sampled.denoise,
        space=space,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        shape=mixture.shape,
        exact=sampled,
        unconditional=None if label is None else mixture.denoise,
        info={"unconditional_exact": mixture},
    )
