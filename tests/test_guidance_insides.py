"""PAG, SEG, SAG, SLG and SWG: the terms that perturb the model's insides, without ComfyUI.

Targets without attention (mixtures, patch targets) refuse them before anything runs. On a MODEL target the
chain asks the guider's view for perturbed predictions, which nodes/comfy_perturb.py makes into ComfyUI's
attention and block patches: checked here against a one-layer attention network that honours those patches
the way ComfyUI's transformer block does (tests/perturbed_standins.py), each term's result against a direct
computation in float64. The equality with ComfyUI's own PAG and SAG nodes on a real UNet is in
test_comfyui_integration.py.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

import comfy_standins as cs
from perturbed_standins import AttentionCalc
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes.comfy_guider import GuidedPrediction
from rwalk.nodes.comfy_perturb import blur_queries, gaussian_matrix, layer_grid
from rwalk.walk_core.guidance import CFG, TERMS, GuidanceChain
from rwalk.walk_core.guidance.perturbed import PAG, SEG, SLG, Perturbation, parse_layers
from rwalk.walk_core.guidance.sag import SAG, degrade, gaussian_blur_reflect, token_grid
from rwalk.walk_core.guidance.swg import SWG, windows
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets import GaussianMixture, exact_target
from rwalk.walk_core.targets.patch import PatchSpec, patch_target

INSIDES = ("pag", "seg", "sag", "slg", "swg")
TOL = 1e-10  # float64 results of a few hundred operations
POSITIVE, NEGATIVE = 0.5, -0.5


# -- refused where there is no network ----------------------------------------------------------------------
def mixture():
    means = torch.tensor([[-1.0] * 12, [1.0] * 12]).reshape(2, 3, 2, 2)
    return exact_target(GaussianMixture([1.0, 1.0], means, 0.1, labels=[0, 1]), 1, space="pixels",
                        sigma_min=0.01, sigma_max=10.0, name="two blobs")


def patches():
    picture = reference_image("bricks", 32, 32, 0) * 2 - 1
    return patch_target(PatchSpec(picture[None]), 32, 32)


@pytest.mark.parametrize("kind", INSIDES)
@pytest.mark.parametrize("make", [mixture, patches], ids=["mixture", "patches"])
def test_terms_refuse_targets_without_attention(kind, make):
    target = make()
    with pytest.raises(ValueError, match=rf"GuidanceStep \({kind}\): target '{target.name}' has no attention"):
        GuidanceChain((TERMS[kind](),)).check(target)


def test_refused_before_the_first_evaluation():
    calls = []
    target = mixture()
    counted = replace(target, denoiser=lambda x, s, **k: calls.append(1) or x)
    with pytest.raises(ValueError, match="has no attention"):
        run_walk(counted, WalkRequest(walk="euler", steps=3, seed=0, batch_size=1), GuidanceChain((PAG(),)))
    assert calls == []


# -- parameters ---------------------------------------------------------------------------------------------
def test_layers_parse_unet_and_dit_names():
    assert parse_layers(PAG(), "middle:0, output:1,input : 4, 7, single:3") == (
        ("middle", 0), ("output", 1), ("input", 4), ("double", 7), ("single", 3))


BAD = [(PAG, "layers", ""), (PAG, "layers", "top:1"), (PAG, "layers", "middle:0, middle:0"),
       (SLG, "layers", "7, x"), (SEG, "blur_sigma", -1.0), (SEG, "blur_sigma", float("inf")),
       (SAG, "layers", "middle:0, output:1"), (SAG, "blur_sigma", 0.0), (SWG, "window", 0.1), (SWG, "window", 1.5)]


@pytest.mark.parametrize("cls,name,value", BAD, ids=[f"{c.kind}-{n}-{v}" for c, n, v in BAD])
def test_bad_parameters_name_the_term_and_field(cls, name, value):
    with pytest.raises(ValueError, match=rf"GuidanceStep \({cls.kind}\): {name}="):
        cls(**{name: value})


# -- the MODEL bridge on a one-layer attention network -------------------------------------------------------
def model_target():
    node = NODE_CLASS_MAPPINGS["TargetDistributionModel"]()
    tgt = node.make(cs.ModelPatcher("eps"), cs.conditioning(POSITIVE), cs.conditioning(NEGATIVE))[0]
    return tgt.at_size(64, 64)


CONDS = {"positive": [{"mean": POSITIVE}], "negative": [{"mean": NEGATIVE}]}
OPTIONS = {"transformer_options": {"patches_replace": {"attn2": {("output", 1): "theirs"}}}}


def evaluate(terms, calc=None, x=None, sigma=2.0):
    """One evaluation of CFG 3 + ``terms`` through the guider's prediction; (result, calc, x, options after),
    ``calc.calls`` the calls that evaluation made."""
    calc = calc or AttentionCalc()
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64) if x is None else x
    options = copy.deepcopy(OPTIONS)
    pred = GuidedPrediction(model_target(), GuidanceChain((CFG(3.0),) + tuple(terms)), 14.6, 0.03, calc)
    out = pred(object(), CONDS, x, torch.full((x.shape[0],), sigma, dtype=x.dtype), options)
    made, calc.calls = calc.calls, []
    return out, calc, x, options, made


def parts(calc, x):
    """The network's pieces at x: tokens, q, k, v [B, N, C]."""
    tokens = x.flatten(2).transpose(1, 2)
    return tokens, tokens @ calc.wq, tokens @ calc.wk, tokens @ calc.wv


def predict(mean, tokens, attended, like):
    b, c, h, w = like.shape
    return mean + 0.5 * torch.tanh(tokens + attended).transpose(1, 2).reshape(b, c, h, w)


def cfg3(calc, x):
    c, u = calc(None, [CONDS["positive"], CONDS["negative"]], x, None, {})
    return c, u + 3.0 * (c - u)


def close(a, b):
    return float((a - b).abs().max()) <= TOL


def test_pag_guides_away_from_identity_attention_and_leaves_the_models_options_alone():
    out, calc, x, options, made = evaluate([PAG(weight=2.0)])
    c, guided = cfg3(calc, x)
    tokens, _, _, v = parts(calc, x)
    assert close(out, guided + 2.0 * (c - predict(POSITIVE, tokens, v, x)))
    assert options == OPTIONS  # the patch lived in a copy for one call
    assert made == [(2, False), (2, True)]  # cond + uncond in one call, then one patched cond call


def test_seg_without_blur_is_nothing_and_infinite_blur_is_the_mean_query():
    none, calc, x, _, _ = evaluate([SEG(blur_sigma=0.0)])
    assert close(none, cfg3(calc, x)[1])
    out, calc, x, _, _ = evaluate([SEG(weight=2.0, blur_sigma=1e5)])
    c, guided = cfg3(calc, x)
    tokens, q, k, v = parts(calc, x)
    mean_query = q.mean(1, keepdim=True).expand_as(q)
    assert close(out, guided + 2.0 * (c - predict(POSITIVE, tokens, AttentionCalc.attention(mean_query, k, v), x)))


def test_seg_blur_is_a_gaussian_on_the_layer_grid():
    q = torch.randn(1, 12, 2, dtype=torch.float64)  # a 3 x 4 grid of 2 channels
    blurred = blur_queries(q, 1.0, [1, 4, 3, 4])
    grid = q.reshape(3, 4, 2)
    rows, cols = gaussian_matrix(3, 1.0, q), gaussian_matrix(4, 1.0, q)
    assert torch.allclose(rows.sum(1), torch.ones(3, dtype=q.dtype))
    assert float(rows[0, 1] / rows[0, 0]) == pytest.approx(torch.exp(torch.tensor(-0.5)).item())
    assert torch.allclose(blurred.reshape(3, 4, 2), torch.einsum("ij,jkc,lk->ilc", rows, grid, cols))
    assert layer_grid(12, [1, 4, 6, 8]) == (3, 4)  # halved once, rounding up
    assert layer_grid(6, [1, 4, 3, 8]) == (2, 3) == token_grid(6, 3, 8)  # halved once; as SAG's grid


def test_slg_on_a_unet_drops_the_blocks_self_attention():
    out, calc, x, _, _ = evaluate([SLG(weight=1.5, layers="middle:0")])
    c, guided = cfg3(calc, x)
    tokens = parts(calc, x)[0]
    assert close(out, guided + 1.5 * (c - predict(POSITIVE, tokens, torch.zeros_like(tokens), x)))


@pytest.mark.parametrize("term,message", [
    (PAG(layers="output:3"), r"GuidanceStep \(pag\): layers=output:3 not found in this model"),
    (SLG(), r"GuidanceStep \(slg\): layers=double:7, double:8, double:9 not found.*UNet .*middle:0"),
    (PAG(layers="7"), r"GuidanceStep \(pag\): layers names double:7, a DiT block"),
])
def test_a_layer_the_model_lacks_is_an_error_not_a_no_op(term, message):
    with pytest.raises(ValueError, match=message):
        evaluate([term])


def test_sag_blurs_where_the_unconditional_attention_looks_and_guides_away():
    out, calc, x, _, _ = evaluate([SAG(weight=0.8, blur_sigma=1.5)])
    guided = cfg3(calc, x)[1]
    tokens, q, k, v = parts(calc, x)
    heads = [t.reshape(2, 64, 2, 2).transpose(1, 2) for t in (q, k, v)]
    probs = torch.softmax(heads[0] @ heads[1].transpose(-1, -2) / 2 ** 0.5, dim=-1)  # [B, heads, N, N]
    received = probs.mean(1).sum(1)  # [B, N]
    x0_u = predict(NEGATIVE, tokens, AttentionCalc.attention(q, k, v), x)
    assert 0 < int((received > 1).sum()) < received.numel()  # the mask is neither empty nor full
    degraded = degrade(x0_u, received, 1.5)
    answer = calc(None, [CONDS["negative"]], degraded + (x - x0_u), None, {})[0]
    assert close(out, guided + 0.8 * (degraded - answer))


def test_sag_blur_matches_a_direct_two_dimensional_gaussian():
    x = torch.randn(1, 2, 9, 10, dtype=torch.float64)
    t = torch.linspace(-4, 4, 9, dtype=torch.float64)
    k1 = torch.exp(-0.5 * (t / 2.0) ** 2)
    k2 = torch.outer(k1, k1) / k1.sum() ** 2
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    direct = torch.nn.functional.conv2d(padded, k2.expand(2, 1, 9, 9), groups=2)
    assert torch.allclose(gaussian_blur_reflect(x, 2.0), direct, atol=1e-12)
    assert gaussian_blur_reflect(torch.ones(1, 1, 2, 3, dtype=torch.float64), 2.0).shape == (1, 1, 2, 3)


def test_swg_stitches_the_windows_and_a_full_window_is_nothing():
    whole, calc, x, _, _ = evaluate([SWG(window=1.0)])
    assert close(whole, cfg3(calc, x)[1])
    assert windows(8, 8, 0.75) == (6, 6, [(0, 0), (0, 2), (2, 0), (2, 2)])
    out, calc, x, _, _ = evaluate([SWG(weight=1.5, window=0.75)])
    c, guided = cfg3(calc, x)
    total, count = torch.zeros_like(x), torch.zeros_like(x)
    for top, left in windows(8, 8, 0.75)[2]:
        crop = x[..., top:top + 6, left:left + 6]
        total[..., top:top + 6, left:left + 6] += calc(None, [CONDS["positive"]], crop, None, {})[0]
        count[..., top:top + 6, left:left + 6] += 1
    assert close(out, guided + 1.5 * (c - total / count))
    assert not close(out, guided)  # the attention network is not local: the windows see less


@pytest.mark.parametrize("kind", INSIDES)
def test_weight_zero_is_the_identity_and_costs_nothing(kind):
    out, calc, x, _, made = evaluate([TERMS[kind](weight=0.0, **({"layers": "middle:0"} if kind == "slg" else {}))])
    assert close(out, cfg3(calc, x)[1]) and len(made) == 1


def test_perturbation_values_are_checked():
    with pytest.raises(ValueError, match="kind='swap'"):
        Perturbation("swap")
    with pytest.raises(ValueError, match="branch='both'"):
        Perturbation("plain", branch="both")
