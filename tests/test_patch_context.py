"""The patch target's context term: a level's patch also answers for its parent one level up (context.py)."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from rwalk.nodes.targets_patch import TargetDistributionPatches
from rwalk.walk_core import quality
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, patch_target
from posterior_spec import PosteriorSpec as PatchSpec  # the posterior denoiser's own settings
from rwalk.walk_core.targets.patch.bank import build_bank, patches
from rwalk.walk_core.targets.patch.context import context_term, parent_index
from rwalk.walk_core.targets.patch.denoiser import dense_posterior, sparse_posterior
from rwalk.walk_core.targets.patch.pyramid import blur_down, noise_factor


def ref(name, size=32, seed=0):
    return reference_image(name, size, size, seed) * 2 - 1  # walk units


@pytest.mark.parametrize("periodic", [False, True])
def test_parent_is_the_coarse_pixel_centred_on_it(periodic):
    h, w, hc, wc = 6, 5, 3, 3
    got = parent_index(h, w, hc, wc, 2, periodic, "cpu").view(2, h, w)
    for image in range(2):
        for y in range(h):
            for x in range(w):
                py, px = (y + 1) // 2, (x + 1) // 2
                py, px = (py % hc, px % wc) if periodic else (min(py, hc - 1), min(px, wc - 1))
                assert int(got[image, y, x]) == image * hc * wc + py * wc + px
    # blur_down keeps the even pixels: pixel 2i's parent is coarse pixel i
    assert got[0, 2 * torch.arange(3), 0].tolist() == [0, wc, 2 * wc]


def setup(name="bricks"):
    r = ref(name)
    bank, coarse = build_bank(r[None], 5, 16, seed=0), build_bank(blur_down(r[None]), 5, 16, seed=1)
    return r, bank, coarse


def test_context_alone_places_each_patch_under_its_parent():
    # the fine query is pure noise at a huge sigma (its own term says nothing), the coarse picture is the clean
    # reference: the context term alone must pick bank patches whose parents sit at the query's parent
    r, bank, coarse = setup()
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    coords = bank.embed(patches(noise, bank.p, False)[0])
    sigma = 0.02 / noise_factor(1)  # the walk's sigma at which the coarse picture's own noise is 0.02
    term = context_term(bank, coarse, blur_down(r[None]), (32, 32), 0, sigma, 1.0, 1.0, False)
    _, best = dense_posterior(bank, coords, 1e3, 1.0, top=1, context=term)
    placed = (term.bank_parent[best[:, 0]] == term.query_parent).float().mean()
    _, plain = dense_posterior(bank, coords, 1e3, 1.0, top=1)
    by_chance = (term.bank_parent[plain[:, 0]] == term.query_parent).float().mean()
    assert float(placed) > 0.9 and float(by_chance) < 0.1, (float(placed), float(by_chance))


def test_context_weight_scales_with_the_coarse_noise_and_sparse_agrees_with_dense():
    r, bank, coarse = setup("painting")
    g = torch.Generator().manual_seed(1)
    picture = blur_down(r[None] + 0.3 * torch.randn(1, 3, 32, 32, generator=g))
    one = context_term(bank, coarse, picture, (32, 32), 0, 0.5, 1.0, 1.0, False)
    half = context_term(bank, coarse, picture, (32, 32), 0, 0.5, 2.0, 0.25, False)  # sharpness 2 x weight 1/4
    assert math.isclose(one.scale, 1.0 / (0.5 * noise_factor(1)) ** 2, rel_tol=1e-9)
    rows = slice(100, 300)
    dense = one.dense(rows)
    assert torch.allclose(half.dense(rows), 0.5 * dense, rtol=1e-5, atol=1e-4)
    # the term is the coarse log-likelihood up to a per-row constant: -|q' - P'|^2 / 2 s'^2 in the PCA basis
    q = one.query[one.query_parent[rows]]
    p = coarse.coords[one.bank_parent]
    exact = -0.5 * torch.cdist(q.double(), p.double()).square() * one.scale
    shift = (dense.double() - exact)
    assert float((shift - shift[:, :1]).abs().max()) < 1e-2 * float(exact.abs().max())
    index = torch.randint(0, bank.size, (32 * 32, 12), generator=g)
    assert torch.allclose(one.sparse(rows, index[rows]), dense.gather(1, index[rows]), rtol=1e-4, atol=1e-3)
    coords = bank.embed(patches(r[None], bank.p, False)[0])
    with_term, _ = sparse_posterior(bank, coords, index, 0.5, 1.0, context=one)
    without, _ = sparse_posterior(bank, coords, index, 0.5, 1.0)
    assert not torch.allclose(with_term, without, atol=1e-3)  # wired through the sparse posterior too


def walk(target, seed):
    return run_walk(target, WalkRequest(walk=WALK, schedule="karras", steps=STEPS, seed=seed,
                                        options={"s_noise": WALK_S_NOISE})).x[0]


def test_context_keeps_the_references_texture_statistics_closer():
    # bricks: the local posterior alone breaks the courses into a mosaic whose random-feature Gram statistics
    # sit far from the reference's; the context term keeps more of the arrangement the coarse levels set
    # (at 256 px: 0.3 x the halves' Gram distance against 1.5 x, bench/patch.py's trade-off table)
    r = ref("bricks", 96)
    gram = {}
    for context in (0.0, 1.0):
        target = patch_target(PatchSpec(r[None], context=context), 96, 96)
        gram[context] = sum(quality.patch_report(walk(target, s), r)["gram"] for s in range(4)) / 4
    assert gram[1.0] < 0.8 * gram[0.0], gram


def test_bad_context_is_refused_and_the_node_passes_it_on():
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="context="):
            patch_target(PatchSpec(ref("bricks")[None], context=bad), 32, 32)
    spec = TargetDistributionPatches.INPUT_TYPES()["optional"]["context"]
    assert spec[1]["default"] == PatchSpec.context and spec[1]["tooltip"]
    image = ((ref("bricks") + 1) / 2).permute(1, 2, 0)[None]
    off = TargetDistributionPatches().build(image, 7, 1.0, False, "", context=0.0, mode="posterior")[0]
    on = TargetDistributionPatches().build(image, 7, 1.0, False, "", context=1.0, mode="posterior")[0]
    assert off.info["context"] == 0.0 and on.info["context"] == 1.0
    x = 0.5 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(off.denoiser(x, torch.tensor([0.5])), on.denoiser(x, torch.tensor([0.5])))


def test_context_works_for_tileable_and_several_weighted_references():
    refs = torch.stack([ref("bricks"), ref("foliage")])
    x = 0.5 * torch.randn(2, 3, 48, 40, generator=torch.Generator().manual_seed(5))
    sigma = torch.tensor([0.5, 0.2])
    for tileable in (False, True):
        spec = PatchSpec(refs, weights=(2.0, 1.0), tileable=tileable)
        plain = patch_target(spec, 40, 48).denoiser(x, sigma)
        with_context = patch_target(replace(spec, context=1.0), 40, 48).denoiser(x, sigma)
        assert with_context.shape == x.shape and bool(torch.isfinite(with_context).all())
        assert not torch.allclose(plain, with_context, atol=1e-3)
