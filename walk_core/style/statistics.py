"""Per-layer style statistics of feature maps F [B, C, H, W] and their normalised distances.

gram -- G = F F^T / (C H W) (Gatys et al. 2016), [B, C, C]; translation-invariant up to borders.
mean_std -- channel means and standard deviations (the AdaIN statistics, Huang & Belongie 2017), [B, C] each.
sliced_wasserstein -- the quantile functions of F projected onto K fixed random unit directions
    (sliced Wasserstein distance, Heitz et al. 2021), [B, K, Q]: in 1-D the W2 distance is the L2 distance
    between quantile functions, and the weighted average of quantile functions is the W2 barycentre.

Every distance is relative to the reference's own magnitude (||s - s_ref||^2 / ||s_ref||^2), so layers and
encoders with very different feature scales weigh alike.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch

STATISTICS = ("gram", "mean_std", "sliced_wasserstein", "all")
KINDS = {"gram": ("gram",), "mean_std": ("mean", "std"), "sliced_wasserstein": ("swd",),
         "all": ("gram", "mean", "std", "swd")}
PROJECTIONS = 32  # K directions per layer
QUANTILES = 32  # Q levels of each quantile function
EPS = 1e-8


def projections(channels: int, layer: int, seed: int) -> torch.Tensor:
    """K fixed random unit directions [C, K] for one layer, from (seed, layer)."""
    g = torch.Generator().manual_seed(int(seed) * 1000 + layer)
    p = torch.randn(channels, PROJECTIONS, generator=g)
    return p / p.norm(dim=0, keepdim=True)


def quantiles(values: torch.Tensor, q: int = QUANTILES) -> torch.Tensor:
    """values [..., N] -> the empirical quantile function at levels (j + 0.5) / q, [..., q]; differentiable."""
    ordered, _ = values.sort(dim=-1)
    n = ordered.shape[-1]
    pos = ((torch.arange(q, dtype=values.dtype, device=values.device) + 0.5) / q * n - 0.5).clamp(0, n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo.to(values.dtype)
    return ordered[..., lo] * (1 - frac) + ordered[..., hi] * frac


def layer_statistics(feature: torch.Tensor, kinds: Tuple[str, ...], projection: torch.Tensor | None
                     ) -> Dict[str, torch.Tensor]:
    """The statistics ``kinds`` of one layer's features [B, C, H, W], each with a leading batch dimension."""
    b, c = feature.shape[:2]
    flat = feature.flatten(2)  # [B, C, N]
    out = {}
    if "gram" in kinds:
        out["gram"] = flat @ flat.transpose(1, 2) / (c * flat.shape[2])  # [B, C, C]
    if "mean" in kinds:
        out["mean"] = flat.mean(2)  # [B, C]
    if "std" in kinds:
        out["std"] = (flat.var(2, unbiased=False) + EPS).sqrt()  # [B, C]
    if "swd" in kinds:
        projected = projection.t().to(flat) @ flat  # [B, K, N]
        out["swd"] = quantiles(projected)  # [B, K, Q]
    return out


def statistics_of(features: List[torch.Tensor], statistics: str, proj: Dict[int, torch.Tensor]
                  ) -> Dict[str, torch.Tensor]:
    """All layers: keys ``{kind}.{layer}`` -> [B, ...]."""
    out = {}
    for layer, feature in enumerate(features):
        for kind, value in layer_statistics(feature, KINDS[statistics], proj.get(layer)).items():
            out[f"{kind}.{layer}"] = value
    return out


def relative_distance(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """||value_b - reference||^2 / ||reference||^2 per item: value [B, ...], reference [...] -> [B]."""
    diff = (value - reference).flatten(1).square().sum(1)
    return diff / (reference.square().sum() + EPS)
