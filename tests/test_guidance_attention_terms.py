"""TPG, NAG and PLADIS (issue 32): the model-insides terms that shuffle tokens or change the cross-attention.

Checked without ComfyUI on a one-block network with a self- and a cross-attention that honours ComfyUI's patches
as its transformer block does (tests/cross_attention_standins.py): each term's result against a direct
computation in float64 (TPG: the network run on x with its pixels permuted -- the block is permutation
equivariant, so shuffling after the self-attention is shuffling the block's input; NAG and PLADIS: the
cross-attention written out here), neutral settings, refusals. The real-UNet checks are in
test_comfyui_integration.py (model_guidance).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import comfy_standins as cs
from cross_attention_standins import CrossCalc, attention, prompt, unet
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes.comfy_cross_attention import _item_generator
from rwalk.nodes.comfy_guider import GuidedPrediction
from rwalk.walk_core.guidance import CFG, TERMS, GuidanceChain
from rwalk.walk_core.guidance.attention_terms import NAG, PLADIS, SEED_STREAM, TPG, shuffle_seeds
from rwalk.walk_core.guidance.sparse_attention import entmax15, sparsemax
from rwalk.walk_core.targets import GaussianMixture, exact_target

TOL = 1e-10
POSITIVE, NEGATIVE = 0.5, -0.5
CONDS = {"positive": prompt(POSITIVE, 5, seed=1), "negative": prompt(NEGATIVE, 7, seed=2)}


def model_target():
    node = NODE_CLASS_MAPPINGS["TargetDistributionModel"]()
    tgt = node.make(cs.ModelPatcher("eps"), cs.conditioning(POSITIVE), cs.conditioning(NEGATIVE))[0]
    return tgt.at_size(64, 64)


def evaluate(terms, conds=CONDS, model=None, options=None):
    """One evaluation of the chain ``terms`` through the guider's prediction: (result, calc, x, calls)."""
    calc = CrossCalc()
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    pred = GuidedPrediction(model_target(), GuidanceChain(tuple(terms)), 14.6, 0.03, calc)
    out = pred(unet() if model is None else model, conds, x, torch.full((2,), 2.0, dtype=x.dtype), options or {})
    return out, calc, x, calc.calls


def plain(calc, x, key="positive"):
    c = conds_of(key)
    return calc.predict(c["mean"], x, c["model_conds"]["c_crossattn"].cond)


def conds_of(key):
    return CONDS[key][0]


def close(a, b, tol=TOL):
    return float((a - b).abs().max()) <= tol


# ---------------------------------------------------------------- TPG


def test_tpg_guides_away_from_the_prediction_with_shuffled_tokens():
    out, calc, x, calls = evaluate([TPG(weight=2.0, layers="middle:0")])
    c = plain(calc, x)
    b, ch, h, w = x.shape
    tokens = x.flatten(2).transpose(1, 2)
    shuffled = torch.stack([tokens[i, torch.randperm(h * w, generator=_item_generator(seed, ("middle", 0), 0))]
                            for i, seed in enumerate(_seeds(x))])
    worse = plain(calc, shuffled.transpose(1, 2).reshape(b, ch, h, w))
    assert close(out, c + 2.0 * (c - worse))
    assert not close(worse, c, 1e-3) and calls == [2, 2]  # the conditional, then one shuffled call


def _seeds(x):
    """The seeds TPG draws item i's permutation from at sigma 2 when the walk's seeds are unknown (item index)."""
    return [(i * 1_000_003 + 2_000_000 + SEED_STREAM) % (2 ** 63) for i in range(x.shape[0])]


def test_tpg_permutations_are_reproducible_and_change_with_the_noise_level():
    a = evaluate([TPG(layers="middle:0")])[0]
    assert torch.equal(a, evaluate([TPG(layers="middle:0")])[0])
    def ctx(seeds, sigma):
        return SimpleNamespace(seeds=seeds, sigma=torch.tensor([sigma]))

    assert shuffle_seeds(ctx((5, 6), 2.0), 2) != shuffle_seeds(ctx((5, 6), 1.0), 2)  # a new shuffle every step
    assert shuffle_seeds(ctx((5, 6), 2.0), 2)[1] == shuffle_seeds(ctx((6,), 2.0), 1)[0]  # item i's: batch-free


def test_tpg_layer_without_a_transformer_is_an_error():
    with pytest.raises(ValueError, match=r"GuidanceStep \(tpg\): layers=input:7, input:8 have no transformer block"):
        evaluate([TPG()])


# ---------------------------------------------------------------- NAG


def nag_direct(q, k, v, tokens_neg, w, tau, alpha):
    """NAG's rule written out per token, heads merged: extrapolate, cap the L1 ratio at tau, blend."""
    kp, vp, kn, vn = k[:, :-tokens_neg], v[:, :-tokens_neg], k[:, -tokens_neg:], v[:, -tokens_neg:]
    zp, zn = attention(q, kp, vp), attention(q, kn, vn)
    zt = zp + w * (zp - zn)
    ratio = zt.abs().sum(-1, keepdim=True) / zp.abs().sum(-1, keepdim=True)
    zh = torch.where(ratio > tau, zt / ratio * tau, zt)
    return alpha * zh + (1 - alpha) * zp, ratio


def test_nag_replaces_the_conditional_prediction_and_cfg_then_amplifies_it():
    w, tau, alpha = 1.0, 2.5, 0.6
    out, calc, x, calls = evaluate([NAG(weight=w, tau=tau, alpha=alpha), CFG(3.0)])
    neg_ctx = conds_of("negative")["model_conds"]["c_crossattn"].cond
    ratios = []

    def cross(q, k, v):  # k, v hold the positive's 5 tokens then the negative's 7 (the negative appended)
        mixed, ratio = nag_direct(q, k, v, neg_ctx.shape[1], w, tau, alpha)
        ratios.append(ratio)
        return mixed

    pos_ctx = conds_of("positive")["model_conds"]["c_crossattn"].cond
    both = torch.cat([pos_ctx, neg_ctx], dim=1)
    better = calc.predict(POSITIVE, x, both, cross=cross)
    u = plain(calc, x, "negative")
    assert close(out, u + 3.0 * (better - u))
    assert 0 < int((ratios[0] > tau).sum()) < ratios[0].numel()  # the cap acted on some tokens, not all
    assert calls == [2, 2]  # the conditional and unconditional in one call, then NAG's pass


@pytest.mark.parametrize("neutral", [dict(weight=0.0), dict(alpha=0.0)])
def test_nag_neutral_settings_change_nothing_and_cost_nothing(neutral):
    out, calc, x, calls = evaluate([NAG(**neutral)])
    assert close(out, plain(calc, x)) and calls == [2]


def test_nag_needs_the_negative_prompt():
    with pytest.raises(ValueError, match=r"GuidanceStep \(nag\): the MODEL target has no negative prompt"):
        evaluate([NAG()], conds={"positive": CONDS["positive"], "negative": None})


# ---------------------------------------------------------------- PLADIS


@pytest.mark.parametrize("sparse,fn", [("entmax15", entmax15), ("sparsemax", sparsemax)])
def test_pladis_extrapolates_the_cross_attention_map_towards_the_sparse_one(sparse, fn):
    w = 1.7
    out, calc, x, calls = evaluate([PLADIS(weight=w, sparse=sparse)])

    def cross(q, k, v):
        b, n, c = q.shape
        qh, kh, vh = (t.reshape(b, t.shape[1], 2, c // 2).transpose(1, 2) for t in (q, k, v))
        scores = qh @ kh.transpose(-1, -2) / (c // 2) ** 0.5
        dense = torch.softmax(scores, -1)
        return ((dense + w * (fn(scores) - dense)) @ vh).transpose(1, 2).reshape(b, n, c)

    ctx = conds_of("positive")["model_conds"]["c_crossattn"].cond
    assert close(out, calc.predict(POSITIVE, x, ctx, cross=cross))
    assert not close(out, plain(calc, x), 1e-3) and calls == [2, 2]


def test_pladis_weight_zero_is_the_identity():
    out, calc, x, calls = evaluate([PLADIS(weight=0.0)])
    assert close(out, plain(calc, x)) and calls == [2]


def test_sparsemax_is_the_projection_onto_the_simplex():
    z = torch.randn(50, 9, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2
    p = sparsemax(z)
    assert torch.allclose(p.sum(-1), torch.ones(50, dtype=z.dtype)) and bool((p >= 0).all())
    tau = (z - p)[p > 0].reshape(-1)  # on the support p = z - tau with one tau per row
    rows = torch.arange(50)[:, None].expand_as(z)[p > 0]
    for r in range(50):
        t = tau[rows == r]
        assert float(t.max() - t.min()) < 1e-12 and bool((z[r][p[r] == 0] <= t[0] + 1e-12).all())
    assert int((p == 0).sum()) > 0  # sparse: exact zeros


def test_entmax15_solves_its_threshold_equation():
    """p = [z/2 - tau]_+^2 with sum p = 1: tau found here by bisection agrees with the sort-based solution."""
    z = torch.randn(30, 12, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 3
    p = entmax15(z)
    y = (z - z.amax(-1, keepdim=True)) / 2
    lo, hi = y.amax(-1, keepdim=True) - 1.0, y.amax(-1, keepdim=True)
    for _ in range(200):
        mid = (lo + hi) / 2
        total = (y - mid).clamp_min(0).square().sum(-1, keepdim=True)
        lo, hi = torch.where(total > 1, mid, lo), torch.where(total > 1, hi, mid)
    assert torch.allclose(p, (y - lo).clamp_min(0).square(), atol=1e-12)
    assert int((p == 0).sum()) > 0 and torch.allclose(p.sum(-1), torch.ones(30, dtype=z.dtype))
    # softmax limit: scores all equal give the uniform distribution
    assert torch.allclose(entmax15(torch.zeros(1, 4)), torch.full((1, 4), 0.25))


# ---------------------------------------------------------------- refusals and parameters


@pytest.mark.parametrize("kind", ["nag", "pladis"])
def test_cross_attention_terms_refuse_a_network_that_is_not_a_unet(kind):
    with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\): this model is not a UNet"):
        evaluate([TERMS[kind]()], model=object())


@pytest.mark.parametrize("kind", ["nag", "pladis"])
def test_cross_attention_terms_refuse_another_nodes_cross_attention_patch(kind):
    theirs = lambda q, k, v, extra: attention(q, k, v)  # noqa: E731  (another node's replacement, e.g. IPAdapter)
    options = {"transformer_options": {"patches_replace": {"attn2": {("middle", 0, 0): theirs}}}}
    with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\): the MODEL already replaces the cross-attention "
                                         "of middle:0"):
        evaluate([TERMS[kind]()], options=options)


@pytest.mark.parametrize("kind", ["tpg", "nag", "pladis", "cfg_norm"])
def test_terms_on_targets_without_attention(kind):
    means = torch.tensor([[-1.0] * 12, [1.0] * 12]).reshape(2, 3, 2, 2)
    target = exact_target(GaussianMixture([1.0, 1.0], means, 0.1, labels=[0, 1]), 1, space="pixels",
                          sigma_min=0.01, sigma_max=10.0, name="two blobs")
    chain = GuidanceChain((TERMS[kind](),))
    if kind == "cfg_norm":
        chain.check(target)  # needs only the outputs
        return
    with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\): target 'two blobs, class 1' has no attention"):
        chain.check(target)


BAD = [(TPG, "layers", "top:1"), (NAG, "tau", 0.5), (NAG, "alpha", 1.5), (NAG, "weight", -1.0),
       (PLADIS, "sparse", "softmax")]


@pytest.mark.parametrize("cls,name,value", BAD, ids=[f"{c.kind}-{n}-{v}" for c, n, v in BAD])
def test_bad_parameters_name_the_term_and_field(cls, name, value):
    with pytest.raises(ValueError, match=rf"GuidanceStep \({cls.kind}\): {name}="):
        cls(**{name: value})
