"""Guidance checked against exact conditional targets (a 2-D class-labelled mixture).

Tolerances come from the sample size: weights and precisions are compared with Z_MAX standard errors.
"""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import GaussianMixture, GuidanceChain, WalkRequest, run_walk
from rwalk.walk_core.guidance import CFG, TERMS
from rwalk.walk_core.targets import exact_target

from exact_targets import image_3x16x16, mode_weights, total_variation

Z_MAX = 4.5
N = 3000
WALK = dict(walk="euler_ancestral", steps=120, batch_size=N, seed=11)


def classes_2d() -> GaussianMixture:
    """Two overlapping classes of two components each: class 0 on the left, class 1 on the right."""
    means = [[-1.4, 0.0], [-0.4, 1.8], [1.4, 0.0], [0.4, 1.8]]
    return GaussianMixture([3, 1, 2, 2], means, 0.35, labels=[0, 0, 1, 1])


@pytest.fixture(scope="module")
def mixture():
    return classes_2d()


def precision(mixture: GaussianMixture, x: torch.Tensor, label: int = 0) -> float:
    """Fraction of samples whose most likely class under the exact unconditional mixture is ``label``."""
    r = mixture.responsibilities(x, 0.0)
    in_class = r[:, mixture.labels == label].sum(1)
    return float((in_class > 0.5).double().mean())


def walk(target, chain=GuidanceChain(), **overrides):
    return run_walk(target, WalkRequest(**{**WALK, **overrides}), chain)


def test_cfg_scale_one_is_the_conditional(mixture):
    target = exact_target(mixture, 0)
    plain = walk(target).x
    guided = walk(target, GuidanceChain().plus(CFG(weight=1.0))).x
    # u + 1 * (c - u) = c up to rounding: the same walk
    assert torch.allclose(guided, plain, atol=1e-4)
    # and that walk samples the exact conditional: its within-class mode weights and mean
    conditional = mixture.condition(0)
    assert total_variation(mode_weights(conditional, guided), conditional.weights) < Z_MAX * math.sqrt(0.25 / N)
    exact = conditional.sample(N, torch.Generator().manual_seed(3))
    se = (exact.var(0) / N * 2).sqrt()
    assert float(((guided.double().mean(0) - exact.mean(0)).abs() / se).max()) < Z_MAX


def test_class_precision_rises_with_scale(mixture):
    target = exact_target(mixture, 0)
    scores = [precision(mixture, walk(target, GuidanceChain().plus(CFG(weight=w))).x) for w in (1.0, 2.0, 4.0)]
    se = math.sqrt(0.25 / N)
    assert scores[0] + 2 * se < scores[1] + 1e-12 and scores[1] <= scores[2] + se, scores
    assert scores[2] > 0.97


def test_term_outside_its_interval_is_bit_identical(mixture):
    target = exact_target(mixture, 0)
    base = GuidanceChain().plus(CFG(weight=2.0))
    # a zero-width interval at a sigma no evaluation lands on
    idle = base.plus(CFG(weight=7.0, start_percent=0.5137, end_percent=0.5137))
    a = walk(target, base, batch_size=64)
    b = walk(target, idle, batch_size=64)
    assert torch.equal(a.x, b.x)
    assert all("2:cfg" not in r.norms for r in b.guidance)


def test_interval_is_in_sigma_and_the_same_for_every_walk(mixture):
    """start/end percent become one sigma interval; every walk applies the term exactly there."""
    target = exact_target(mixture, 0)
    term = CFG(weight=3.0, start_percent=0.3, end_percent=0.6)
    hi, lo = term.sigma_interval(target.sigma_max, target.sigma_min)
    for name, steps in (("euler", 30), ("heun", 17), ("pc", 12)):
        result = walk(target, GuidanceChain().plus(term), walk=name, steps=steps, batch_size=8)
        for record in result.guidance:
            assert ("1:cfg" in record.norms) == (lo <= record.sigma <= hi)
        assert any("1:cfg" in r.norms for r in result.guidance)


def test_strength_schedules_fade_the_term(mixture):
    """linear/cosine scale the term's change by a factor falling from 1 at the interval's start to 0 at
    its end (in log sigma); constant keeps 1."""
    target = exact_target(mixture, 0)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    wrapped = {s: GuidanceChain().plus(CFG(weight=3.0, schedule=s, start_percent=0.2, end_percent=0.8))
               .wrap(target, 80.0, 0.002) for s in ("constant", "linear", "cosine")}
    term = CFG(weight=3.0, schedule="linear", start_percent=0.2, end_percent=0.8)
    hi, lo = term.sigma_interval(80.0, 0.002)
    previous = {"linear": 1.0, "cosine": 1.0}
    for sigma_value in torch.logspace(math.log10(hi), math.log10(lo), 9).tolist():
        sigma = torch.full((8,), sigma_value, dtype=torch.float64)
        c = target.denoiser(x, sigma)
        full = wrapped["constant"](x, sigma) - c
        for schedule in ("linear", "cosine"):
            change = wrapped[schedule](x, sigma) - c
            factor = float((change * full).sum() / full.square().sum())
            assert torch.allclose(change, factor * full, atol=1e-9)
            assert -1e-9 <= factor <= previous[schedule] + 1e-9
            previous[schedule] = factor
    assert previous["linear"] == pytest.approx(0.0, abs=1e-9) and previous["cosine"] == pytest.approx(0.0, abs=1e-9)
    assert term.strength(hi, 80.0, 0.002) == pytest.approx(1.0)


def test_chain_order_is_applied_as_documented(mixture):
    """Terms apply in chain order to the running estimate: cfg(a) then cfg(b) is cfg(a*b) on the
    conditional branch, and a later term sees the earlier one's output (checked at one evaluation)."""
    target = exact_target(mixture, 0)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigma = torch.full((16,), 0.7, dtype=torch.float64)
    two = GuidanceChain().plus(CFG(weight=2.0)).plus(CFG(weight=3.0)).wrap(target, 80.0, 0.002)
    one = GuidanceChain().plus(CFG(weight=6.0)).wrap(target, 80.0, 0.002)
    assert torch.allclose(two(x, sigma), one(x, sigma), atol=1e-10)
    c, u = target.denoiser(x, sigma), target.unconditional(x, sigma)
    assert torch.allclose(one(x, sigma), u + 6.0 * (c - u), atol=1e-10)


def test_apg_keeps_more_within_class_diversity_than_cfg():
    """At a high scale CFG shrinks the within-class spread; APG (Sadat et al. 2024), which drops the
    update's component along the conditional prediction, keeps it near the exact conditional's. Measured on
    an image-like 3x16x16 class mixture with the same seeds; spread = total variance (trace of the sample
    covariance). Its sampling spread is measured on independent exact sample sets of the same size."""
    mixture = image_3x16x16(k=4, rank=3, labels=[0, 0, 1, 1])
    target = exact_target(mixture, 0, space="pixels")
    n, scale = 800, 8.0

    def total_variance(x) -> float:
        return float(x.reshape(len(x), -1).double().var(0).sum())

    request = dict(walk="euler_ancestral", steps=60, batch_size=n, seed=3)
    cfg = total_variance(walk(target, GuidanceChain().plus(CFG(weight=scale)), **request).x)
    apg = total_variance(walk(target, GuidanceChain().plus(TERMS["apg"](weight=scale)), **request).x)
    conditional = mixture.condition(0)
    exact = torch.tensor([total_variance(conditional.sample(n, torch.Generator().manual_seed(s))) for s in range(12)])
    sd_difference = math.sqrt(2) * float(exact.std())  # of a difference of two such estimates
    assert cfg + Z_MAX * sd_difference < apg, (cfg, apg, exact.mean().item(), sd_difference)
    assert abs(apg - float(exact.mean())) < abs(cfg - float(exact.mean()))  # closer to the conditional's own


@pytest.mark.parametrize("walk_name,steps", [("heun", 5), ("edm", 5), ("edm", 10), ("adams", 10)])
def test_second_order_walks_stay_on_target_under_strong_cfg(walk_name, steps):
    """CFG 4 at few levels: on the chain's (marked) guided denoiser the walks stay in the data's range, and on
    the same denoiser without the mark (as a foreign guider would hand it over) too -- their step guard
    (walk_core/walks/guard.py, issue 31) -- where the unguarded walk throws samples far off."""
    from exact_targets import image_3x16x16
    from rwalk.walk_core import ItemNoise, WALKS, make_sigmas

    mixture = image_3x16x16(k=4, labels=[0, 0, 1, 1])
    target = exact_target(mixture, 0, space="pixels")
    marked = GuidanceChain().plus(CFG(weight=4.0)).wrap(target, 80.0, 0.002)
    unmarked = lambda x, sigma: marked(x, sigma)  # the same numbers, no `guided` attribute
    n = 200
    x = ItemNoise.from_seed(0, n).randn((n,) + mixture.shape) * 80.0
    sigmas = make_sigmas("karras", steps, 0.002, 80.0)
    data_max = float(mixture.sample(n, torch.Generator().manual_seed(1)).abs().max())
    ours = WALKS[walk_name].fn(marked, x, sigmas, noise=ItemNoise.from_seed(0, n))
    assert float(ours.abs().max()) < 1.5 * data_max
    guarded = WALKS[walk_name].fn(unmarked, x, sigmas, noise=ItemNoise.from_seed(0, n))
    assert float(guarded.abs().max()) < 1.5 * data_max
    if walk_name != "adams":  # adams' failure is rarer (about 1 item in 200 on another mixture): not shown here
        unguarded = WALKS[walk_name].fn(unmarked, x, sigmas, noise=ItemNoise.from_seed(0, n), guard=0.0)
        assert float(unguarded.abs().max()) > 5 * data_max
