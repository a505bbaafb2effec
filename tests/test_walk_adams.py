"""The Adams walk: its quadrature weights, its order of convergence, and the fine detail it keeps at 10
evaluations where first-order walks lose it."""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import WALKS, ItemNoise, make_sigmas
from rwalk.walk_core.walks.adams import adams_weights

from exact_targets import image_3x16x16


def _integral_of_lambda_power(sigma: float, sigma_next: float, power: int) -> float:
    """integral_sigma^sigma_next (-log s)^power ds in closed form (power 0 or 1)."""
    if power == 0:
        return sigma_next - sigma
    antiderivative = lambda s: s - s * math.log(s)  # d/ds (s - s log s) = -log s
    return antiderivative(sigma_next) - antiderivative(sigma)


@pytest.mark.parametrize("nodes", [[4.0], [9.0, 4.0], [20.0, 9.0, 4.0], [50.0, 20.0, 9.0, 4.0]])
def test_weights_integrate_polynomials_in_log_sigma_exactly(nodes):
    sigma, sigma_next = nodes[-1], 0.7
    weights = adams_weights(sigma, sigma_next, nodes)
    lambdas = [-math.log(s) for s in nodes]
    for power in range(min(len(nodes), 2)):  # the basis reproduces every polynomial of degree < len(nodes)
        quadrature = sum(w * lam**power for w, lam in zip(weights, lambdas))
        assert quadrature == pytest.approx(_integral_of_lambda_power(sigma, sigma_next, power), rel=1e-12)


def test_order_one_is_the_euler_walk():
    mixture = image_3x16x16()
    x = ItemNoise.from_seed(3, 4).randn((4,) + mixture.shape) * 80.0
    sigmas = make_sigmas("karras", 12, 0.002, 80.0)
    ours = WALKS["adams"].fn(mixture.denoise, x, sigmas, order=1)
    euler = WALKS["euler"].fn(mixture.denoise, x, sigmas)
    assert torch.allclose(ours, euler, rtol=1e-5, atol=1e-5)  # the same method; float32 rounding differs


class _Gaussian:
    """D(x, sigma) of N(0, c): its probability-flow ODE ends at sqrt(c / (c + sigma_max^2)) x."""

    c = 1.0

    def __call__(self, x, sigma):
        s2 = sigma.reshape(-1, 1) ** 2
        return self.c / (self.c + s2) * x


@pytest.mark.parametrize("order", [1, 2, 3])
def test_error_falls_at_the_order_of_the_method(order):
    x = torch.linspace(-2.0, 2.0, 5, dtype=torch.float64).reshape(5, 1) * 80.0
    exact = math.sqrt(1.0 / (1.0 + 80.0**2)) * x
    errors = []
    for steps in (8, 16, 32):
        sigmas = make_sigmas("exponential", steps, 0.002, 80.0)
        out = WALKS["adams"].fn(_Gaussian(), x.clone(), sigmas, order=order)
        errors.append(float((out - exact).abs().max()))
    for coarse, fine in zip(errors, errors[1:]):
        assert coarse / fine > 0.8 * 2**order, f"order {order}: errors {errors} do not fall as 2^order per halving"


def _detail_ratio(mixture, x: torch.Tensor) -> float:
    """Variance of the residual orthogonal to the assigned component's low-rank directions over the exact
    isotropic variance (1 = the right amount of fine detail)."""
    components = mixture.responsibilities(x, 0.0).argmax(1)
    basis = torch.linalg.qr(mixture.factors).Q
    resid = x.reshape(x.shape[0], -1) - mixture.means[components]
    q = basis[components]
    perp = resid - torch.einsum("nr,ndr->nd", torch.einsum("nd,ndr->nr", resid, q), q)
    return float(perp.square().sum(1).mean()) / (mixture.dim - mixture.rank) / float(mixture.variances[0, 0])


def test_keeps_fine_detail_at_ten_evaluations_where_euler_loses_it():
    mixture = image_3x16x16()
    n = 400
    sigmas = make_sigmas("karras", 10, 0.002, 80.0)
    x = ItemNoise.from_seed(0, n).randn((n,) + mixture.shape, dtype=torch.float64) * 80.0
    ours = _detail_ratio(mixture, WALKS["adams"].fn(mixture.denoise, x.clone(), sigmas))
    euler = _detail_ratio(mixture, WALKS["euler"].fn(mixture.denoise, x.clone(), sigmas))
    # the ratio's sampling spread is sqrt(2 / (n (D - r))) ~ 0.003 here: the bands are wide margins
    assert 0.9 < ours < 1.1, f"adams kept {ours:.3f} of the fine-detail variance at 10 evaluations"
    assert euler < 0.8 and abs(ours - 1) < abs(euler - 1) / 3, f"euler kept {euler:.3f}: the comparison no longer shows what it should"


def test_rejects_bad_order():
    mixture = image_3x16x16()
    x = torch.zeros((1,) + mixture.shape)
    sigmas = make_sigmas("karras", 3, 0.002, 80.0)
    for bad in (-1, 5, 2.5):
        with pytest.raises(ValueError, match="order"):
            WALKS["adams"].fn(mixture.denoise, x, sigmas, order=bad)


class _Hinted:
    """A denoiser carrying the hints the guidance chain sets (``guided``, ``sigma_breaks``)."""

    def __init__(self, denoise, guided=False, breaks=(), jump_below=None):
        self.denoise, self.guided, self.sigma_breaks, self.jump_below = denoise, guided, tuple(breaks), jump_below

    def __call__(self, x, sigma):
        out = self.denoise(x, sigma)
        if self.jump_below is not None and float(sigma[0]) < self.jump_below:
            out = out + 0.3  # a term that switches on below this sigma
        return out


def _start(mixture, n=6, seed=5):
    return ItemNoise.from_seed(seed, n).randn((n,) + mixture.shape, dtype=torch.float64) * 80.0


def test_auto_order_is_three_and_two_on_a_guided_denoiser():
    mixture = image_3x16x16()
    x, sigmas = _start(mixture), make_sigmas("karras", 10, 0.002, 80.0)
    walk = WALKS["adams"].fn
    plain, guided = _Hinted(mixture.denoise), _Hinted(mixture.denoise, guided=True)
    assert torch.equal(walk(plain, x, sigmas), walk(plain, x, sigmas, order=3))
    assert torch.equal(walk(guided, x, sigmas), walk(guided, x, sigmas, order=2))
    assert torch.equal(walk(guided, x, sigmas, order=3), walk(plain, x, sigmas, order=3))  # explicit order wins
    assert not torch.equal(walk(plain, x, sigmas), walk(guided, x, sigmas))


def test_no_polynomial_across_a_sigma_break():
    """Past a break the walk continues exactly as a fresh adams walk started there."""
    mixture = image_3x16x16()
    x, sigmas = _start(mixture), make_sigmas("karras", 12, 0.002, 80.0)
    k = 6  # the break lies between levels k - 1 and k
    brk = float((sigmas[k - 1] * sigmas[k]).sqrt())
    hinted = _Hinted(mixture.denoise, breaks=(brk,), jump_below=brk)
    states = []
    out = WALKS["adams"].fn(hinted, x, sigmas, order=3, callback=lambda info: states.append(info["x"]))
    fresh = WALKS["adams"].fn(hinted, states[k - 1], sigmas[k:], order=3)  # state at sigmas[k], new history
    assert torch.equal(out, fresh)
    unhinted = _Hinted(mixture.denoise, jump_below=brk)
    assert not torch.equal(WALKS["adams"].fn(unhinted, x, sigmas, order=3), out)
