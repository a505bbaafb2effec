"""Dynamic thresholding of the denoised estimate for pixel targets."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, per_item, register_term, weight_unused


def row_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """The q-quantile of each row of ``values`` [B, N] -> [B], interpolated linearly between order statistics
    (as ``torch.quantile``, which refuses large inputs; ``kthvalue`` has no size limit)."""
    n = values.shape[1]
    position = q * (n - 1)
    lo = min(int(math.floor(position)), n - 1)
    frac = position - lo
    below = values.kthvalue(lo + 1, dim=1).values
    if frac == 0.0:
        return below
    above = values.kthvalue(min(lo + 2, n), dim=1).values
    return below + frac * (above - below)


@register_term
@dataclass(frozen=True)
class DynamicThreshold(GuidanceTerm):
    """Dynamic thresholding (Saharia et al. 2022, "Photorealistic Text-to-Image Diffusion Models with Deep
    Language Understanding" (Imagen)):

        s  = max(quantile_p(|x0|), 1)      (per item, p = ``percentile``)
        x0 <- clamp(x0, -s, s) / s

    An estimate already in [-1, 1] is unchanged; one pushed past it (by strong guidance) is pulled back into
    [-1, 1] rather than clipped flat. Pixel targets only (walk tensors in [-1, 1]). The term has no weight of
    its own (``weight`` must stay 1); its interval and strength schedule apply.
    """

    kind: ClassVar[str] = "dynamic_threshold"
    percentile: float = 0.995

    def __post_init__(self):
        super().__post_init__()
        weight_unused(self)
        if not 0.0 < self.percentile <= 1.0:
            raise invalid(self, "percentile", self.percentile, "a fraction 0 < percentile <= 1 (0.995 = 99.5th)")

    def check(self, target) -> None:
        if target.space != "pixels":
            raise ValueError(
                f"GuidanceStep ({self.kind}): target {target.name!r} lives in space {target.space!r}; "
                "dynamic thresholding needs a target in space 'pixels' (values in [-1, 1])"
            )

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        s = row_quantile(denoised.flatten(1).abs(), self.percentile).clamp_min(1.0)  # [B]
        s = per_item(s, denoised)
        return torch.maximum(torch.minimum(denoised, s), -s) / s
