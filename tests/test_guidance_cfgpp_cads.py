"""CFG++, the guidance interval, SMC-CFG, momentum guidance and CADS checked against exact conditional targets.

In the style of test_guidance_verification.py: each term's neutral value is the identity (or the walk it names),
its documented formula holds at single evaluations of the exact class mixture (float64), and its effect on the
class mixture is measured with tolerances from the sample size (Z_MAX standard errors).
"""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import GuidanceChain, ItemNoise, WalkRequest, run_walk
from rwalk.walk_core.guidance import CFG, TERMS
from rwalk.walk_core.guidance.cads import SEED_STREAM
from rwalk.walk_core.targets import WalkTarget, exact_target
from rwalk.walk_core.targets.exact import CLASS_LOGIT_SCALE
from rwalk.walk_core.walks import WALKS

from test_guidance_verification import classes_2d, precision

Z_MAX = 4.5
SIGMA_MAX, SIGMA_MIN = 80.0, 0.002
RENOISE_WALKS = ("euler", "euler_ancestral", "adams", "er_sde")


@pytest.fixture(scope="module")
def mixture():
    return classes_2d()


@pytest.fixture(scope="module")
def target(mixture):
    return exact_target(mixture, 0)


def walk(target, chain=GuidanceChain(), **overrides):
    request = dict(walk="euler_ancestral", steps=20, batch_size=400, seed=11)
    return run_walk(target, WalkRequest(**{**request, **overrides}), chain)


def points(n=16, seed=0, scale=1.5):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def at(sigma, n=16):
    return torch.full((n,), float(sigma), dtype=torch.float64)


def wrapped(target, *terms):
    return GuidanceChain(tuple(terms)).wrap(target, SIGMA_MAX, SIGMA_MIN)


# ---------------------------------------------------------------- CFG++


def test_cfgpp_lambda_zero_is_the_unconditional_walk(mixture, target):
    options = {"order": 2}  # multistep walks lower their auto order on a guided denoiser: fix it for both
    for name in RENOISE_WALKS:
        guided = walk(target, GuidanceChain().plus(TERMS["cfg_pp"](weight=0.0)), walk=name, batch_size=64,
                      options=options)
        plain = walk(exact_target(mixture), walk=name, batch_size=64, options=options)  # the unconditional mixture
        assert torch.allclose(guided.x, plain.x, atol=1e-6), name


@pytest.mark.parametrize("name", RENOISE_WALKS)
def test_cfgpp_step_is_the_papers_formula(target, name):
    """One step sigma -> sigma' of every renoising walk (first order, no fresh noise) is x' = D_g + (sigma'/sigma)
    (x - D_u) with D_g = D_u + lambda (D_c - D_u) -- the guided estimate, re-noised with the unconditional noise."""
    lam, sigma, sigma_next = 0.7, 3.0, 1.2
    x = points(scale=3.0)
    guided = wrapped(target, TERMS["cfg_pp"](weight=lam))
    options = {"euler": {}, "euler_ancestral": {"eta": 0.0}, "adams": {"order": 1},
               "er_sde": {"order": 1, "exponent": 0.0}}[name]
    steps = []
    WALKS[name].fn(guided, x, torch.tensor([sigma, sigma_next, 0.0], dtype=torch.float64),
                   callback=lambda info: steps.append(info["x"]), noise=ItemNoise.from_seed(0, 16), **options)
    c, u = target.denoiser(x, at(sigma)), target.unconditional(x, at(sigma))
    expected = u + lam * (c - u) + (sigma_next / sigma) * (x - u)
    assert torch.allclose(steps[0], expected, atol=1e-10, rtol=0)
    cfg_step = (u + lam * (c - u)) * (1 - sigma_next / sigma) + (sigma_next / sigma) * x  # plain CFG's step
    assert not torch.allclose(steps[0], cfg_step, atol=1e-3)


def test_cfgpp_strength_blends_both_estimates(target):
    """A faded CFG++ (linear schedule) blends the guided and the re-noising estimate by the same strength."""
    term = TERMS["cfg_pp"](weight=0.5, schedule="linear", start_percent=0.2, end_percent=0.8)
    guided = wrapped(target, term)
    hi, lo = term.sigma_interval(SIGMA_MAX, SIGMA_MIN)
    sigma = math.sqrt(hi * lo)
    x, s = points(), at(sigma)
    strength = term.strength(sigma, SIGMA_MAX, SIGMA_MIN)
    assert 0.2 < strength < 0.8
    denoised, renoise = guided.with_renoise(x, s)
    c, u = target.denoiser(x, s), target.unconditional(x, s)
    assert torch.allclose(denoised, c + strength * (u + 0.5 * (c - u) - c), atol=1e-12)
    assert torch.allclose(renoise, c + strength * (u - c), atol=1e-12)
    outside = guided.with_renoise(x, at(hi * 2))
    assert torch.equal(outside[0], outside[1])  # inactive: re-noise with the estimate itself, the plain walk


@pytest.mark.parametrize("name", ["heun", "edm", "langevin", "pc"])
def test_cfgpp_is_refused_by_walks_without_a_single_renoising_step(target, name):
    with pytest.raises(ValueError, match=rf"walk='{name}' cannot take the guidance term cfg_pp.*euler_ancestral"):
        walk(target, GuidanceChain().plus(CFG(weight=2.0)).plus(TERMS["cfg_pp"]()), walk=name, batch_size=2)
    walk(target, GuidanceChain().plus(CFG(weight=2.0)), walk=name, batch_size=2, steps=3)  # the rest still runs


def test_cfgpp_on_a_model_target_through_comfyuis_sampling(fake_comfy):
    """On a MODEL target (ComfyUI's sampling, stand-ins here) the WalkGuider keeps the re-noising estimate and the
    pack's walks read it: lambda 0 is CFG at scale 0 (the unconditional walk) bit for bit, lambda 0.5 differs from
    CFG 0.5; a walk that cannot re-noise is refused before the walk."""
    from test_comfy_model import target as model_target, walk_sampler

    tgt, _ = model_target("eps", positive=0.5, negative=-0.5)

    def latent(term, walk="euler"):
        return walk_sampler(tgt, GuidanceChain().plus(term), walk=walk)[1]["samples"]

    assert torch.equal(latent(TERMS["cfg_pp"](weight=0.0)), latent(CFG(weight=0.0)))
    assert not torch.allclose(latent(TERMS["cfg_pp"](weight=0.5)), latent(CFG(weight=0.5)), atol=1e-3)
    with pytest.raises(ValueError, match=r"WalkGuider: the guidance term cfg_pp.*walk 'heun' cannot take it"):
        latent(TERMS["cfg_pp"](weight=0.5), walk="heun")


def test_cfgpp_renoising_keeps_the_init_where_an_inpainting_mask_keeps_it():
    from rwalk.walk_core.bridge.sampler import _Renoising

    shift = torch.full((1, 1, 2, 2), 3.0)
    guider = type("Guider", (), {"walk_renoise_shift": lambda self: shift})()
    model = _Renoising(lambda x, sigma, **extra: x * 0 + 1.0, guider)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    denoised, renoise = model.with_renoise(torch.zeros(1, 1, 2, 2), torch.ones(1), denoise_mask=mask)
    assert torch.equal(denoised - renoise, shift * mask)
    assert torch.equal(model.with_renoise(torch.zeros(1, 1, 2, 2), torch.ones(1))[1], 1.0 - shift)


def test_cfgpp_precision_rises_with_lambda(mixture, target):
    """lambda 0 samples the whole mixture (class 0 holds about half of it); precision rises with lambda."""
    n = 1500
    scores = [precision(mixture, walk(target, GuidanceChain().plus(TERMS["cfg_pp"](weight=lam)), batch_size=n).x)
              for lam in (0.0, 0.2, 0.6)]
    se = math.sqrt(0.25 / n)
    assert abs(scores[0] - 0.5) < 0.15  # the unconditional share of class 0 (overlapping classes)
    assert scores[0] + Z_MAX * se < scores[1] and scores[1] + Z_MAX * se < scores[2], scores
    assert scores[2] > 0.85


# ---------------------------------------------------------------- guidance interval


def test_interval_term_is_cfg_inside_and_the_conditional_outside(target):
    term = TERMS["cfg_interval"](weight=4.0)  # the paper's (0.28, 5.42]
    guided, x = wrapped(target, term), points()
    for sigma in (0.3, 1.0, 5.4, 0.27, 5.5, 40.0):
        s = at(sigma)
        c, u = target.denoiser(x, s), target.unconditional(x, s)
        expected = u + 4.0 * (c - u) if 0.28 <= sigma <= 5.42 else c
        assert torch.allclose(guided(x, s), expected, atol=1e-12), sigma


def test_interval_term_is_the_chains_percent_interval_in_sigma(target):
    """The chain's start/end percent already is a guidance interval: the same sigmas as percents give the same
    walk bit for bit; the sigma form only keeps the interval fixed when the walk's range changes."""
    span = math.log(SIGMA_MIN / SIGMA_MAX)
    start, end = math.log(5.42 / SIGMA_MAX) / span, math.log(0.28 / SIGMA_MAX) / span
    by_sigma = walk(target, GuidanceChain().plus(TERMS["cfg_interval"](weight=4.0)), batch_size=64)
    by_percent = walk(target, GuidanceChain().plus(CFG(weight=4.0, start_percent=start, end_percent=end)),
                      batch_size=64)
    assert torch.equal(by_sigma.x, by_percent.x)
    active = [r.sigma for r in by_sigma.guidance if "1:cfg_interval" in r.norms]
    assert active and min(active) >= 0.28 and max(active) <= 5.42


def test_interval_ends_in_the_wrong_order_are_refused_before_the_walk(target):
    with pytest.raises(ValueError, match=r"GuidanceStep \(cfg_interval\): sigma_lo=6.0.*sigma_hi=5.42"):
        walk(target, GuidanceChain().plus(TERMS["cfg_interval"](sigma_lo=6.0)), batch_size=2)


# ---------------------------------------------------------------- SMC-CFG


def test_smc_cfg_without_switching_is_cfg(target):
    x, s = points(), at(2.0)
    for w in (1.0, 4.0):
        c, u = target.denoiser(x, s), target.unconditional(x, s)
        out = wrapped(target, TERMS["smc_cfg"](weight=w, k=0.0))(x, s)
        assert torch.allclose(out, u + w * (c - u), atol=1e-12)
    assert torch.allclose(wrapped(target, TERMS["smc_cfg"](weight=1.0, k=0.0))(x, s), target.denoiser(x, s), atol=1e-12)


def test_smc_cfg_follows_the_sliding_mode_recursion(target):
    """Three evaluations against the paper's rule in velocity units (e = (D_u - D_c) / t, t = sigma / (1 + sigma))."""
    w, lam, k = 3.0, 0.05, 0.3
    guided, x = wrapped(target, TERMS["smc_cfg"](weight=w, lam=lam, k=k)), points()
    previous = None
    for sigma in (5.0, 2.0, 0.7):
        s = at(sigma)
        c, u = target.denoiser(x, s), target.unconditional(x, s)
        t = sigma / (1 + sigma)
        e = (u - c) / t
        prev = e if previous is None else previous
        e = e - k * torch.sign((e - prev) + lam * prev)
        previous = e
        assert torch.allclose(guided(x, s), u - w * t * e, atol=1e-12), sigma


# ---------------------------------------------------------------- momentum guidance


def test_momentum_alpha_zero_is_the_identity(target):
    plain = walk(target, GuidanceChain().plus(CFG(weight=3.0)), batch_size=64)
    with_term = walk(target, GuidanceChain().plus(CFG(weight=3.0)).plus(TERMS["momentum"](weight=0.0)), batch_size=64)
    assert torch.allclose(plain.x, with_term.x, atol=1e-12, rtol=0)


def test_momentum_extrapolates_away_from_the_velocity_average(target):
    alpha, beta = 0.4, 0.6
    x = points()
    guided = wrapped(target, TERMS["momentum"](weight=alpha, beta=beta))
    average = None
    for sigma in (6.0, 3.0, 1.0, 0.4):
        s = at(sigma)
        d = target.denoiser(x, s)
        v = (x - d) / sigma
        m = v if average is None else average
        assert torch.allclose(guided(x, s), x - sigma * (v + alpha * (v - m)), atol=1e-12), sigma
        average = beta * m + (1 - beta) * v
    fresh = wrapped(target, TERMS["momentum"](weight=alpha, beta=beta))  # a new walk starts without history
    assert torch.allclose(fresh(x, at(0.4)), target.denoiser(x, at(0.4)), atol=1e-12)


# ---------------------------------------------------------------- CADS


def test_cads_condition_is_the_class_and_clean_condition_is_the_conditional(mixture, target):
    x, s = points(), at(0.8)
    assert torch.allclose(target.conditioned(x, s, lambda y: y), target.denoiser(x, s), atol=1e-9)
    other = target.conditioned(x, s, lambda y: y.flip(1))  # the one-hot moved to class 1
    assert torch.allclose(other, mixture.condition(1).denoise(x, s), atol=1e-9)


def test_cads_gamma_schedule_and_neutral_setting(target):
    term = TERMS["cads"]()
    assert [term.gamma(t) for t in (0.0, 0.6, 0.75, 0.9, 1.0)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    plain = walk(target, GuidanceChain().plus(CFG(weight=4.0)), batch_size=64)
    clean = walk(target, GuidanceChain().plus(TERMS["cads"](tau1=1.0, tau2=1.0)).plus(CFG(weight=4.0)), batch_size=64)
    assert torch.equal(plain.x, clean.x)  # tau1 = 1: the clean condition throughout


def test_cads_formula_at_one_evaluation(mixture, target):
    """y' = sqrt(gamma) y + s sqrt(1 - gamma) n, rescaled to y's mean and std (psi 1), n from item i's seed."""
    term = TERMS["cads"](noise_scale=0.3, psi=0.5)
    seeds = (5, 6, 7)
    guided = GuidanceChain((term,)).wrap(target, SIGMA_MAX, SIGMA_MIN, seeds=seeds)
    sigma = math.exp(math.log(SIGMA_MIN) + 0.8 * (math.log(SIGMA_MAX) - math.log(SIGMA_MIN)))  # t = 0.8
    x, s = points(3), at(sigma, 3)
    gamma = (0.9 - 0.8) / (0.9 - 0.6)
    noise = torch.stack([torch.randn(2, generator=torch.Generator().manual_seed(v + SEED_STREAM), dtype=torch.float64)
                         for v in seeds])
    y = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    noisy = math.sqrt(gamma) * y + 0.3 * math.sqrt(1 - gamma) * noise
    rescaled = (noisy - noisy.mean(1, keepdim=True)) / noisy.std(1, correction=0, keepdim=True) \
        * y.std(1, correction=0, keepdim=True) + y.mean(1, keepdim=True)
    condition = 0.5 * rescaled + 0.5 * noisy
    expected = mixture.denoise_reweighted(x, s, CLASS_LOGIT_SCALE * condition[:, mixture.labels])
    assert torch.allclose(guided(x, s), expected, atol=1e-9)


def test_cads_item_equals_its_own_walk(target):
    chain = GuidanceChain().plus(TERMS["cads"]()).plus(CFG(weight=4.0))
    batch = walk(target, chain, batch_size=3, seed=20)
    alone = walk(target, chain, batch_size=1, seed=22)
    assert torch.allclose(batch.x[2], alone.x[0], atol=1e-6)
    assert not torch.allclose(batch.x[0], batch.x[1])


def test_cads_is_refused_without_a_condition_tensor(mixture):
    unlabelled = WalkTarget(name="hand", denoiser=mixture.condition(0).denoise, space="vector", sigma_min=0.002,
                            sigma_max=80.0, shape=(2,), unconditional=mixture.denoise)
    with pytest.raises(ValueError, match=r"GuidanceStep \(cads\): target 'hand' has no condition tensor"):
        walk(unlabelled, GuidanceChain().plus(TERMS["cads"]()).plus(CFG(weight=2.0)), batch_size=2)
    with pytest.raises(ValueError, match=r"GuidanceStep \(cads\): tau1=0.95.*tau2=0.9"):
        walk(exact_target(mixture, 0), GuidanceChain().plus(TERMS["cads"](tau1=0.95)), batch_size=2)


INVALID = [("cfg_pp", "weight", -0.1), ("cfg_interval", "sigma_hi", -1.0), ("cfg_interval", "sigma_lo", math.inf),
           ("smc_cfg", "k", -0.1), ("smc_cfg", "lam", math.nan), ("momentum", "beta", 1.0),
           ("momentum", "weight", -1.0), ("cads", "tau1", 1.5), ("cads", "noise_scale", -0.1), ("cads", "psi", 2.0),
           ("cads", "weight", 2.0)]


@pytest.mark.parametrize("kind,field_name,value", INVALID, ids=[f"{k}-{f}-{v}" for k, f, v in INVALID])
def test_invalid_parameters_name_the_field(kind, field_name, value):
    with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\).*{field_name}="):
        TERMS[kind](**{field_name: value})
