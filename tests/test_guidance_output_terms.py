"""CFG-Zero*, TCFG, Mahiro, PerpNeg, FDG and FreSca checked on exact conditional targets (issue 32).

For each term: its neutral setting is the identity (a whole walk equals the unguided one), its documented formula
holds at one evaluation of the exact class-conditional mixture (computed here another way: least squares, an SVD,
plain loops over frequencies), its sigma interval and strength schedule act as for every term, and at scale 4 it
guides (class precision). Formula checks run in float64, so their tolerances are float64 roundoff; walk
comparisons use the CFG test's 1e-4 (float32 walks); precisions are compared with Z_MAX standard errors.
"""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import GaussianMixture, GuidanceChain, WalkRequest, run_walk
from rwalk.walk_core.guidance import CFG, TERMS, GuidanceContext
from rwalk.walk_core.guidance.frequency import from_pyramid, laplacian_pyramid
from rwalk.walk_core.targets import exact_target

from exact_targets import image_3x16x16

Z_MAX = 4.5
SIGMA_MAX, SIGMA_MIN = 80.0, 0.002


def three_classes_2d() -> GaussianMixture:
    """Three overlapping classes in 2-D: class 0 on the left, 1 on the right, 2 on top (two components each)."""
    means = [[-1.5, 0.0], [-0.8, -1.0], [1.5, 0.0], [0.8, -1.0], [0.0, 1.6], [0.0, 2.4]]
    return GaussianMixture([3, 1, 2, 2, 1, 1], means, 0.7, labels=[0, 0, 1, 1, 2, 2])


@pytest.fixture(scope="module")
def vector():
    mixture = three_classes_2d()
    return mixture, exact_target(mixture, 0), exact_target(mixture, 1)


@pytest.fixture(scope="module")
def pictures():
    mixture = image_3x16x16(k=6, rank=3, labels=[0, 1, 2, 0, 1, 2])
    return mixture, exact_target(mixture, 0, space="pixels"), exact_target(mixture, 1, space="pixels")


def neutral(kind, negative):
    """Each term at its neutral setting (the paper's 'no guidance')."""
    return {"cfg_zero_star": dict(weight=1.0), "tcfg": dict(weight=1.0), "mahiro": dict(weight=1.0),
            "perp_neg": dict(weight=1.0, neg_scale=0.0, negative=negative),
            "fdg": dict(weight=1.0, low_weight=1.0), "fresca": dict(scale_low=1.0, scale_high=1.0)}[kind]


def active(kind, negative, scale=4.0):
    """Each term guiding at ``scale`` (FreSca, which has no scale, with its defaults and a low cutoff)."""
    return {"cfg_zero_star": dict(weight=scale), "tcfg": dict(weight=scale), "mahiro": dict(weight=scale),
            "perp_neg": dict(weight=scale, negative=negative), "fdg": dict(weight=scale, low_weight=scale / 2),
            "fresca": dict(freq_cutoff=3)}[kind]


VECTOR_KINDS = ("cfg_zero_star", "tcfg", "mahiro", "perp_neg")
PICTURE_KINDS = ("fdg", "fresca")
KINDS = VECTOR_KINDS + PICTURE_KINDS


def setup(kind, vector, pictures):
    return vector if kind in VECTOR_KINDS else pictures


def at(target, n=16, sigma=0.7, seed=0):
    """(x, sigma, D_c, D_u) of the exact target at one noise level, float64."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn((n,) + tuple(target.shape), generator=g, dtype=torch.float64) * math.sqrt(1 + sigma**2))
    s = torch.full((n,), sigma, dtype=torch.float64)
    return x, s, target.denoiser(x, s), target.unconditional(x, s)


def once(term, target, x, s):
    return GuidanceChain((term,)).wrap(target, SIGMA_MAX, SIGMA_MIN)(x, s)


def walk(target, chain, **overrides):
    request = dict(walk="euler_ancestral", steps=40, batch_size=64, seed=11)
    return run_walk(target, WalkRequest(**{**request, **overrides}), chain)


def dot(a, b):
    return (a.flatten(1) * b.flatten(1)).sum(1)


def per_item(v, like):
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


# ---------------------------------------------------------------- neutral settings


@pytest.mark.parametrize("kind", KINDS)
def test_neutral_setting_is_the_identity(kind, vector, pictures):
    """Scale 1 (PerpNeg: and negative scale 0; FDG: both bands 1; FreSca: both factors 1) walks exactly as no
    guidance, which samples the exact conditional."""
    mixture, target, negative = setup(kind, vector, pictures)
    x, s, c, _ = at(target)
    assert torch.allclose(once(TERMS[kind](**neutral(kind, negative)), target, x, s), c, atol=1e-12)
    plain = walk(target, GuidanceChain()).x
    guided = walk(target, GuidanceChain().plus(TERMS[kind](**neutral(kind, negative)))).x
    assert torch.allclose(guided, plain, atol=1e-4)


# ---------------------------------------------------------------- formulas


def test_cfg_zero_star_scale_is_the_least_squares_factor(vector):
    """s* = argmin_s ||v_c - s v_u||^2 per item (v = x - D); the result is x - ((1 - w) s* v_u + w v_c)."""
    _, target, _ = vector
    x, s, c, u = at(target)
    v_c, v_u = x - c, x - u
    s_star = torch.stack([torch.linalg.lstsq(v_u[i].reshape(-1, 1), v_c[i].reshape(-1, 1)).solution.reshape(())
                          for i in range(len(x))])
    w = 5.0
    expected = x - ((1 - w) * per_item(s_star, x) * v_u + w * v_c)
    assert torch.allclose(once(TERMS["cfg_zero_star"](weight=w), target, x, s), expected, atol=1e-10)
    # the residual of the fit is orthogonal to v_u; s* = 1 would be plain cfg, which differs here
    assert float(dot(v_c - per_item(s_star, x) * v_u, v_u).abs().max()) < 1e-10
    assert not torch.allclose(expected, u + w * (c - u), atol=1e-3)


def test_cfg_zero_star_zero_init_holds_x_over_the_first_part_of_the_walk(vector):
    _, target, _ = vector
    term = TERMS["cfg_zero_star"](weight=3.0, zero_init=0.2)
    edge = term.sigma_at(0.2, SIGMA_MAX, SIGMA_MIN)  # ~ 10.7
    guided = GuidanceChain((term,)).wrap(target, SIGMA_MAX, SIGMA_MIN)
    plain = GuidanceChain((TERMS["cfg_zero_star"](weight=3.0),)).wrap(target, SIGMA_MAX, SIGMA_MIN)
    for sigma, zeroed in ((SIGMA_MAX, True), (edge * 1.01, True), (edge * 0.99, False), (0.5, False)):
        x, s, _, _ = at(target, sigma=sigma)
        out = guided(x, s)
        assert torch.equal(out, x) == zeroed, sigma
        if not zeroed:
            assert torch.equal(out, plain(x, s))


def test_tcfg_keeps_the_unconditional_along_the_first_singular_vector(vector, pictures):
    """e_u' = <e_u, v1> v1 with v1 from torch's SVD of [e_u; e_c]; D = D_u' + w (D_c - D_u')."""
    for _, target, _ in (vector, pictures):
        x, s, c, u = at(target, n=8)
        w = 4.0
        out = once(TERMS["tcfg"](weight=w), target, x, s)
        for i in range(len(x)):
            e_u, e_c = (x[i] - u[i]).reshape(-1), (x[i] - c[i]).reshape(-1)
            v1 = torch.linalg.svd(torch.stack([e_u, e_c]), full_matrices=False).Vh[0]
            damped = x[i] - ((e_u @ v1) * v1).reshape(x[i].shape)
            assert torch.allclose(out[i], damped + w * (c[i] - damped), atol=1e-9)
    # where the two noise predictions are parallel nothing is tangential: tcfg is cfg
    x, s, c, _ = at(vector[1], n=4)
    parallel = GuidanceContext(vector[1], x, s, {}, c)
    parallel._unconditional = x - 0.5 * (x - c)
    cfg = parallel._unconditional + 3.0 * (c - parallel._unconditional)
    assert torch.allclose(TERMS["tcfg"](weight=3.0).apply(parallel, c, None), cfg, atol=1e-10)


def test_mahiro_blends_cfg_and_the_leap_by_the_channel_cosine(pictures):
    """ComfyUI's rule for one picture: sim = mean over pixels of the cosine over channels of the sign-square-rooted
    w D_u and (w D_c + cfg) / 2; D = (2 (sim + 1) cfg + (2 - 2 sim) w D_c) / 4. Per item: a batch of two is guided
    as each alone."""
    _, target, _ = pictures
    x, s, c, u = at(target, n=2)
    w = 6.0
    out = once(TERMS["mahiro"](weight=w), target, x, s)
    for i in range(2):
        cfg, leap = u[i] + w * (c[i] - u[i]), w * c[i]
        a = (w * u[i]).abs().sqrt() * (w * u[i]).sign()
        b = ((leap + cfg) / 2).abs().sqrt() * ((leap + cfg) / 2).sign()
        cos = (a * b).sum(0) / (a.square().sum(0).sqrt() * b.square().sum(0).sqrt())  # [H, W]
        sim = float(cos.mean())
        assert torch.allclose(out[i], (2 * (sim + 1) * cfg + (2 - 2 * sim) * leap) / 4, atol=1e-9)
        assert torch.allclose(once(TERMS["mahiro"](weight=w), target, x[i:i + 1], s[i:i + 1])[0], out[i], atol=1e-12)


def test_perp_neg_removes_only_the_perpendicular_part_of_the_negative(vector):
    _, target, negative = vector
    x, s, c, u = at(target)
    n = negative.denoiser(x, s)
    w, k = 4.0, 0.7
    out = once(TERMS["perp_neg"](weight=w, neg_scale=k, negative=negative), target, x, s)
    pos, neg = c - u, n - u
    removed = (u + w * pos - out) / (w * k)  # the perpendicular part, by the formula
    assert float(dot(removed, pos).abs().max()) < 1e-9 * float(dot(pos, pos).max())  # perpendicular to pos
    rest = neg - removed  # what is left of the negative lies along pos
    cross = rest[:, 0] * pos[:, 1] - rest[:, 1] * pos[:, 0]
    assert float(cross.abs().max()) < 1e-9
    assert float(removed.norm(dim=1).max()) > 0.1  # not vacuous: the negative has a perpendicular part here
    # neg_scale 0 is plain cfg
    assert torch.allclose(once(TERMS["perp_neg"](weight=w, neg_scale=0.0, negative=negative), target, x, s),
                          u + w * pos, atol=1e-10)


def test_laplacian_pyramid_puts_pictures_back_exactly():
    x = torch.randn(2, 3, 15, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for levels in (2, 3, 8):
        bands = laplacian_pyramid(x, levels)
        assert len(bands) <= levels and bands[-1].shape[-1] < x.shape[-1]
        assert torch.allclose(from_pyramid(bands), x, atol=1e-12)


def test_fdg_weights_each_band_by_its_own_scale(pictures):
    """Equal weights are cfg; a difference constant over the picture lives in the coarse band only (low_weight);
    a checkerboard (the highest frequency) mostly in the fine band (weight)."""
    _, target, _ = pictures
    x, s, c, u = at(target, n=4)
    assert torch.allclose(once(TERMS["fdg"](weight=5.0, low_weight=5.0, levels=3), target, x, s), u + 5.0 * (c - u),
                          atol=1e-10)
    ctx = GuidanceContext(target, x, s, {}, c)
    ctx._unconditional = u
    flat = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64).view(1, 3, 1, 1).expand_as(u)
    term = TERMS["fdg"](weight=8.0, low_weight=2.0)
    assert torch.allclose(term.apply(ctx, u + flat, None), u + 2.0 * flat, atol=1e-12)
    i, j = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = ((-1.0) ** (i + j)).to(torch.float64).expand_as(u) * 0.1
    gain = dot(term.apply(ctx, u + checker, None) - u, checker) / dot(checker, checker)
    assert bool((gain > 8.0 - 0.2 * (8.0 - 2.0)).all()), gain


def test_fresca_scales_each_frequency_by_its_side_of_the_cutoff(pictures):
    """A cosine of k cycles across the picture is scaled by scale_low when k < cutoff, by scale_high when not."""
    _, target, _ = pictures
    x, s, c, u = at(target, n=1)
    ctx = GuidanceContext(target, x, s, {}, c)
    ctx._unconditional = u
    term = TERMS["fresca"](scale_low=0.5, scale_high=1.75, freq_cutoff=3)
    columns = torch.arange(16, dtype=torch.float64)
    for k in range(0, 9):
        wave = torch.cos(2 * math.pi * k * columns / 16).expand(1, 3, 16, 16)
        expected = 0.5 if k < 3 else 1.75
        assert torch.allclose(term.apply(ctx, u + wave, None), u + expected * wave, atol=1e-12), k
    # linear in the difference, so it commutes with cfg
    chain_a = GuidanceChain((term, CFG(weight=4.0))).wrap(target, SIGMA_MAX, SIGMA_MIN)
    chain_b = GuidanceChain((CFG(weight=4.0), term)).wrap(target, SIGMA_MAX, SIGMA_MIN)
    assert torch.allclose(chain_a(x, s), chain_b(x, s), atol=1e-10)


def test_frequency_terms_refuse_targets_without_pictures(vector):
    _, target, _ = vector
    for kind in PICTURE_KINDS:
        with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\).*needs pictures or latents"):
            GuidanceChain((TERMS[kind](),)).check(target)


def test_perp_neg_refuses_a_missing_or_mismatched_negative(vector, pictures):
    _, target, _ = vector
    with pytest.raises(ValueError, match=r"GuidanceStep \(perp_neg\): negative=None"):
        GuidanceChain((TERMS["perp_neg"](),)).check(target)
    with pytest.raises(ValueError, match=r"GuidanceStep \(perp_neg\): negative=.*space 'pixels'"):
        GuidanceChain((TERMS["perp_neg"](negative=pictures[2]),)).check(target)


# ---------------------------------------------------------------- interval and schedules


@pytest.mark.parametrize("kind", KINDS)
def test_interval_and_schedule_act_as_for_every_term(kind, vector, pictures):
    """Active exactly on its sigma interval in a walk; a linear schedule scales the term's change by a factor
    falling from 1 to 0 across the interval."""
    _, target, negative = setup(kind, vector, pictures)
    params = active(kind, negative)
    term = TERMS[kind](**params, start_percent=0.3, end_percent=0.6)
    hi, lo = term.sigma_interval(target.sigma_max, target.sigma_min)
    result = walk(target, GuidanceChain().plus(term), walk="euler", steps=20, batch_size=4)
    assert all(("1:" + kind in r.norms) == (lo <= r.sigma <= hi) for r in result.guidance)
    assert any("1:" + kind in r.norms for r in result.guidance)
    full = GuidanceChain().plus(TERMS[kind](**params, start_percent=0.3, end_percent=0.6)).wrap(
        target, target.sigma_max, target.sigma_min)
    faded = GuidanceChain().plus(TERMS[kind](**params, start_percent=0.3, end_percent=0.6, schedule="linear")).wrap(
        target, target.sigma_max, target.sigma_min)
    previous = 1.0 + 1e-9
    for sigma in torch.logspace(math.log10(hi), math.log10(lo), 5).tolist():
        x, s, c, _ = at(target, n=4, sigma=sigma)
        change, whole = faded(x, s) - c, full(x, s) - c
        factor = float(dot(change, whole).sum() / dot(whole, whole).sum())
        assert torch.allclose(change, factor * whole, atol=1e-9)
        assert -1e-9 <= factor <= previous
        previous = factor
    assert previous == pytest.approx(0.0, abs=1e-6)  # at the interval's end (sigma rounded through logspace)


# ---------------------------------------------------------------- effect


@pytest.mark.parametrize("kind", VECTOR_KINDS)
def test_scale_four_guides_towards_the_class(kind, vector):
    """At scale 4 every CFG variant raises class precision well above the unguided walk's on the overlapping 2-D
    classes. (On the picture mixtures the classes barely overlap, so precision is 1 without guidance: FDG's and
    FreSca's effect there is measured in docs/BENCHMARKS.md, section guidance-variants.)"""
    mixture, target, negative = vector
    n = 600
    request = dict(steps=30, batch_size=n, seed=101)

    def precision(chain):
        x = walk(target, chain, **request).x.double()
        in_class = mixture.responsibilities(x, 0.0)[:, mixture.labels == 0].sum(1)
        return float((in_class > 0.5).double().mean())

    plain = precision(GuidanceChain())
    ours = precision(GuidanceChain().plus(TERMS[kind](**active(kind, negative))))
    se = math.sqrt((plain * (1 - plain) + ours * (1 - ours)) / n)  # of the difference of the two fractions
    assert ours > plain + Z_MAX * se and ours > 0.97, (plain, ours)
