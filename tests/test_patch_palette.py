"""The patch target's palette hold: one step of the references' palette energy on each estimate at sigma >=
palette_sigma (walk_core/targets/patch/target.py), so walks keep the references' colours."""
from __future__ import annotations

import pytest
import torch

from rwalk.nodes.targets_patch import TargetDistributionPatches
from rwalk.walk_core import quality
from rwalk.walk_core.guidance.energy import PaletteEnergy
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, patch_target
from posterior_spec import PosteriorSpec as PatchSpec  # the posterior denoiser's own settings

SIZE = 40


def ref(name="marble", size=SIZE):
    return reference_image(name, size, size, 0) * 2 - 1  # walk units


def test_hold_acts_only_at_sigma_at_least_palette_sigma():
    r = ref()[None]
    held, plain = patch_target(PatchSpec(r), SIZE, SIZE), patch_target(PatchSpec(r, palette=0.0), SIZE, SIZE)
    energy = PaletteEnergy.of(r, held.shape)
    above = torch.tensor([2.0 * PatchSpec.palette_sigma] * 2)
    below = torch.tensor([0.5 * PatchSpec.palette_sigma] * 2)
    x = r.repeat(2, 1, 1, 1) + 0.3 * torch.randn(2, *held.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(held.denoiser(x, below), plain.denoiser(x, below))
    a, b = held.denoiser(x, above), plain.denoiser(x, above)
    assert not torch.equal(a, b)
    # the step lowers the estimate's palette energy (weight 1: the whole way along each direction, up to the
    # directions' disagreement; measured: to 0.04 and 0.02 of the plain estimates')
    assert (energy(a) < 0.2 * energy(b)).all(), (energy(a), energy(b))


def test_hold_is_per_item_and_runs_under_inference_mode():
    r = ref()[None]
    target = patch_target(PatchSpec(r), SIZE, SIZE)
    x = torch.randn(2, *target.shape, generator=torch.Generator().manual_seed(2)) * 0.5
    sigma = torch.tensor([0.5, 0.01])  # the first item is held, the second is not
    with torch.inference_mode():
        both = target.denoiser(x, sigma)
        first = target.denoiser(x[:1], sigma[:1])
        second = target.denoiser(x[1:], sigma[1:])
    assert torch.equal(both[:1], first) and torch.equal(both[1:], second)  # bit for bit, as every walk's items
    plain = patch_target(PatchSpec(r, palette=0.0), SIZE, SIZE)
    assert torch.equal(second, plain.denoiser(x[1:], sigma[1:]))


def test_walks_with_the_hold_keep_the_references_colours():
    # foliage: the plain posterior drifts towards its dominant green (too few dark gaps); with the hold the walks'
    # colour distance to the reference falls (measured: 0.050 -> 0.019 on these four walks, the plain ones 0.015 to 0.10)
    r = ref("foliage", 48)
    colour = {}
    for palette in (0.0, PatchSpec.palette):
        target = patch_target(PatchSpec(r[None], palette=palette), 48, 48)
        x = run_walk(target, WalkRequest(walk=WALK, steps=STEPS, seed=0, batch_size=4,
                                         options={"s_noise": WALK_S_NOISE})).x
        assert torch.isfinite(x).all()
        colour[palette] = sum(quality.colour_swd(item, r) for item in x) / len(x)
    assert colour[PatchSpec.palette] < 0.6 * colour[0.0], colour


@pytest.mark.parametrize("field, value", [("palette", -0.1), ("palette", 2.5), ("palette_sigma", float("nan")),
                                          ("palette_sigma", -1.0)])
def test_bad_palette_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        patch_target(PatchSpec(ref()[None], **{field: value}), SIZE, SIZE)


def test_node_passes_the_palette_settings():
    node = TargetDistributionPatches()
    optional = TargetDistributionPatches.INPUT_TYPES()["optional"]
    assert optional["palette"][1]["default"] == PatchSpec.palette and optional["palette"][1]["tooltip"]
    assert optional["palette_sigma"][1]["default"] == PatchSpec.palette_sigma and optional["palette_sigma"][1]["tooltip"]
    image = (ref()[None].permute(0, 2, 3, 1) + 1) / 2  # ComfyUI IMAGE [B, H, W, C] in [0, 1]
    (target,) = node.build(image, 7, 0.6, False, "", palette=0.25, palette_sigma=0.2)
    assert (target.info["palette"], target.info["palette_sigma"]) == (0.25, 0.2)
    (default,) = node.build(image, 7, 0.6, False, "")
    assert (default.info["palette"], default.info["palette_sigma"]) == (PatchSpec.palette, PatchSpec.palette_sigma)
