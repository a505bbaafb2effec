"""The patch target's balance: over-used bank patches are discounted on the dense levels (denoiser.py)."""
from __future__ import annotations

import pytest
import torch

from rwalk.nodes.targets_patch import TargetDistributionPatches
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.targets.patch import patch_target
from posterior_spec import PosteriorSpec as PatchSpec  # the posterior denoiser's own settings
from rwalk.walk_core.targets.patch.bank import build_bank, patches
from rwalk.walk_core.targets.patch.denoiser import _scale, dense_posterior, logit_bias, prior_share, usage_discount


def ref(name, size=32, seed=0):
    return reference_image(name, size, size, seed) * 2 - 1  # walk units


def queries(bank, x):
    return bank.embed(patches(x, bank.p, False)[0])


def usage(bank, coords, sigma, balance):
    """Posterior weight each bank patch receives, summed over the queries, after ``balance``'s discount."""
    scale = _scale(sigma, 1.0)
    bias = logit_bias(bank, scale)
    if balance > 0:
        bias = bias - usage_discount(bank, coords, bias, scale, sigma, None, balance)
    return torch.softmax(coords @ bank.coords.T * scale + bias, dim=1).sum(0)


@pytest.mark.parametrize("weights", [None, (3.0, 1.0)])
def test_no_discount_when_usage_follows_the_prior(weights):
    # at a huge sigma every query's posterior is the prior itself, so each patch is used exactly its share:
    # nothing is over-used and nothing may be discounted -- also when the references have unequal weights
    refs = torch.stack([ref("bricks"), ref("foliage")])
    bank = build_bank(refs, 5, 16, weights=None if weights is None else torch.tensor(weights))
    coords = queries(bank, refs[:1] + 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    scale = _scale(1e6, 1.0)
    discount = usage_discount(bank, coords, logit_bias(bank, scale), scale, 1e6, None, 1.0)
    assert float(discount.abs().max()) < 1e-3


def test_discount_is_the_log_of_the_over_use_and_never_a_boost():
    r = ref("stained_glass")
    bank = build_bank(r[None], 5, 16)
    coords = queries(bank, 0.2 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    sigma = 0.8  # a spread posterior that piles onto a few low-contrast patches
    used = usage(bank, coords, sigma, 0.0)
    over = used / (coords.shape[0] * prior_share(bank))
    scale = _scale(sigma, 1.0)
    for balance in (0.5, 1.0, 2.0):
        discount = usage_discount(bank, coords, logit_bias(bank, scale), scale, sigma, None, balance)
        assert torch.allclose(discount, balance * over.clamp_min(1).log(), atol=1e-4)
        assert float(discount.min()) >= 0 and bool((discount[over <= 1] == 0).all())
        assert float(discount.max()) > 0.5 * balance  # this posterior does over-use some patches


@pytest.mark.parametrize("name", ["stained_glass", "marble"])
def test_balance_brings_patch_usage_closer_to_the_references(name):
    r = ref(name)
    bank = build_bank(r[None], 5, 16)
    g = torch.Generator().manual_seed(2)
    for sigma in (0.3, 1.0, 3.0):
        coords = queries(bank, r.mean(dim=(1, 2)).view(1, 3, 1, 1) + sigma * torch.randn(1, 3, 32, 32, generator=g))
        share = prior_share(bank)
        tv = [0.5 * float((usage(bank, coords, sigma, b) / coords.shape[0] - share).abs().sum()) for b in (0, 1, 2)]
        assert tv[1] < tv[0] and tv[2] < tv[1], (sigma, tv)


def test_dense_posterior_with_balance_zero_is_the_plain_posterior():
    r = ref("painting")
    bank = build_bank(r[None], 5, 16)
    coords = queries(bank, r[None] + 0.5 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)))
    plain, best = dense_posterior(bank, coords, 0.5, 1.0, top=4)
    w = torch.softmax(coords @ bank.coords.T * _scale(0.5, 1.0) - 0.5 * _scale(0.5, 1.0) * bank.sq_norms, dim=1)
    assert torch.allclose(plain, w @ bank.centres, atol=1e-5)
    balanced, best_b = dense_posterior(bank, coords, 0.5, 1.0, top=4, balance=1.0)
    assert not torch.allclose(plain, balanced, atol=1e-3)  # the option is wired through
    assert best_b.shape == best.shape


def test_bad_balance_is_refused_and_the_node_passes_it_on():
    with pytest.raises(ValueError, match="balance=-1"):
        patch_target(PatchSpec(ref("bricks")[None], balance=-1.0), 32, 32)
    spec = TargetDistributionPatches.INPUT_TYPES()["optional"]["balance"]
    assert spec[1]["default"] == PatchSpec.balance and spec[1]["tooltip"]
    image = ((ref("bricks") + 1) / 2).permute(1, 2, 0)[None]
    off = TargetDistributionPatches().build(image, 7, 0.6, False, "", balance=0.0, mode="posterior")[0]
    on = TargetDistributionPatches().build(image, 7, 0.6, False, "", mode="posterior")[0]
    x = 3 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(off.denoiser(x, torch.tensor([3.0])), on.denoiser(x, torch.tensor([3.0])))
