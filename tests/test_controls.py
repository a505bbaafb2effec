"""Midjourney-style controls (issue 8): variations, seed-space wander, the grid's knobs, tiles, pan and zoom-out.

Each claim is measured on small walks: subtle variations stay closer to their source than strong ones, wander
frames change smoothly and more with a larger step, tiles join seamlessly, outpainting keeps the known part,
and a grid's items are remade one by one from their recorded seeds.
"""
from __future__ import annotations

import math

import pytest
import torch

import comfy_standins as cs
from rwalk.models import EDMDenoiser, UNetConfig
from rwalk.models.target import circular, model_target
from rwalk.nodes import NODE_CLASS_MAPPINGS as NODES
from rwalk.nodes.controls import VARY, aspect_size, canvas, grid_picture
from rwalk.walk_core.noise import ItemNoise
from rwalk.walk_core.noise_mix import MixedNoise
from rwalk.walk_core.targets.patch import WALK_S_NOISE

WALK = dict(walk="euler_ancestral", schedule="karras", steps=12, seed=3)


def mixture():
    node = NODES["TargetDistributionMixture"]()
    return node.build(detail=0.05, variation=0.15, weights="", spread_scales="", structure_seed=0)[0]


def patches(tileable=False, size=64):
    (reference,) = NODES["ReferenceImage"]().make("bricks", size, size, 0, 1)
    node = NODES["TargetDistributionPatches"]()
    return node.build(reference, patch_size=7, level_sigma=0.6, tileable=tileable, weights="")[0]


def walk(target, size=32, **kw):
    inputs = dict(WALK, batch_size=1, width=size, height=size, sigma_max=0.0, sigma_min=0.0, eta=1.0, s_noise=1.0,
                  churn=0.0, snr=0.0, corrector_steps=1, order=0, denoise=1.0, trajectory_every=0)
    inputs.update(kw)
    return NODES["WalkSampler"]().sample(target, **inputs)


# -- noise ------------------------------------------------------------------------------------------------
def test_mixed_noise_keeps_unit_variance_and_has_the_asked_correlation():
    n, d = 6, 20000
    for share, wander, lag1 in ((0.6, 0.0, 0.6), (0.0, 0.3, math.cos(0.3 * math.pi / 2))):
        draws = MixedNoise(ItemNoise(list(range(n))), share=share, share_seed=99, wander=wander).randn((n, d))
        se = 5 / math.sqrt(d)  # 5 standard errors of a variance / correlation of d values
        assert torch.allclose(draws.var(1), torch.ones(n), atol=5 * math.sqrt(2 / d))
        corr = float((draws[0] * draws[1]).mean())
        assert abs(corr - lag1) < se, (share, wander, corr, lag1)


def test_a_shared_item_is_the_same_alone():
    batch = MixedNoise(ItemNoise([10, 11, 12]), share=0.5, share_seed=10).randn((3, 50))
    alone = MixedNoise(ItemNoise([12]), share=0.5, share_seed=10).randn((1, 50))
    assert torch.equal(batch[2], alone[0])


# -- variations -------------------------------------------------------------------------------------------
def test_subtle_variations_stay_closer_to_the_source_than_strong_ones():
    target = mixture()
    source, *_ = walk(target, seed=1)
    distance = {}
    for strength in ("subtle", "strong"):
        images, latent = NODES["WalkVary"]().vary(target, strength, 0.0, 6, image=source, **WALK)
        assert images.shape[0] == 6 and latent["seeds"] == list(range(3, 9))
        distance[strength] = float((images - source).abs().mean())
    assert distance["subtle"] < 0.6 * distance["strong"], distance


def test_variations_of_a_model_target_go_through_its_vae(fake_comfy):
    model = cs.ModelPatcher("eps")
    target = NODES["TargetDistributionModel"]().make(model, cs.conditioning(0.3), cs.conditioning(0.0),
                                                     vae=cs.VAE())[0]
    picture = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    images, latent = NODES["WalkVary"]().vary(target, "subtle", 0.0, 2, image=picture, **WALK)
    assert tuple(latent["samples"].shape) == (2, 4, 4, 4) and tuple(images.shape) == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="no VAE"):
        bare = NODES["TargetDistributionModel"]().make(model, cs.conditioning(0.3), cs.conditioning(0.0))[0]
        NODES["WalkVary"]().vary(bare, "subtle", 0.0, 2, image=picture, **WALK)


def test_controls_walk_a_patch_target_with_its_noise_scale():
    target = patches(size=48)
    assert target.walk_s_noise == WALK_S_NOISE > 1 and mixture().walk_s_noise == 1.0
    assert target.at_size(40, 40).walk_s_noise == WALK_S_NOISE == target.tiled().walk_s_noise
    source, *_ = walk(target, size=32, seed=1)
    varied, _ = NODES["WalkVary"]().vary(target, "strong", 0.0, 1, image=source, **WALK)
    same = {s: walk(target, size=32, s_noise=s, init_image=source, denoise=VARY["strong"])[0]
            for s in (WALK_S_NOISE, 1.0)}
    assert torch.equal(varied, same[WALK_S_NOISE])  # WalkSampler with the target's s_noise, bit for bit
    assert not torch.equal(varied, same[1.0])


# -- wander -----------------------------------------------------------------------------------------------
def test_wander_frames_change_smoothly_and_more_with_a_larger_step():
    target = mixture()
    gaps = {}
    for step in (0.05, 0.2, 1.0):
        frames, _ = NODES["WalkWander"]().wander(target, 8, step, width=24, height=24, **WALK)
        assert frames.shape[0] == 8
        gaps[step] = (frames[1:] - frames[:-1]).abs().flatten(1).mean(1)  # [7] neighbour distances
    independent = float(gaps[1.0].mean())  # step 1: unrelated frames
    assert float(gaps[0.05].max()) < 0.5 * independent, (gaps[0.05], independent)  # bounded
    assert float(gaps[0.05].mean()) < float(gaps[0.2].mean()) < independent  # increasing with the step


# -- grid -------------------------------------------------------------------------------------------------
def grid(target, **kw):
    inputs = dict(chaos=30, stylize=100, tile=False, aspect="1:1", size=32, items=4, item=-1, **WALK)
    inputs.update(kw)
    return NODES["WalkGrid"]().grid(target, **inputs)


def test_grid_items_are_remade_one_by_one_from_their_recorded_seeds():
    target = mixture()
    mosaic, images, latent = grid(target)
    assert tuple(mosaic.shape) == (1, 64, 64, 3) and images.shape[0] == 4
    assert latent["seeds"] == [3, 4, 5, 6] and latent["share_seed"] == 3
    for k, seed in enumerate(latent["seeds"]):
        _, alone, _ = grid(target, item=k)
        assert torch.equal(alone[0], images[k])
        same, *_ = walk(target, seed=seed, eta=0.5 + 0.5 * 0.3, noise_share=latent["noise_share"],
                          share_seed=latent["share_seed"])  # plain WalkSampler with the recorded values
        assert torch.equal(same[0], images[k])


def test_chaos_makes_the_items_of_a_grid_more_different():
    target = mixture()
    spread = {}
    for chaos in (0, 100):
        _, images, _ = grid(target, chaos=chaos, items=6)
        flat = images.flatten(1)
        spread[chaos] = float(torch.pdist(flat).mean())
    assert spread[0] < 0.8 * spread[100], spread


def test_stylize_adds_the_style_term_and_aspect_sets_the_size():
    target = mixture()
    style = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(1))
    _, plain, _ = grid(target, items=1, aspect="2:1", size=64, stylize=0, style_image=style)
    _, styled, _ = grid(target, items=1, aspect="2:1", size=64, stylize=800, style_image=style)
    assert tuple(plain.shape) == (1, 32, 64, 3)
    assert not torch.equal(plain, styled)
    assert aspect_size("16:9", 512) == (512, 288) and aspect_size("9:16", 512) == (288, 512)
    with pytest.raises(ValueError, match="aspect"):
        aspect_size("5:4", 256)


def test_grid_picture_lays_items_out_row_by_row():
    images = torch.stack([torch.full((2, 3, 3), float(i)) for i in range(3)])
    mosaic = grid_picture(images)[0]
    assert tuple(mosaic.shape) == (4, 6, 3)
    assert float(mosaic[0, 0, 0]) == 0 and float(mosaic[0, 3, 0]) == 1 and float(mosaic[2, 0, 0]) == 2
    assert float(mosaic[2, 3, 0]) == 1.0  # the empty cell is white


# -- tiles ------------------------------------------------------------------------------------------------
def seam_ratio(image: torch.Tensor) -> float:
    """The mean difference across a wrapped edge (left-right, top-bottom; the worse one) over the 90th
    percentile of the same statistic between interior neighbouring columns / rows: <= 1 means the seam is no
    more visible than an ordinary line of the picture."""
    x = image[0]  # [H, W, C]
    ratios = []
    for axis in (0, 1):
        lines = x.movedim(axis, 0)  # [L, ..., C]: rows (axis 0) or columns (axis 1)
        inner = (lines[1:] - lines[:-1]).abs().flatten(1).mean(1)  # [L - 1]
        wrap = (lines[0] - lines[-1]).abs().mean()
        ratios.append(float(wrap / torch.quantile(inner, 0.9)))
    return max(ratios)


def test_tiled_patch_pictures_are_seamless():
    target = patches()
    tiled = {}
    for tile in (False, True):
        mosaic, images, _ = grid(target, tile=tile, items=2, size=48, chaos=100)
        tiled[tile] = max(seam_ratio(images[i:i + 1]) for i in range(2))
    # measured 0.94 tiled vs 2.67 not (bricks, 48 px, 12 steps): the wrapped edge differs about like the most
    # contrasted tenth of the picture's own neighbouring lines, and far less than an untiled picture's edges
    assert tiled[True] < 1.5, tiled
    assert tiled[True] < 0.7 * tiled[False], tiled


def test_a_tiled_model_target_walks_with_circular_padding_and_restores_it(fake_comfy):
    model = cs.ModelPatcher("eps")
    target = NODES["TargetDistributionModel"]().make(model, cs.conditioning(0.3), cs.conditioning(0.0))[0]
    grid(target, tile=True, items=1)
    assert set(model.model.padding_seen) == {"circular"}
    assert model.model.diffusion_model.padding_mode == "zeros"  # the shared model is left as it was
    model.model.padding_seen.clear()
    grid(target, tile=False, items=1)
    assert set(model.model.padding_seen) == {"zeros"}


def test_a_target_that_cannot_tile_says_so():
    target = mixture()
    with pytest.raises(ValueError, match="cannot tile"):
        grid(target, tile=True)


def test_a_tiled_own_model_is_equivariant_to_circular_shifts():
    config = UNetConfig(width=8, mults=(1, 2), blocks=1, attention=())
    net = EDMDenoiser(config, seed=0)
    with torch.no_grad():  # an untrained model is c_skip x; give the output layer weights
        for p in net.parameters():
            if p.abs().sum() == 0 and p.ndim > 1:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
    target = model_target(net, size=16).tiled()
    assert target.tiled is not None and target.info["tiled"]
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    sigma = torch.full((1,), 0.7)
    shifted = target.denoiser(torch.roll(x, (4, 6), dims=(2, 3)), sigma)
    assert torch.allclose(shifted, torch.roll(target.denoiser(x, sigma), (4, 6), dims=(2, 3)), atol=1e-5)
    plain = model_target(net, size=16)
    edge = plain.denoiser(torch.roll(x, (4, 6), dims=(2, 3)), sigma)
    assert not torch.allclose(edge, torch.roll(plain.denoiser(x, sigma), (4, 6), dims=(2, 3)), atol=1e-3)
    assert circular(net) is not net


# -- pan and zoom-out -------------------------------------------------------------------------------------
@pytest.mark.parametrize("direction, amount, size", [("right", 0.5, (32, 48)), ("up", 0.25, (40, 32)),
                                                     ("zoom_out", 1.0, (64, 64))])
def test_outpainting_keeps_the_known_region(direction, amount, size):
    target = mixture()
    source, *_ = walk(target, seed=1)
    image, mask, _ = NODES["WalkOutpaint"]().extend(target, source, direction, amount, "reflect", 0.6, **WALK)
    assert tuple(image.shape[1:3]) == size and tuple(mask.shape[1:]) == size
    _, _, (x, y) = canvas(source, direction, amount, 8)
    kept = image[0, y:y + 32, x:x + 32]
    assert torch.allclose(kept, source[0], atol=1 / 255), float((kept - source[0]).abs().max())
    assert float(mask[0, y:y + 32, x:x + 32].max()) == 0 and float(mask.mean()) > 0
    new = image[0][mask[0] > 0]
    assert float(new.std()) > 0.02  # the new part is a picture, not the fill colour


def test_outpainting_a_model_target_keeps_the_known_latent(fake_comfy):
    model = cs.ModelPatcher("eps")
    vae = cs.VAE()
    target = NODES["TargetDistributionModel"]().make(model, cs.conditioning(0.3), cs.conditioning(0.0), vae=vae)[0]
    source = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(5))
    image, mask, latent = NODES["WalkOutpaint"]().extend(target, source, "left", 0.5, "reflect", 0.6, **WALK)
    assert tuple(image.shape) == (1, 32, 48, 3)
    known = vae.encode(source)  # the canvas' right 4 x 4 latent cells hold the source
    assert torch.allclose(latent["samples"][..., 2:], known, atol=1e-5)


def test_a_reflected_fill_continues_the_pictures_layout():
    """Panning a landscape to the right: with the mirrored fill the new part keeps the rows' brightness profile
    (sky over grass); from a flat fill and pure noise the patch target's posterior mode places blocks anywhere. In
    layout mode the target itself keeps the reference's rows, so either fill continues them."""
    (source,) = NODES["ReferenceImage"]().make("painting", 48, 48, 0, 1)
    profile = source[0].mean(dim=(1, 2))  # [H] row brightness of the source

    def continued(mode):
        target = NODES["TargetDistributionPatches"]().build(source, patch_size=7, level_sigma=0.6, tileable=False,
                                                           weights="", mode=mode)[0]
        return {fill: _row_profile_kept(target, source, profile, fill, denoise)
                for fill, denoise in (("reflect", 0.6), ("mean", 1.0))}

    corr = continued("posterior")
    # measured 0.73 vs 0.02 (seeds 3, 4, 5: 0.56, 0.69, 0.94 against 0.18, -0.50, 0.37)
    assert corr["reflect"] > 0.5 and corr["reflect"] > corr["mean"] + 0.3, corr
    corr = continued("layout")  # measured 0.65 and 0.72
    assert min(corr.values()) > 0.5, corr


def _row_profile_kept(target, source, profile, fill, denoise):
    """Mean over three seeds of the correlation between the source's and the new part's row brightness."""
    runs = []
    for seed in (3, 4, 5):  # one picture's profile varies with the seed (a flat fill's most): a mean of three
        image, mask, _ = NODES["WalkOutpaint"]().extend(target, source, "right", 0.5, fill, denoise,
                                                        **{**WALK, "steps": 16, "seed": seed})
        new = image[0][:, 48:].mean(dim=(1, 2))  # [H] row brightness of the new part
        runs.append(float(torch.corrcoef(torch.stack([profile, new]))[0, 1]))
    return sum(runs) / len(runs)
