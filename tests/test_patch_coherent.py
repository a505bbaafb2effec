"""The coherent patch denoiser (issue 28 §3): nearest-neighbour fields coarse to fine with voting, the layout
and texture modes, and what they keep of a reference's structure."""
from __future__ import annotations

import pytest
import torch

from rwalk.walk_core.references import reference_image
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets.patch import PatchSpec, patch_target
from rwalk.walk_core.targets.patch import coherent
from rwalk.walk_core.targets.patch.target import MODES


def ref(name="bricks", size=64, seed=0):
    return reference_image(name, size, size, seed) * 2 - 1  # walk units


def walk(target, seed=0, batch=1, steps=10):
    return run_walk(target, WalkRequest(walk="langevin", schedule="karras", steps=steps, seed=seed,
                                        batch_size=batch)).x


def halves(size=64, seed=0):
    """Top half a red texture, bottom half a blue one (a picture whose arrangement is plain to see)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.15 * torch.randn(3, size, size, generator=g)
    x[:, : size // 2] += torch.tensor([0.8, -0.6, -0.6]).view(3, 1, 1)
    x[:, size // 2:] += torch.tensor([-0.6, -0.6, 0.8]).view(3, 1, 1)
    return x.clamp(-1, 1)


# --- the parts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("periodic", [False, True])
def test_voting_a_pictures_own_patches_gives_the_picture_back(periodic):
    x = torch.rand(1, 3, 20, 17) * 2 - 1
    patches = coherent.unfold(x, 5, periodic)
    assert torch.allclose(coherent.vote(patches, (20, 17), 3, 5, periodic), x, atol=1e-5)


def test_noise_factor_is_the_std_of_white_noise_after_resizing():
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(1, 1, 384, 384, generator=g)
    for level in (1, 3):
        small = coherent.resize(noise, coherent.level_size(384, 384, level))[..., 4:-4, 4:-4]
        # the std of ~10^4 samples is known to about 1 %
        assert abs(float(small.std()) / coherent.noise_factor(level) - 1) < 0.05


def test_candidates_from_an_identity_field_hold_every_pixels_own_position():
    r = ref("marble", 48)[None]
    levels = coherent.build_levels(r, 1, 5, 8)
    fine, coarse = levels[0], levels[1]
    hc, wc = coarse.size
    identity = torch.arange(hc * wc)  # every coarse pixel matched to itself
    cands = coherent._candidates(identity, fine, coarse, fine.size, coarse.size, 0, fine.values.shape[0])
    own = torch.arange(fine.size[0] * fine.size[1])[:, None]
    inside = fine.interior()  # edge keys are never proposed: an edge patch is half mirror
    assert bool((cands == own).any(1)[inside].all())
    assert bool(inside[cands].all())


def test_completeness_spreads_queries_over_the_keys():
    # every query is nearest to key 0; the normalised score hands most of them to other, almost as near keys
    keys = torch.cat([torch.zeros(1, 4), 0.05 * torch.randn(40, 4, generator=torch.Generator().manual_seed(0))])
    queries = 0.001 * torch.randn(40, 4, generator=torch.Generator().manual_seed(1))
    plain = torch.cdist(queries, keys).argmin(1)
    spread = [coherent._nearest(queries, keys, None, alpha=a).unique().numel() for a in (1e-1, 1e-3, 1e-5)]
    assert plain.unique().numel() <= 3
    assert spread[0] <= 3 < spread[1] < spread[2] and spread[2] >= 15  # smaller alpha, more keys used


# --- the denoiser -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["layout", "texture"])
def test_low_sigma_denoiser_recovers_the_reference_itself(mode):
    r = ref("bricks", 64)
    target = patch_target(PatchSpec(r[None], mode=mode, palette=0.0), 64, 64)
    out = target.denoiser(r[None], torch.tensor([0.002]))
    err = (out[0] - r).abs()
    assert float(err[:, 8:-8, 8:-8].mean()) < 0.01  # inside: its own patches
    assert float(err.mean()) < 0.05  # the edges: the nearest whole patch (edge patches are half mirror)


def test_high_sigma_layout_estimate_is_the_references_coarse_arrangement():
    r = halves()
    layout = patch_target(PatchSpec(r[None], mode="layout", palette=0.0), 64, 64)
    texture = patch_target(PatchSpec(r[None], mode="texture", palette=0.0), 64, 64)

    def red_above_blue(target, seed):  # red channel's top-minus-bottom difference of the estimate at sigma 80
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 80
        est = target.denoiser(x, torch.tensor([80.0]))[0]
        return float(est[0, :16].mean() - est[0, -16:].mean())

    seeds = range(0, 1600, 100)
    assert min(red_above_blue(layout, s) for s in seeds) > 1.0  # the reference's halves differ by 1.4
    # without the arrangement the estimate's top and bottom differ only as each draw's noise leans (sd ~0.15)
    diffs = torch.tensor([red_above_blue(texture, s) for s in seeds])
    assert float(diffs.mean().abs()) < 3 * float(diffs.std()) / len(seeds) ** 0.5 + 0.02
    assert float(diffs.abs().max()) < 0.7


def test_layout_mode_keeps_the_arrangement_and_texture_mode_does_not():
    r = halves()
    seeds = range(0, 400, 100)
    layout = torch.cat([walk(patch_target(PatchSpec(r[None], mode="layout"), 64, 64), seed=s) for s in seeds])
    texture = torch.cat([walk(patch_target(PatchSpec(r[None], mode="texture"), 64, 64), seed=s) for s in seeds])

    def red_on_top(x):  # share of the top half's pixels that are red (red above blue channel)
        return float((x[:, 0, :24] > x[:, 2, :24]).float().mean())

    assert red_on_top(layout) > 0.9
    assert red_on_top(texture) < 0.8  # somewhere, on some seed, blue came up on top


def test_coherent_walk_is_deterministic_and_items_independent_of_the_batch():
    target = patch_target(PatchSpec(ref()[None], mode="texture"), 40, 40)
    both = walk(target, seed=5, batch=2, steps=6)
    assert torch.equal(both, walk(target, seed=5, batch=2, steps=6))
    assert torch.equal(both[1:], walk(target, seed=6, batch=1, steps=6))
    assert not torch.equal(both[0], both[1])


def test_tileable_texture_is_seamless():
    r = ref("bricks", 64)
    x = walk(patch_target(PatchSpec(r[None], mode="texture", tileable=True), 48, 48), seed=1)[0]
    inner = (x[:, :, 1:] - x[:, :, :-1]).abs().mean()
    seam = (x[:, :, 0] - x[:, :, -1]).abs().mean()
    assert float(seam) < 2.5 * float(inner)


def test_bad_mode_and_settings_are_refused_naming_them():
    with pytest.raises(ValueError, match="mode='mosaic'.*layout, texture, posterior"):
        patch_target(PatchSpec(ref()[None], mode="mosaic"), 32, 32)
    with pytest.raises(ValueError, match="layout_width=0"):
        patch_target(PatchSpec(ref()[None], layout_width=0.0), 32, 32)
    with pytest.raises(ValueError, match="iterations=0"):
        patch_target(PatchSpec(ref()[None], iterations=0), 32, 32)
    assert MODES[0] == PatchSpec.mode  # the node's first choice is the spec's default


def test_content_transfer_keeps_the_posterior_denoiser():
    photo = ref("photo", 32)[None]
    target = patch_target(PatchSpec(ref()[None], content=photo, content_weight=5.0), 32, 32)
    assert target.info["mode"] == "posterior"
    assert patch_target(PatchSpec(ref()[None]), 32, 32).info["mode"] == "layout"


def washed_out(x: torch.Tensor, reference: torch.Tensor, block: int = 16) -> float:
    """Share of x's block x block squares whose Laplacian power is under 0.3 x the reference's median square's:
    the pale smears a texture gets where patches are pulled over more pixels than they fit."""
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)

    def power(t):
        lap = torch.nn.functional.conv2d(t[None], k, groups=3)[0].square().mean(0)
        squares = lap.unfold(0, block, block).unfold(1, block, block)
        return squares.reshape(*squares.shape[:2], -1).mean(-1)

    return float((power(x) < 0.3 * float(power(reference).median())).float().mean())


def test_outputs_larger_than_the_reference_stay_sharp(monkeypatch):
    """Three times the reference's side: the completeness normalisation weakened by (queries / keys)^3 keeps every
    square as sharp as the reference's; the plain normalisation (the control) washes squares out."""
    r = ref("bricks", 64)
    target = patch_target(PatchSpec(r[None], mode="texture"), 192, 192)
    for seed in (0, 1):
        assert washed_out(walk(target, seed=seed)[0], r) < 0.05
    monkeypatch.setattr(coherent, "completeness_alpha", lambda alpha, queries, keys: alpha)
    plain = patch_target(PatchSpec(r[None], mode="texture"), 192, 192)
    assert washed_out(walk(plain, seed=0)[0], r) > 0.2


def test_small_references_keep_their_scene_in_layout_mode(monkeypatch):
    """A 128 px painting: the coarsest level is about a tenth of the reference (17 px), so layout mode keeps the sky
    on top on every seed; at the 24 px the 256 px references get, its coarsest patches held half the scene and
    the sky broke up (the control)."""
    r = ref("painting", 128)

    def sky_on_top(target, seed):  # share of the top quarter's pixels that are bluer than green
        x = walk(target, seed=seed)[0]
        return float((x[2, :32] > x[1, :32]).float().mean())

    assert float((r[2, :32] > r[1, :32]).float().mean()) > 0.9  # the reference's sky
    target = patch_target(PatchSpec(r[None], mode="layout"), 128, 128)
    assert min(sky_on_top(target, s) for s in (0, 100, 200)) > 0.8
    monkeypatch.setattr(coherent, "COARSEST_FRACTION", 1.0)  # the coarsest level as the 256 px references get it
    assert sky_on_top(patch_target(PatchSpec(r[None], mode="layout"), 128, 128), 100) < 0.7
