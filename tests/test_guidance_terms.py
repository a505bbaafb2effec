"""Guidance terms: each formula against a direct computation, their per-walk state and target checks, and a
contract over every term in the registry.

Formula tests run in float64 on hand-made targets (simple affine denoisers), so their tolerances are a few
hundred float64 roundoffs; walk tests compare whole walks bit for bit.
"""
import dataclasses
import math

import pytest
import torch

from rwalk.walk_core.guidance import (APG, CFG, TERMS, Autoguidance, DynamicThreshold, GuidanceChain,
                                      GuidanceContext, Rescale)
from rwalk.walk_core.guidance.threshold import row_quantile
from rwalk.walk_core.sample import WalkRequest, run_walk, walk_sigmas
from rwalk.walk_core.targets import GaussianMixture, WalkTarget, exact_target
from rwalk.walk_core.walks import WALKS
from perturbed_standins import with_stand_in_insides

TOL = 1e-12  # relative, float64 on tensors of ~100 values
SHAPE = (3, 4, 4)


def pattern(seed, shape=(2,) + SHAPE):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


BIAS = pattern(100)[0]


def hand_target(space="pixels", shape=SHAPE, cond_scale=0.8, uncond=True, name="hand"):
    """D_c(x) = cond_scale x + 0.3 BIAS, D_u(x) = 0.5 x - 0.1: affine, so every term's result is computable."""
    bias = BIAS if tuple(shape) == SHAPE else torch.zeros(shape, dtype=torch.float64)
    return WalkTarget(
        name=name,
        denoiser=lambda x, sigma, **extra: cond_scale * x + 0.3 * bias,
        space=space, sigma_min=0.01, sigma_max=10.0, shape=tuple(shape),
        unconditional=(lambda x, sigma, **extra: 0.5 * x - 0.1) if uncond else None,
    )


def context(target, x, sigma=1.0):
    s = torch.full((x.shape[0],), sigma, dtype=x.dtype)
    return GuidanceContext(target, x, s, {}, target.denoiser(x, s))


def guided(terms, target, x, sigma=1.0):
    """One evaluation of the chain ``terms`` (over the target's whole sigma range)."""
    wrapped = GuidanceChain(tuple(terms)).wrap(target, target.sigma_max, target.sigma_min)
    return wrapped(x, torch.full((x.shape[0],), sigma, dtype=x.dtype))


def close(a, b, tol=TOL):
    scale = max(float(a.abs().max()), float(b.abs().max()), 1.0)
    return float((a - b).abs().max()) <= tol * scale * 100


def item_std(t):
    return t.std(dim=tuple(range(1, t.ndim)), unbiased=False)


def labelled_mixture(spread=1.0):
    """Two classes of two components each over [3, 4, 4] pixels (means within +-0.5); ``spread`` scales the
    variances, so spread > 1 is a weaker (blurrier) version of the same mixture."""
    g = torch.Generator().manual_seed(7)
    means = (torch.rand((4,) + SHAPE, generator=g, dtype=torch.float64) - 0.5)
    return GaussianMixture([1.0, 2.0, 1.0, 3.0], means, 0.02 * spread, labels=[0, 0, 1, 1])


def pixel_target(spread=1.0, label=1):
    target = exact_target(labelled_mixture(spread), label, space="pixels", sigma_min=0.01, sigma_max=10.0)
    return with_stand_in_insides(target)  # PAG, SEG, SAG, SLG, SWG: a stand-in for a MODEL's perturbed predictions


REQUEST = WalkRequest(walk="euler_ancestral", schedule="karras", steps=6, seed=3, batch_size=3)


# ---------------------------------------------------------------- rescale


def test_rescale_formula():
    target, x = hand_target(), pattern(1)
    ctx = context(target, x)
    x_cfg = ctx.unconditional + 3.0 * (ctx.conditional - ctx.unconditional)
    rescaled = x_cfg * (item_std(ctx.conditional) / item_std(x_cfg))[:, None, None, None]
    expected = 0.7 * rescaled + 0.3 * x_cfg
    assert close(guided([CFG(3.0), Rescale()], target, x), expected)


def test_rescale_phi_limits():
    target, x = hand_target(), pattern(2)
    cfg_only = guided([CFG(5.0)], target, x)
    assert torch.equal(guided([CFG(5.0), Rescale(phi=0.0)], target, x), cfg_only)
    full = guided([CFG(5.0), Rescale(phi=1.0)], target, x)
    conditional = target.denoiser(x, None)
    assert close(item_std(full), item_std(conditional))
    assert not close(item_std(cfg_only), item_std(conditional))  # the rescale had something to do


def test_rescale_keeps_a_constant_estimate():
    target = WalkTarget(name="flat", denoiser=lambda x, s, **e: torch.full_like(x, 0.25), space="pixels",
                        sigma_min=0.01, sigma_max=10.0, shape=SHAPE)
    out = guided([Rescale(phi=1.0)], target, pattern(3))
    assert torch.equal(out, torch.full_like(out, 0.25))


# ---------------------------------------------------------------- APG


def test_apg_formula_with_threshold():
    target, x = hand_target(), pattern(4)
    ctx = context(target, x)
    d_c, d_u = ctx.conditional, ctx.unconditional
    delta = d_c - d_u
    norms = delta.flatten(1).norm(dim=1)
    r = float(norms.min() + norms.max()) / 2  # active for one item, not the other
    delta = delta * torch.clamp(r / norms, max=1.0)[:, None, None, None]
    par = ((delta * d_c).sum((1, 2, 3)) / (d_c * d_c).sum((1, 2, 3)))[:, None, None, None] * d_c
    expected = d_c + 5.0 * ((delta - par) + 0.3 * par)
    term = APG(weight=6.0, eta=0.3, norm_threshold=r, momentum=0.0)
    assert close(term.apply(ctx, d_c, term.start(target)), expected)


def test_apg_eta_one_is_cfg():
    target, x = hand_target(), pattern(5)
    assert close(guided([APG(weight=4.5, eta=1.0, momentum=0.0)], target, x), guided([CFG(4.5)], target, x))


def test_apg_update_is_orthogonal_to_the_estimate():
    target, x = hand_target(), pattern(6)
    d_c = target.denoiser(x, None)
    update = (guided([APG(weight=7.0, eta=0.0, momentum=0.0)], target, x) - d_c).flatten(1)
    dots = (update * d_c.flatten(1)).sum(1).abs()
    assert bool((dots <= 100 * TOL * update.norm(dim=1) * d_c.flatten(1).norm(dim=1)).all())
    assert bool((update.norm(dim=1) > 0).all())


def test_apg_threshold_caps_the_update_norm():
    target, x = hand_target(), pattern(7) * 10
    r = 0.5
    out = guided([APG(weight=3.0, eta=1.0, norm_threshold=r, momentum=0.0)], target, x)
    step = (out - target.denoiser(x, None)) / 2.0  # (w - 1) delta
    assert bool((step.flatten(1).norm(dim=1) <= r * (1 + 100 * TOL)).all())


def test_apg_momentum_recursion():
    target, term = hand_target(), APG(weight=3.0, eta=1.0, momentum=-0.5)
    state = term.start(target)
    x1, x2 = pattern(8), pattern(9)
    c1, c2 = context(target, x1), context(target, x2)
    term.apply(c1, c1.conditional, state)
    out = term.apply(c2, c2.conditional, state)
    running = (c2.conditional - c2.unconditional) - 0.5 * (c1.conditional - c1.unconditional)
    assert close(out, c2.conditional + 2.0 * running)


def test_apg_momentum_is_fresh_per_walk():
    target = pixel_target()
    chain = GuidanceChain((APG(weight=3.0, momentum=-0.5),))
    first, second = run_walk(target, REQUEST, chain), run_walk(target, REQUEST, chain)
    assert torch.equal(first.x, second.x)
    without = run_walk(target, REQUEST, GuidanceChain((APG(weight=3.0, momentum=0.0),)))
    assert not torch.equal(first.x, without.x)  # the state did take part


def test_apg_needs_an_unconditional_branch():
    with pytest.raises(ValueError, match=r"GuidanceStep \(apg\)"):
        GuidanceChain((APG(),)).check(hand_target(uncond=False))


# ---------------------------------------------------------------- dynamic thresholding


def test_row_quantile_matches_torch():
    values = pattern(10, (3, 37)).abs()
    for q in (0.0, 0.1, 0.5, 0.995, 1.0):
        assert close(row_quantile(values, q), torch.quantile(values, q, dim=1))
    assert torch.equal(row_quantile(values[:, :1], 0.995), values[:, 0])


def test_dynamic_threshold_formula_and_range():
    target = WalkTarget(name="loud", denoiser=lambda x, s, **e: 4 * x, space="pixels", sigma_min=0.01,
                        sigma_max=10.0, shape=SHAPE)
    x = pattern(11)
    loud = 4 * x
    out = guided([DynamicThreshold(percentile=0.9)], target, x)
    s = torch.quantile(loud.flatten(1).abs(), 0.9, dim=1).clamp_min(1.0)[:, None, None, None]
    assert close(out, loud.clamp(-s, s) / s)
    assert float(out.abs().max()) <= 1.0
    assert float(s.min()) > 1.0  # the estimate was out of range, so the threshold acted


def test_dynamic_threshold_leaves_in_range_estimates_unchanged():
    target = WalkTarget(name="quiet", denoiser=lambda x, s, **e: torch.tanh(x), space="pixels", sigma_min=0.01,
                        sigma_max=10.0, shape=SHAPE)
    x = pattern(12) * 3
    assert torch.equal(guided([DynamicThreshold()], target, x), torch.tanh(x))


def test_dynamic_threshold_refuses_non_pixel_targets_before_any_evaluation():
    calls = [0]

    def denoiser(x, sigma, **extra):
        calls[0] += 1
        return x * 0

    target = WalkTarget(name="vec", denoiser=denoiser, space="vector", sigma_min=0.01, sigma_max=10.0, shape=(2,))
    with pytest.raises(ValueError, match=r"GuidanceStep \(dynamic_threshold\).*'vector'"):
        run_walk(target, REQUEST, GuidanceChain((DynamicThreshold(),)))
    assert calls[0] == 0


# ---------------------------------------------------------------- autoguidance


def test_autoguidance_formula():
    target, x = hand_target(), pattern(13)
    guide = hand_target(cond_scale=0.6, name="weak")
    d_c, d_bad = target.denoiser(x, None), guide.denoiser(x, None)
    assert close(guided([Autoguidance(weight=2.5, guide=guide)], target, x), d_bad + 2.5 * (d_c - d_bad))


def test_autoguidance_with_itself_is_the_identity():
    target = pixel_target()
    plain = run_walk(target, REQUEST)
    same = run_walk(target, REQUEST, GuidanceChain((Autoguidance(weight=3.0, guide=target),)))
    assert torch.equal(plain.x, same.x)


def test_autoguidance_sharpens_a_gaussian_exactly():
    """Single Gaussian N(0, v) guided by N(0, v_bad): D = c(sigma) x with c = c_bad + w (c_v - c_bad),
    c_v = v / (v + sigma^2), so Euler's result is the start times a product the test computes itself."""
    v, v_bad, w = 1.0, 4.0, 2.0
    target = exact_target(GaussianMixture([1.0], [[0.0]], v), sigma_min=0.01, sigma_max=20.0)
    guide = exact_target(GaussianMixture([1.0], [[0.0]], v_bad), sigma_min=0.01, sigma_max=20.0, name="weak")
    sigmas = walk_sigmas(WalkRequest(steps=12), target).double()
    start = pattern(14, (5, 1)) * sigmas[0]
    model = GuidanceChain((Autoguidance(weight=w, guide=guide),)).wrap(target, 20.0, 0.01)
    end = WALKS["euler"].fn(model, start, sigmas)
    factor = 1.0
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        c_v, c_bad = v / (v + s * s), v_bad / (v_bad + s * s)
        factor *= 1 + (s_next - s) * (1 - (c_bad + w * (c_v - c_bad))) / s
    assert close(end, start * factor, tol=1e-10)


def test_autoguidance_equality_sees_the_guide():
    guide = pixel_target(spread=3.0)
    assert Autoguidance(guide=guide) == Autoguidance(guide=guide)
    assert Autoguidance(guide=guide) != Autoguidance(guide=pixel_target(spread=2.0))
    assert hash(Autoguidance(guide=guide)) == hash(Autoguidance(guide=pixel_target(spread=2.0)))


def test_autoguidance_checks_its_guide():
    target = pixel_target()
    wrong_shape = exact_target(GaussianMixture([1.0], torch.zeros(1, 3, 8, 8), 0.1), space="pixels", name="big")
    with pytest.raises(ValueError, match=r"GuidanceStep \(autoguidance\): guide=.*shape \(3, 8, 8\)"):
        run_walk(target, REQUEST, GuidanceChain((Autoguidance(guide=wrong_shape),)))
    wrong_space = dataclasses.replace(pixel_target(spread=3.0), space="latent")
    with pytest.raises(ValueError, match=r"GuidanceStep \(autoguidance\): guide=.*'latent'"):
        run_walk(target, REQUEST, GuidanceChain((Autoguidance(guide=wrong_space),)))
    with pytest.raises(ValueError, match=r"GuidanceStep \(autoguidance\): guide=None"):
        run_walk(target, REQUEST, GuidanceChain((Autoguidance(),)))


# ---------------------------------------------------------------- invalid parameters

INVALID = [
    ("rescale", "phi", 1.5), ("rescale", "phi", -0.1), ("rescale", "weight", 2.0),
    ("apg", "eta", -0.1), ("apg", "eta", 1.5), ("apg", "norm_threshold", -1.0), ("apg", "norm_threshold", math.inf),
    ("apg", "momentum", 1.0), ("apg", "momentum", -1.0), ("apg", "weight", math.nan),
    ("dynamic_threshold", "percentile", 99.5), ("dynamic_threshold", "percentile", 0.0),
    ("dynamic_threshold", "weight", 0.5),
    ("autoguidance", "guide", "a model name"), ("autoguidance", "weight", math.inf),
    ("cfg", "start_percent", 1.5), ("cfg", "schedule", "sawtooth"),
]


@pytest.mark.parametrize("kind,field_name,value", INVALID, ids=[f"{k}-{f}-{v}" for k, f, v in INVALID])
def test_invalid_parameters_name_the_field(kind, field_name, value):
    with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\).*{field_name}="):
        TERMS[kind](**{field_name: value})


# ---------------------------------------------------------------- registry contract

KINDS = TERMS.names()


# The inputs a term cannot default (everything else must have valid defaults), for ``pixel_target()``.
REQUIRED = {
    "autoguidance": lambda: {"guide": pixel_target(spread=3.0)},
    "perp_neg": lambda: {"negative": pixel_target(label=0)},  # the walked class is 1
    "energy": lambda: {"reference": torch.zeros((1,) + SHAPE)},
}


def example(kind, **overrides):
    """A working instance of each term on ``pixel_target()``: its required inputs, defaults for the rest."""
    return TERMS[kind](**{**REQUIRED.get(kind, dict)(), **overrides})


def test_registry_kinds_are_unique_and_match():
    classes = [TERMS[kind] for kind in KINDS]
    assert [cls.kind for cls in classes] == KINDS
    assert len(set(classes)) == len(classes)
    assert {"cfg", "rescale", "apg", "dynamic_threshold", "autoguidance"} <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_term_contract(kind):
    cls = TERMS[kind]
    assert dataclasses.is_dataclass(cls) and cls.__doc__ and len(cls.__doc__) > 80
    required = REQUIRED.get(kind, dict)()
    term = cls(**required)  # the defaults are valid (given the required inputs, if any)
    assert term == cls(**required) and hash(term) == hash(cls(**required))
    assert math.isfinite(term.weight)
    with pytest.raises(dataclasses.FrozenInstanceError):
        term.weight = 2.0
    GuidanceChain((term,)).check(pixel_target())


@pytest.mark.parametrize("kind", KINDS)
def test_term_outside_its_interval_changes_nothing(kind):
    """start = end = a percent whose sigma lies strictly between the first two sigmas walked: never active."""
    target = pixel_target()
    sigma_hi, sigma_lo = target.sigma_max, target.sigma_min
    sigmas = walk_sigmas(REQUEST, target)
    between = math.sqrt(float(sigmas[0]) * float(sigmas[1]))
    percent = math.log(between / sigma_hi) / math.log(sigma_lo / sigma_hi)
    term = example(kind, start_percent=percent, end_percent=percent)
    assert not any(term.sigma_interval(sigma_hi, sigma_lo)[1] <= float(s) <= term.sigma_interval(sigma_hi, sigma_lo)[0]
                   for s in sigmas)
    base = GuidanceChain((CFG(2.0),))
    plain, with_term = run_walk(target, REQUEST, base), run_walk(target, REQUEST, base.plus(term))
    assert torch.equal(plain.x, with_term.x)
    assert plain.nfe == with_term.nfe
    assert all(set(record.norms) == {"1:cfg"} for record in with_term.guidance)


@pytest.mark.parametrize("kind", KINDS)
def test_term_active_changes_the_walk(kind):
    """The same term over the whole walk does act (so the test above is not vacuous), and stays finite."""
    target = pixel_target()
    overrides = {"dynamic_threshold": {"percentile": 0.5}, "fresca": {"freq_cutoff": 1}}.get(kind, {})
    base = GuidanceChain((CFG(6.0),))
    plain, with_term = run_walk(target, REQUEST, base), run_walk(target, REQUEST, base.plus(example(kind, **overrides)))
    assert bool(torch.isfinite(with_term.x).all())
    assert not torch.equal(plain.x, with_term.x)


def test_wrap_marks_the_guided_denoiser_and_its_interval_edges():
    """Multistep walks read ``guided`` and ``sigma_breaks`` (walk_core/walks/adams.py)."""
    target = hand_target()
    term = CFG(weight=3.0, start_percent=0.25, end_percent=0.55)
    hi, lo = term.sigma_interval(80.0, 0.002)
    guided = GuidanceChain((term,)).wrap(target, 80.0, 0.002)
    assert guided.guided is True
    assert guided.sigma_breaks == (hi, lo) and 0.002 < lo < hi < 80.0
    whole = GuidanceChain((CFG(weight=3.0),)).wrap(target, 80.0, 0.002)
    assert whole.sigma_breaks == ()  # active over the whole walk: nothing switches
    assert not hasattr(GuidanceChain().wrap(target, 80.0, 0.002), "guided")  # no terms: the bare denoiser
