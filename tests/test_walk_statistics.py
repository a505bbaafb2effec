"""Walks against exact targets: mode weights, component means and covariances.

Tolerances come from the sample size: a difference of means is compared with z_max standard errors,
a covariance with the Wishart spread of its estimate. Every walk's mode weights must be within total
variation 0.05 at >= 200 evaluations (the issue's bar; the sampling spread of the TV at n = 4000 is ~0.015).
"""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import WALKS, ItemNoise, make_sigmas, steps_for_nfe

from exact_targets import image_3x16x16, mode_weights, ring_2d, song_ermon_2d, total_variation

Z_MAX = 4.5  # two-sided p ~ 7e-6 per comparison: no false alarms over all comparisons of the file
NFE = 200
N_2D = 4000


def walk_samples(name: str, mixture, n: int, nfe: int, seed: int, sigma_min=0.002, sigma_max=80.0,
                 dtype=torch.float64, **options) -> torch.Tensor:
    spec = WALKS[name]
    options = {**spec.options, **options}
    steps = steps_for_nfe(name, nfe, **options)
    assert spec.nfe(steps, **options) <= nfe
    sigmas = make_sigmas("karras", steps, sigma_min, sigma_max)
    noise = ItemNoise.from_seed(seed, n)
    x = noise.randn((n,) + mixture.shape, dtype=dtype) * sigma_max
    return spec.fn(mixture.denoise, x, sigmas, noise=noise, **options)


@pytest.fixture(scope="module")
def ring():
    mixture = ring_2d()
    exact, _ = mixture.sample(N_2D, torch.Generator().manual_seed(99), return_components=True)
    return mixture, exact


@pytest.mark.parametrize("name", WALKS.names())
def test_ring_mode_weights_and_means(name, ring):
    mixture, exact = ring
    x = walk_samples(name, mixture, N_2D, NFE, seed=1)
    assert bool(torch.isfinite(x).all())
    assert total_variation(mode_weights(mixture, x), mixture.weights) < 0.05
    # component means: two-sample comparison with exact samples assigned by the same rule
    got = mixture.responsibilities(x, 0).argmax(1)
    ref = mixture.responsibilities(exact, 0).argmax(1)
    for k in range(mixture.n_components):
        a, b = x[got == k], exact[ref == k]
        assert len(a) > 20, f"{name}: component {k} nearly empty ({len(a)} samples)"
        se = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
        z = ((a.mean(0) - b.mean(0)).abs() / se).max().item()
        assert z < Z_MAX, f"{name}: component {k} mean is {z:.1f} standard errors from the exact one"


def test_ring_mode_weights_floor(ring):
    """The TV bar is meaningful: exact samples of the same size sit well below it."""
    mixture, exact = ring
    assert total_variation(mode_weights(mixture, exact), mixture.weights) < 0.03


@pytest.fixture(scope="module")
def image_mixture():
    return image_3x16x16()


N_IMG = 1200
# Annealed Langevin has no transport term: with steps proportional to sigma^2 it lags where sigma passes the
# fine-detail scale, keeping ~27% excess fine detail at 200 evaluations and ~5% at 1000 (measured; see
# README). It is checked at the budget where it meets the same bar.
COVARIANCE_NFE = {"langevin": 1000}


def _projected_covariance(mixture, k: int, x: torch.Tensor):
    """Sample covariance of x in the span of component k's low-rank directions, and the fine-detail
    variance per dimension left outside that span."""
    u = mixture.factors[k]  # [D, r]
    q, _ = torch.linalg.qr(u)
    centred = x.reshape(len(x), -1) - x.reshape(len(x), -1).mean(0)
    coords = centred @ q
    cov = coords.T @ coords / (len(x) - 1)
    residual = centred - coords @ q.T
    detail = residual.square().sum() / ((len(x) - 1) * (mixture.dim - q.shape[1]))
    exact = q.T @ mixture.covariance(k) @ q
    return cov, exact, float(detail)


@pytest.mark.parametrize("name", WALKS.names())
def test_image_mixture_covariances(name, image_mixture):
    mixture = image_mixture
    x = walk_samples(name, mixture, N_IMG, COVARIANCE_NFE.get(name, NFE), seed=2)
    assigned = mixture.responsibilities(x, 0).argmax(1)
    assert total_variation(mode_weights(mixture, x), mixture.weights) < 0.06
    fine = float(mixture.variances[0, 0])
    for k in range(mixture.n_components):
        xs = x[assigned == k]
        n = len(xs)
        cov, exact, detail = _projected_covariance(mixture, k, xs)
        # Wishart: E||S - Sigma||_F^2 = (tr(Sigma)^2 + tr(Sigma^2)) / (n - 1)
        spread = math.sqrt((exact.trace() ** 2 + (exact @ exact).trace()).item() / (n - 1))
        err = torch.linalg.matrix_norm(cov - exact).item()
        assert err < Z_MAX * spread, f"{name}: component {k} covariance off by {err:.3g} (spread {spread:.3g})"
        # fine detail: statistical spread is tiny here (n * D values), so allow the walk's
        # discretisation error at this budget: within 20% of the exact variance
        assert abs(detail / fine - 1) < 0.2, f"{name}: component {k} keeps {detail / fine:.0%} of the fine detail"


def test_langevin_needs_annealing():
    """Song & Ermon (2019), Fig. 3: Langevin at one small sigma keeps the initial split between the two
    modes (here ~1/2 : 1/2 from a symmetric start), while the annealed walk recovers 1/5 : 4/5."""
    mixture = song_ermon_2d()
    n = 2000
    noise = ItemNoise.from_seed(5, n)
    start = (torch.rand(n, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) - 0.5) * 16
    fixed = make_sigmas("linear", 400, 0.1, 0.1)
    stuck = WALKS["langevin"].fn(mixture.denoise, start.clone(), fixed, noise=noise)
    annealed = walk_samples("langevin", mixture, n, NFE, seed=6, sigma_min=0.01, sigma_max=20.0)
    spread = 3 * math.sqrt(0.2 * 0.8 / n)  # sd of an estimated weight, times 3
    w_stuck = mode_weights(mixture, stuck)[0].item()
    w_annealed = mode_weights(mixture, annealed)[0].item()
    assert abs(w_annealed - 0.2) < spread + 0.02, w_annealed
    assert abs(w_stuck - 0.2) > 0.15, f"fixed-sigma Langevin found weight {w_stuck:.2f}, expected it stuck near 0.5"
