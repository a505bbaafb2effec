"""Any GaussianMixture as a WALK_TARGET, optionally conditioned on one class (with its unconditional
branch for guidance): the exact references the walks and guidance terms are verified against."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .base import WalkTarget
from .mixture import GaussianMixture

CLASS_LOGIT_SCALE = 30.0  # exp(-30) ~ 1e-13: the one-hot condition gives the class-conditional mixture to that


def class_condition(mixture: GaussianMixture, label: int) -> Callable[..., torch.Tensor]:
    """The ``conditioned`` entry of a class-conditional mixture target: the class enters as a condition tensor
    y = one-hot(label) over the classes [B, C], and a condition y' samples the mixture reweighted per item by
    exp(30 y'_c(k)) for component k of class c(k) -- y' = y is the class-conditional mixture (to exp(-30)), a
    noisy y' a random blend of classes. What CADS perturbs on the exact targets."""
    classes = mixture.classes()
    column = torch.tensor([classes.index(int(c)) for c in mixture.labels.tolist()])  # [K]: component -> class
    clean = torch.zeros(len(classes), dtype=torch.float64)
    clean[classes.index(int(label))] = 1.0

    def conditioned(x, sigma, transform, **extra):
        y = transform(clean.expand(x.shape[0], -1).clone())  # [B, C]
        return mixture.denoise_reweighted(x, sigma, CLASS_LOGIT_SCALE * y.to(torch.float64)[:, column])

    return conditioned


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
        conditioned=None if label is None else class_condition(mixture, label),
    )
