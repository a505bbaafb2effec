"""Sparse replacements of softmax for attention maps: sparsemax and 1.5-entmax (for PLADIS).

alpha-entmax (Peters, Niculae & Martins 2019, "Sparse Sequence-to-Sequence Models") maps scores z to the
probabilities p_i = [(alpha - 1) z_i - tau]_+ ^ (1 / (alpha - 1)), tau chosen so that they sum to 1; alpha -> 1 is
softmax, alpha = 2 sparsemax (Martins & Astudillo 2016: the Euclidean projection of z onto the simplex). Both give
exact zeros to low scores. Each is computed exactly by sorting the scores along the last dimension and finding
the support size k (the largest k whose threshold lies below the k-th largest score).
"""
from __future__ import annotations

import torch


def _sorted_cumulative(z: torch.Tensor):
    """(scores sorted descending, 1..n broadcast along the last dimension)."""
    ordered = torch.sort(z, dim=-1, descending=True).values
    ks = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    return ordered, ks


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """sparsemax over the last dimension: p = [z - tau]_+, tau = (sum of the k largest - 1) / k."""
    z = z - z.amax(dim=-1, keepdim=True)
    ordered, ks = _sorted_cumulative(z)
    cumulative = ordered.cumsum(-1)
    support = (1 + ks * ordered > cumulative).sum(-1, keepdim=True)  # >= 1 always (k = 1 holds)
    tau = (cumulative.gather(-1, support - 1) - 1) / support.to(z.dtype)
    return (z - tau).clamp_min(0)


def entmax15(z: torch.Tensor) -> torch.Tensor:
    """1.5-entmax over the last dimension: p = [z / 2 - tau]_+ ^ 2 with sum p = 1.

    On a support of the k largest values y = z / 2, sum (y - tau)^2 = 1 gives
    tau_k = mean_k - sqrt((1 - k (meansq_k - mean_k^2)) / k); the support is the largest k with tau_k <= y_(k)."""
    y = (z - z.amax(dim=-1, keepdim=True)) / 2
    ordered, ks = _sorted_cumulative(y)
    mean = ordered.cumsum(-1) / ks
    mean_sq = ordered.square().cumsum(-1) / ks
    delta = ((1 - ks * (mean_sq - mean.square())) / ks).clamp_min(0)
    tau = mean - delta.sqrt()
    support = (tau <= ordered).sum(-1, keepdim=True)  # >= 1 always (k = 1 holds)
    tau_star = tau.gather(-1, support - 1)
    return (y - tau_star).clamp_min(0).square()


SPARSE = {"entmax15": entmax15, "sparsemax": sparsemax}
