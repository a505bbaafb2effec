"""PerpNeg's negative prompt on a MODEL target (nodes/comfy_negative.py), on the stand-in ComfyUI of
tests/comfy_standins.py: the negative prompt becomes one more prepared cond of the same guider, and the chain's
result is the Perp-Neg formula on the model's three predictions."""
from __future__ import annotations

import pytest
import torch

import comfy_standins as cs
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes.comfy_guider import GuidedPrediction, make_guider
from rwalk.walk_core.guidance import TERMS, GuidanceChain


def model_target(model, positive, negative):
    node = NODE_CLASS_MAPPINGS["TargetDistributionModel"]()
    return node.make(model, cs.conditioning(positive), cs.conditioning(negative))[0].at_size(16, 16)


def test_perp_neg_evaluates_the_negative_prompt_with_the_same_model(fake_comfy):
    model = cs.ModelPatcher("eps", 0.7)
    walked = model_target(model, 0.5, 0.0)  # the empty prompt as the walked target's negative
    negative = model_target(model, -0.8, 0.0)  # the negative prompt as a second target's positive
    w, k = 3.0, 0.6
    chain = GuidanceChain().plus(TERMS["perp_neg"](weight=w, neg_scale=k, negative=negative))
    guider = make_guider(walked, chain)
    assert set(guider.original_conds) == {"positive", "negative", "walk_negative_0"}
    pred = GuidedPrediction(walked, chain, 14.6, 0.03, cs.calc_cond_batch)
    conds = {"positive": [{"mean": 0.5}], "negative": [{"mean": 0.0}], "walk_negative_0": [{"mean": -0.8}]}
    x = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    sigma = torch.full((2,), 2.0)
    out = pred(model.model, conds, x, sigma, {})
    c, u, n = (model.model.model_sampling.exact_denoised(x, sigma, mean, 0.7) for mean in (0.5, 0.0, -0.8))
    pos, neg = c - u, n - u
    along = (neg * pos).flatten(1).sum(1) / pos.flatten(1).square().sum(1)
    perp = neg - along.view(-1, 1, 1, 1) * pos
    assert torch.allclose(out, u + w * (pos - k * perp), atol=1e-5)


def test_perp_neg_refuses_a_negative_of_another_model(fake_comfy):
    walked = model_target(cs.ModelPatcher("eps", 0.7), 0.5, 0.0)
    negative = model_target(cs.ModelPatcher("eps", 0.7), -0.8, 0.0)
    chain = GuidanceChain().plus(TERMS["perp_neg"](negative=negative))
    with pytest.raises(ValueError, match=r"GuidanceStep \(perp_neg\): negative .* another MODEL"):
        make_guider(walked, chain)


def test_a_model_negative_of_another_size_is_used_at_the_walked_size(fake_comfy):
    """WalkGuider walks at the latent's size; the negative target (made at its default size) follows it."""
    model = cs.ModelPatcher("eps", 0.7)
    walked = model_target(model, 0.5, 0.0)  # 16 x 16 px: a 2 x 2 latent
    node = NODE_CLASS_MAPPINGS["TargetDistributionModel"]()
    negative = node.make(model, cs.conditioning(-0.8), cs.conditioning(0.0))[0]  # the node's default size
    assert tuple(negative.shape) != tuple(walked.shape)
    GuidanceChain().plus(TERMS["perp_neg"](negative=negative)).check(walked)
