"""CFGNorm (ComfyUI's core node) checked on an exact class-conditional mixture of pictures (issue 32).

Its neutral setting (strength 1 on the conditional prediction alone) is the identity; after cfg its formula holds
position by position (written here with loops, and as ComfyUI writes it, with its 1e-8); it never makes an
estimate longer than the conditional prediction at a position and keeps the direction; its sigma interval and
strength schedule act as for every term. Float64, so tolerances are roundoff.
"""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import GuidanceChain, WalkRequest, run_walk
from rwalk.walk_core.guidance import CFG, TERMS
from rwalk.walk_core.targets import exact_target

from exact_targets import image_3x16x16

SIGMA_MAX, SIGMA_MIN = 80.0, 0.002
CFGNorm = TERMS["cfg_norm"]


@pytest.fixture(scope="module")
def target():
    return exact_target(image_3x16x16(k=6, rank=3, labels=[0, 1, 2, 0, 1, 2]), 1, space="pixels")


def at(target, n=4, sigma=0.7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n,) + tuple(target.shape), generator=g, dtype=torch.float64) * math.sqrt(1 + sigma ** 2)
    s = torch.full((n,), sigma, dtype=torch.float64)
    return x, s, target.denoiser(x, s), target.unconditional(x, s)


def once(terms, target, x, s):
    return GuidanceChain(tuple(terms)).wrap(target, SIGMA_MAX, SIGMA_MIN)(x, s)


def test_strength_one_on_the_conditional_prediction_is_the_identity(target):
    x, s, c, _ = at(target)
    assert torch.allclose(once([CFGNorm()], target, x, s), c, atol=1e-14)
    request = WalkRequest(walk="euler_ancestral", steps=20, batch_size=8, seed=5)
    plain = run_walk(target, request, GuidanceChain()).x
    assert torch.allclose(run_walk(target, request, GuidanceChain((CFGNorm(),))).x, plain, atol=1e-5)


def test_after_cfg_each_position_is_capped_at_the_conditional_length(target):
    x, s, c, u = at(target)
    cfg = u + 6.0 * (c - u)
    out = once([CFG(6.0), CFGNorm(weight=0.8)], target, x, s)
    capped = 0
    for i in range(x.shape[0]):
        for r in range(16):
            for k in range(16):
                now, want = cfg[i, :, r, k], c[i, :, r, k]
                factor = min(1.0, float(want.norm()) / float(now.norm()))
                capped += factor < 1.0
                assert torch.allclose(out[i, :, r, k], 0.8 * factor * now, atol=1e-12)
    assert 0 < capped < x.shape[0] * 256  # the cap acted on some positions, not all
    # ComfyUI's node: pred * clamp(|cond| / (|pred| + 1e-8), 0, 1) * strength, norms over dim 1
    comfy = cfg * (c.norm(dim=1, keepdim=True) / (cfg.norm(dim=1, keepdim=True) + 1e-8)).clamp(0, 1) * 0.8
    assert torch.allclose(out, comfy, atol=1e-7)


def test_it_never_lengthens_and_keeps_the_direction(target):
    x, s, c, u = at(target, sigma=3.0)
    cfg = u + 8.0 * (c - u)
    out = once([CFG(8.0), CFGNorm()], target, x, s)
    assert bool((out.norm(dim=1) <= c.norm(dim=1) + 1e-12).all())
    cos = (out * cfg).sum(1) / (out.norm(dim=1) * cfg.norm(dim=1))
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-12)


def test_sigma_interval_and_schedule_act_as_for_every_term(target):
    term = CFGNorm(weight=0.5, start_percent=0.3, end_percent=0.7, schedule="linear")
    hi, lo = term.sigma_interval(SIGMA_MAX, SIGMA_MIN)
    guided = GuidanceChain((CFG(5.0), term)).wrap(target, SIGMA_MAX, SIGMA_MIN)
    for sigma in (hi * 1.5, lo / 1.5, math.sqrt(hi * lo)):
        x, s, c, u = at(target, sigma=sigma)
        cfg = u + 5.0 * (c - u)
        full = once([CFG(5.0), CFGNorm(weight=0.5)], target, x, s)
        inside = lo <= sigma <= hi
        strength = term.strength(sigma, SIGMA_MAX, SIGMA_MIN) if inside else 0.0
        assert torch.allclose(guided(x, s), cfg + strength * (full - cfg), atol=1e-12)
        assert (0.0 < strength < 1.0) == inside
        assert not torch.allclose(full, cfg, atol=1e-6)  # the term has something to do here


def test_negative_strength_is_refused():
    with pytest.raises(ValueError, match=r"GuidanceStep \(cfg_norm\): weight=-1.0"):
        CFGNorm(weight=-1.0)
