"""Distances between a walk's samples and the exact target, and their finite-sample floors.

* Sliced Wasserstein-2 (Rabin et al. 2011; Bonneel et al. 2015): SW2(a, b) = sqrt(E_theta W2^2(<a, theta>,
  <b, theta>)) over unit directions theta; in 1-D with equal sample sizes W2^2 is the mean squared
  difference of the sorted projections. The expectation is a fixed set of random directions.
* Mode-weight total variation: each sample goes to the component of largest responsibility at sigma = 0;
  TV = 1/2 sum_k |fraction_k - w_k|.
* Fine-detail variance ratio: the variance of a sample's residual from its component's mean, orthogonal to
  that component's low-rank directions, per dimension, over the exact isotropic variance (1 = right amount
  of fine detail; < 1 = too smooth).
* Per-component mean and covariance error: samples are grouped by their most responsible component at
  sigma = 0; for each component k with at least two samples, the mean error is ||mean_hat_k - mu_k|| and the
  covariance error the relative Frobenius error ||Cov_hat_k - Sigma_k||_F / ||Sigma_k||_F (Cov_hat_k the
  unbiased sample covariance); both are averaged with the mixture weights w_k (renormalised over the components
  that have samples; a component with none shows in the mode-weight TV).

Two exact sample sets of the same size are not at distance 0; ``floor`` measures that distance, so a walk
is judged against what its sample size can resolve.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence, Tuple

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


def _relative_cov_error(dev: torch.Tensor, var: torch.Tensor, u: torch.Tensor) -> float:
    """||C - S||_F / ||S||_F for C = dev^T dev / (m - 1) and S = diag(var) + u u^T, without forming D x D
    matrices: ||C||^2 = ||dev dev^T||^2 / (m-1)^2, tr(C S) = (sum_i dev_i^T diag(var) dev_i + ||dev u||^2) / (m-1),
    ||S||^2 = sum var^2 + 2 sum_d var_d |u_d|^2 + ||u^T u||^2."""
    m1 = dev.shape[0] - 1
    c_sq = float((dev @ dev.T).square().sum()) / m1**2
    cs = (float((dev.square() * var).sum()) + float((dev @ u).square().sum())) / m1
    s_sq = float(var.square().sum() + 2 * (var * u.square().sum(1)).sum() + (u.T @ u).square().sum())
    return math.sqrt(max(c_sq - 2 * cs + s_sq, 0.0) / s_sq)


def component_errors(mixture: GaussianMixture, x: torch.Tensor, components: torch.Tensor) -> Tuple[float, float]:
    """(weighted mean error, weighted relative covariance error) of the samples grouped by ``components``."""
    flat = x.reshape(x.shape[0], -1).to(_F)
    mean_err = cov_err = total = 0.0
    for k in range(mixture.n_components):
        group = flat[components == k]
        if group.shape[0] < 2:
            continue
        w = float(mixture.weights[k])
        centre = group.mean(0)
        mean_err += w * float((centre - mixture.means[k]).norm())
        cov_err += w * _relative_cov_error(group - centre, mixture.variances[k], mixture.factors[k])
        total += w
    if total == 0.0:
        return float("nan"), float("nan")
    return mean_err / total, cov_err / total


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
