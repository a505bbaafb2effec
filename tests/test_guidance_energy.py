"""Energy guidance: the meaning of its weight, its effect on walks against an exact pixel target, per-item
independence, where it refuses to work, and its node.

Walk comparisons are paired (same seeds, same evaluations): a guided walk must beat the unguided one by
more than Z standard errors of the per-item differences, so the margins come from the data.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rwalk.nodes.guidance_energy import GuidanceStepEnergy
from rwalk.nodes.layout import image_to_walk
from rwalk.walk_core import GuidanceChain, WalkRequest, WalkTarget, quality, run_walk
from rwalk.walk_core.guidance import TERMS
from rwalk.walk_core.guidance.energy import ENERGIES, PALETTE_FRAMES, EnergyTerm
from rwalk.walk_core.targets import exact_target
from rwalk.walk_core.targets.image_mixture import ImageMixtureSpec, image_mixture_target

from exact_targets import image_3x16x16

Z = 3.0  # standard errors of a paired difference
BATCH = 16
REQUEST = WalkRequest(walk="euler_ancestral", steps=12, seed=3, batch_size=BATCH)


def content_picture(size: int = 16) -> torch.Tensor:
    """[1, 3, size, size] in [-1, 1]: colour ramps unlike any of the mixture's pictures."""
    u = torch.linspace(-1, 1, size)
    ramp_x, ramp_y = u[None, :].expand(size, size), u[:, None].expand(size, size)
    return torch.stack([ramp_x, ramp_y, -0.5 * ramp_x])[None]


def two_colour_picture(size: int = 16) -> torch.Tensor:
    """[1, 3, size, size]: a checkerboard of two colours, a distribution no mean and std describe."""
    board = ((torch.arange(size)[:, None] + torch.arange(size)[None, :]) % 2).float()
    red, blue = torch.tensor([0.7, -0.5, -0.4]), torch.tensor([-0.5, -0.2, 0.6])
    return (red.view(3, 1, 1) * board + blue.view(3, 1, 1) * (1 - board))[None]


def colour_picture(size: int = 16) -> torch.Tensor:
    """[1, 3, size, size]: a reddish, low-contrast palette."""
    g = torch.Generator().manual_seed(5)
    return torch.tensor([0.6, -0.4, -0.2]).view(1, 3, 1, 1) + 0.15 * torch.randn(1, 3, size, size, generator=g)


@pytest.fixture(scope="module")
def target():
    return image_mixture_target(ImageMixtureSpec(), 16, 16)


def energy(term: EnergyTerm, x: torch.Tensor) -> torch.Tensor:
    """The term's per-item energy of x [B, 3, H, W], [B]."""
    return ENERGIES[term.energy].prepare(term, tuple(x.shape[1:]))(x.double())


def walk(target, *terms, request=REQUEST):
    chain = GuidanceChain()
    for term in terms:
        chain = chain.plus(term)
    return run_walk(target, request, chain)


def assert_lower(lower: torch.Tensor, higher: torch.Tensor, what: str):
    """Paired items: mean(higher - lower) exceeds Z standard errors of the differences."""
    diff = (higher - lower).double()
    se = float(diff.std()) / diff.numel() ** 0.5
    assert float(diff.mean()) > Z * se, f"{what}: mean difference {float(diff.mean()):.4g}, standard error {se:.3g}"


def channel_stats(x: torch.Tensor):
    values = x.double().transpose(0, 1).flatten(2) if x.ndim == 4 else x
    return values.mean(2), values.var(2, unbiased=False).sqrt()  # [C, B] each


# ---------------------------------------------------------------- what the weight means


@pytest.mark.parametrize("size", [8, 32])
@pytest.mark.parametrize("weight, steps", [(1.0, 1), (0.5, 1), (0.3, 3)])
def test_content_weight_is_the_fraction_of_the_way_at_any_size(size, weight, steps):
    target = image_mixture_target(ImageMixtureSpec(), size, size)
    reference = content_picture(24)  # resized to the walk's size
    term = EnergyTerm(weight=weight, energy="content", reference=reference, steps=steps)
    x0 = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = term.apply(None, x0, term.start(target))
    content = F.interpolate(reference, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    expected = content.double() + (1 - weight) ** steps * (x0 - content.double())
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [8, 32])
def test_colour_weight_moves_mean_and_std_that_fraction(size):
    target = image_mixture_target(ImageMixtureSpec(), size, size)
    reference = colour_picture(20)
    term = EnergyTerm(weight=0.4, energy="colour", reference=reference)
    x0 = 0.7 * torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = term.apply(None, x0, term.start(target))
    (m0, s0), (m1, s1) = channel_stats(x0), channel_stats(out)
    ref_mean, ref_std = (t[:, :1] for t in channel_stats(reference))
    torch.testing.assert_close(m1 - ref_mean, 0.6 * (m0 - ref_mean), rtol=0, atol=1e-6)
    torch.testing.assert_close(s1 - ref_std, 0.6 * (s0 - ref_std), rtol=0, atol=1e-5)


def test_palette_matches_the_colour_distribution_not_only_mean_and_std():
    # a Gaussian picture with the two-colour reference's per-channel mean and std: the colour energy sees nothing
    # to fix, the palette energy does, and its step moves the pixels most of the way to the two colours
    size = 32
    target = image_mixture_target(ImageMixtureSpec(), size, size)
    reference = two_colour_picture(size)
    ref_mean, ref_std = (t[:, 0] for t in channel_stats(reference))
    noise = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = (noise - noise.mean((2, 3), keepdim=True)) / noise.std((2, 3), unbiased=False, keepdim=True)
    x0 = ref_mean.view(1, 3, 1, 1) + ref_std.view(1, 3, 1, 1) * z
    assert float(energy(EnergyTerm(energy="colour", reference=reference), x0)[0]) < 1e-12
    palette = energy(EnergyTerm(energy="palette", reference=reference), x0)
    assert float(palette[0]) > 0.05
    swd = lambda x: quality.colour_swd(x[0], reference[0])  # noqa: E731  (other directions than the energy's)
    left = {}
    for weight, steps in ((0.5, 1), (1.0, 1), (1.0, 3)):
        term = EnergyTerm(weight=weight, energy="palette", reference=reference, steps=steps)
        out = term.apply(None, x0, term.start(target))
        left[weight, steps] = (float(energy(term, out)[0] / palette[0]), swd(out) / swd(x0))
    # measured (energy, colour SW2 left): weight 0.5 (0.58, 0.78), weight 1 (0.38, 0.65), 3 steps (0.23, 0.52)
    for closer, further in ((left[1.0, 3], left[1.0, 1]), (left[1.0, 1], left[0.5, 1])):
        assert closer[0] < further[0] and closer[1] < further[1], left
    assert left[1.0, 1][0] < 0.5 and left[1.0, 3][0] < 0.3 and left[1.0, 3][1] < 0.6, left
    # where the pixels are does not matter: the reference shuffled has no palette energy
    shuffled = reference.flatten(2)[:, :, torch.randperm(size * size, generator=torch.Generator().manual_seed(0))]
    assert float(energy(EnergyTerm(energy="palette", reference=reference), shuffled.view_as(reference))[0]) < 1e-12


def test_palette_directions_are_orthonormal_frames_so_its_step_is_isotropic():
    term = EnergyTerm(energy="palette", reference=two_colour_picture())
    d = ENERGIES["palette"].prepare(term, (3, 16, 16)).directions.double()  # [C, K]
    assert d.shape == (3, 3 * PALETTE_FRAMES)
    for frame in d.split(3, dim=1):
        torch.testing.assert_close(frame.T @ frame, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(d @ d.T, PALETTE_FRAMES * torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-5)
    assert len({tuple(f.abs().flatten().round(decimals=4).tolist()) for f in d.split(3, dim=1)}) == PALETTE_FRAMES


# ---------------------------------------------------------------- walks against the exact target

CASES = {
    "content": dict(energy="content", reference=content_picture()),
    "content_blur": dict(energy="content", reference=content_picture(), content_blur=2.0),
    "colour": dict(energy="colour", reference=colour_picture()),
    "palette": dict(energy="palette", reference=two_colour_picture()),
}


@pytest.fixture(scope="module")
def unguided(target):
    return walk(target)


@pytest.mark.parametrize("case", list(CASES))
def test_guidance_lowers_the_energy_more_with_more_weight(target, unguided, case):
    terms = [EnergyTerm(weight=w, **CASES[case]) for w in (0.0, 0.05, 0.3)]
    results = [walk(target, term) for term in terms]
    assert all(r.nfe == unguided.nfe for r in results), "the energy term must add no evaluations"
    assert torch.equal(results[0].x, unguided.x), "weight 0 must leave the walk unchanged"
    e = [energy(terms[0], r.x) for r in results]
    assert_lower(e[1], e[0], f"{case}: weight 0.05 against unguided")
    assert_lower(e[2], e[1], f"{case}: weight 0.3 against 0.05")
    assert torch.isfinite(results[2].x).all()


def test_content_guidance_moves_samples_towards_the_content(target, unguided):
    content = content_picture()
    guided = walk(target, EnergyTerm(weight=0.1, energy="content", reference=content, content_blur=1.0))
    distance = lambda x: (x - content).flatten(1).norm(dim=1)  # noqa: E731
    assert_lower(distance(guided.x), distance(unguided.x), "distance to the content picture")


def test_colour_guidance_moves_channel_statistics_towards_the_reference(target, unguided):
    reference = colour_picture()
    guided = walk(target, EnergyTerm(weight=0.1, energy="colour", reference=reference))
    ref_mean, ref_std = (t[:, :1] for t in channel_stats(reference))
    (gm, gs), (um, us) = channel_stats(guided.x), channel_stats(unguided.x)
    for c in range(3):
        assert_lower((gm[c] - ref_mean[c]).abs(), (um[c] - ref_mean[c]).abs(), f"channel {c} mean gap")
        assert_lower((gs[c] - ref_std[c]).abs(), (us[c] - ref_std[c]).abs(), f"channel {c} std gap")


def test_each_item_is_guided_on_its_own(target):
    terms = (EnergyTerm(weight=0.2, energy="content", reference=content_picture(), content_blur=1.5, steps=2),
             EnergyTerm(weight=0.2, energy="colour", reference=colour_picture()),
             EnergyTerm(weight=0.3, energy="palette", reference=two_colour_picture()))
    pair = walk(target, *terms, request=WalkRequest(steps=8, seed=11, batch_size=2)).x
    alone = walk(target, *terms, request=WalkRequest(steps=8, seed=12, batch_size=1)).x
    torch.testing.assert_close(pair[1:], alone, rtol=0, atol=1e-5)


def test_runs_under_inference_mode_like_comfyui(target):
    """ComfyUI runs nodes under torch.inference_mode(); the gradient must still work there."""
    request = WalkRequest(steps=6, seed=2, batch_size=3)
    term = EnergyTerm(weight=0.2, energy="content", reference=content_picture(), content_blur=1.0)
    expected = walk(target, term, request=request).x
    with torch.inference_mode():
        reference = content_picture() * 1.0  # an inference tensor, as ComfyUI's images are
        reference_before = reference.clone()
        got = walk(target, EnergyTerm(weight=0.2, energy="content", reference=reference, content_blur=1.0),
                   request=request).x
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert torch.equal(reference, reference_before), "the reference must never change"


# ---------------------------------------------------------------- where it refuses to work


def test_latent_target_is_refused_before_any_evaluation():
    calls = []

    def denoiser(x, sigma, **extra):
        calls.append(1)
        return x

    latent = WalkTarget("a latent model", denoiser, "latent", 0.03, 14.6, (4, 8, 8))
    term = EnergyTerm(energy="content", reference=content_picture(8))
    with pytest.raises(ValueError, match="decoder"):
        run_walk(latent, WalkRequest(steps=3), GuidanceChain().plus(term))
    assert not calls


def test_vector_target_needs_the_reference_shape():
    vector = exact_target(image_3x16x16(), space="vector")
    ok = walk(vector, EnergyTerm(energy="colour", reference=colour_picture(16)), request=WalkRequest(steps=3))
    assert torch.isfinite(ok.x).all()
    with pytest.raises(ValueError, match="same shape"):
        walk(vector, EnergyTerm(energy="content", reference=content_picture(8)), request=WalkRequest(steps=3))


def test_content_batch_must_be_one_or_the_walks(target):
    term = EnergyTerm(energy="content", reference=content_picture().expand(2, -1, -1, -1))
    with pytest.raises(ValueError, match="one per item"):
        walk(target, term, request=WalkRequest(steps=3, batch_size=3))


@pytest.mark.parametrize("bad, match", [
    (dict(weight=2.5), "weight=2.5"), (dict(weight=-0.1), "weight"), (dict(steps=0), "steps=0"),
    (dict(steps=21), "steps=21"), (dict(content_blur=-1.0), "content_blur"), (dict(energy="style?"), "content"),
    (dict(reference=torch.zeros(3, 16, 16)), r"\[N, C, H, W\]"), (dict(start_percent=0.7, end_percent=0.2), "start"),
])
def test_bad_values_are_refused_with_what_is_allowed(bad, match):
    with pytest.raises(ValueError, match=match):
        EnergyTerm(**{"reference": content_picture(), **bad})


def test_term_is_an_immutable_value():
    a = EnergyTerm(energy="colour", reference=colour_picture())
    b = EnergyTerm(energy="colour", reference=colour_picture())
    assert a == b and hash(a) == hash(b)  # tensors are left out of equality and hash
    assert a != EnergyTerm(energy="colour", reference=colour_picture(), weight=0.5)
    with pytest.raises(AttributeError):
        a.weight = 1.0
    assert TERMS["energy"] is EnergyTerm


# ---------------------------------------------------------------- the node


def test_node_appends_one_energy_term():
    image = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    node = GuidanceStepEnergy()
    inputs = dict(energy="colour", image=image, weight=0.2, steps=2, content_blur=0.0, start_percent=0.1,
                  end_percent=0.9, schedule="linear")
    (first,) = node.add(**inputs)
    assert len(first) == 1
    (second,) = node.add(**{**inputs, "energy": "content", "content_blur": 1.5}, guidance=first)
    assert len(second) == 2 and second.terms[0] is first.terms[0]
    term = second.terms[1]
    assert isinstance(term, EnergyTerm) and (term.energy, term.steps, term.content_blur) == ("content", 2, 1.5)
    assert torch.equal(term.reference, image_to_walk(image))
    declared = GuidanceStepEnergy.INPUT_TYPES()
    assert set(declared["required"]["energy"][0]) == {"content", "colour", "palette", "style"}
    assert set(declared["optional"]) == {"guidance", "image", "style"}  # image: content/colour only


def test_node_validate_inputs_rejects_start_after_end():
    message = GuidanceStepEnergy.VALIDATE_INPUTS(start_percent=0.8, end_percent=0.3)
    assert isinstance(message, str) and "start_percent=0.8" in message and "end_percent" in message
    assert GuidanceStepEnergy.VALIDATE_INPUTS(start_percent=0.2, end_percent=0.3) is True
