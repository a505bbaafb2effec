"""Distances between a walk's samples and the exact target, and their finite-sample floors.

* Sliced Wasserstein-2 (Rabin et al. 2011; Bonneel et al. 2015): SW2(a, b) = sqrt(E_theta W2^2(<a, theta>,
  <b, theta>)) over unit directions theta; in 1-D with equal sample sizes W2^2 is the mean squared
  difference of the sorted projections. The expectation is a fixed set of random directions.
* Mode-weight total variation: each sample goes to the component of largest responsibility at sigma = 0;
  TV = 1/2 sum_k |fraction_k - w_k|.
* Fine-detail variance ratio: the variance of a sample's residual from its component's mean, orthogonal to
  that component's low-rank directions, per dimension, over the exact isotropic variance (1 = right amount
  of fine detail; < 1 = too smooth).

Two exact sample sets of the same size are not at distance 0; ``floor`` measures that distance, so a walk
is judged against what its sample size can resolve.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import torch

from ..walk_core import GaussianMixture

_F = torch.float64


def random_directions(dim: int, count: int, seed: int) -> torch.Tensor:
    """[count, dim] unit vectors, uniform on the sphere, from their own generator."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(count, dim, dtype=_F, generator=g)
    return theta / theta.norm(dim=1, keepdim=True)


def sliced_w2(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """SW2 between sample sets a, b [n, ...] of equal size along ``directions`` [L, D]."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"sliced_w2: sample sizes differ ({a.shape[0]} vs {b.shape[0]}); expected equal sizes")
    pa = a.reshape(a.shape[0], -1).to(_F) @ directions.T  # [n, L]
    pb = b.reshape(b.shape[0], -1).to(_F) @ directions.T
    w2_sq = (pa.sort(dim=0).values - pb.sort(dim=0).values).square().mean(dim=0)  # [L]
    return math.sqrt(float(w2_sq.mean()))


def assign(mixture: GaussianMixture, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """[n] index of the component of largest responsibility at sigma = 0."""
    return torch.cat([mixture.responsibilities(part, 0.0).argmax(dim=-1) for part in x.split(chunk)])


def mode_weight_tv(mixture: GaussianMixture, x: torch.Tensor, components: torch.Tensor | None = None) -> float:
    """1/2 sum_k |fraction of samples assigned to k - w_k|."""
    components = assign(mixture, x) if components is None else components
    fraction = torch.bincount(components, minlength=mixture.n_components).to(_F) / x.shape[0]
    return 0.5 * float((fraction - mixture.weights).abs().sum())


def detail_variance_ratio(mixture: GaussianMixture, x: torch.Tensor, detail_variance: float,
                          components: torch.Tensor | None = None) -> float:
    """Mean per-dimension variance of the residual orthogonal to the assigned component's low-rank
    directions, over ``detail_variance`` (1 for exact samples)."""
    components = assign(mixture, x) if components is None else components
    basis = torch.linalg.qr(mixture.factors).Q  # [K, D, r] orthonormal columns spanning each U_k
    resid = x.reshape(x.shape[0], -1).to(_F) - mixture.means[components]  # [n, D]
    q = basis[components]  # [n, D, r]
    along = torch.einsum("nd,ndr->nr", resid, q)
    perp = resid - torch.einsum("nr,ndr->nd", along, q)
    free = mixture.dim - mixture.rank
    return float(perp.square().sum(dim=1).mean()) / free / detail_variance


@dataclass(frozen=True)
class Floor:
    """A metric between independent exact sample sets: mean and standard deviation over repeats."""

    mean: float
    sd: float

    def __str__(self) -> str:
        return f"{self.mean:.3g} ± {self.sd:.2g}"


def exact_samples(mixture: GaussianMixture, n: int, seed: int) -> torch.Tensor:
    """[n, *shape] float64 exact samples from their own generator."""
    return mixture.sample(n, generator=torch.Generator().manual_seed(seed))


def summarize(values: Sequence[float]) -> Floor:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Floor(statistics.fmean(values), sd)
