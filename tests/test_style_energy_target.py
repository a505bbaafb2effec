"""The style-energy target (walk_core/targets/style_energy.py) and its node, TargetDistributionStyle.

Walks are small (32 px, the random encoder, a dozen levels) so the file stays fast; every comparison is made
at the same seeds and the same number of evaluations.
"""
from __future__ import annotations

import pytest
import torch

from rwalk.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from rwalk.nodes.targets_style import TargetDistributionStyle
from rwalk.walk_core import WalkRequest, WalkTarget, run_walk
from rwalk.walk_core.guidance.energy import gaussian_blur
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.style import StyleCode, encode_style, style_distance
from rwalk.walk_core.style.spectrum import spectrum_distance
from rwalk.walk_core.style.encoders import MIN_SIZE
from rwalk.walk_core.targets.patterns import pattern
from rwalk.walk_core.targets.style_energy import MAX_GRADIENT_STEPS, StyleEnergySpec, style_energy_target

SIZE = 32


def picture(name: str, size: int = SIZE) -> torch.Tensor:
    """A built-in pattern as a walk-space picture [1, 3, size, size] in [-1, 1]."""
    return pattern(name, size, size)[None] * 2 - 1


@pytest.fixture(scope="module")
def code():
    return encode_style(picture("stripes", 48))


def target(code, size=SIZE, **options) -> WalkTarget:
    """The spectrum term is off unless a test asks for it: these tests check the style term and its solver on
    the synthetic stripes pattern, whose line spectrum that term would dominate (the spectrum tests below
    use the pack's references)."""
    options.setdefault("spectrum_weight", 0.0)
    return style_energy_target(StyleEnergySpec(style=code, **options), size, size)


def walk(t: WalkTarget, seed=0, batch=2, steps=12, name="langevin", **options):
    return run_walk(t, WalkRequest(walk=name, steps=steps, seed=seed, batch_size=batch, options=options))


# ---------------------------------------------------------------- what the walk does


def test_walking_the_target_lowers_the_style_distance(code):
    result = walk(target(code, gradient_steps=4), batch=3, corrector_steps=1)
    final = style_distance(code, result.x)
    noise = style_distance(code, 0.5 * torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)))
    grey = style_distance(code, torch.zeros(1, 3, SIZE, SIZE))
    assert bool(torch.isfinite(result.x).all())
    assert float(final.max()) < 0.5 * float(noise.min()), (final.tolist(), noise.tolist())
    assert float(final.max()) < 0.5 * float(grey), (final.tolist(), float(grey))
    overshoot = (result.x.abs() - 1).clamp_min(0)  # the range term keeps the walk near [-1, 1]
    assert float(overshoot.max()) < 0.3 and float(overshoot.square().mean().sqrt()) < 0.05


def test_more_gradient_steps_reach_lower_energy(code):
    few = style_distance(code, walk(target(code, gradient_steps=1), seed=5, name="euler_ancestral").x)
    many = style_distance(code, walk(target(code, gradient_steps=6), seed=5, name="euler_ancestral").x)
    assert float(many.max()) < float(few.min()), (many.tolist(), few.tolist())


def test_content_weight_pulls_the_structure_towards_the_content(code):
    content = picture("rings")
    blurred = gaussian_blur(content, 2.0)

    def error(weight):
        x = walk(target(code, content=content, content_weight=weight, gradient_steps=3), seed=3,
                 name="euler_ancestral").x
        return (gaussian_blur(x, 2.0) - blurred).square().flatten(1).mean(1)

    free, pulled = error(0.0), error(30.0)
    assert float(pulled.max()) < 0.5 * float(free.min()), (pulled.tolist(), free.tolist())


# ---------------------------------------------------------------- the denoiser


@pytest.mark.parametrize("steps", [1, 3])
def test_every_call_costs_exactly_the_gradient_budget(code, steps):
    t = target(code, gradient_steps=steps)
    count = t.info["count"]
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    for i, sigma in enumerate((5.0, 0.3, 0.01)):
        t.denoiser(x * sigma, torch.full((2,), sigma))
        assert (count.calls, count.gradients) == (i + 1, (i + 1) * steps)
    result = walk(t, steps=4, corrector_steps=2)
    assert count.gradients == (3 + result.nfe) * steps


def test_high_noise_gives_the_prior_mean_and_low_noise_the_target_score(code):
    t = target(code, gradient_steps=8)
    g = torch.Generator().manual_seed(2)
    x = 0.3 * torch.randn(2, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    loud = t.denoiser(x * 100, torch.full((2,), 100.0, dtype=torch.float64))
    rms = loud.flatten(1).square().mean(1).sqrt()
    assert float(rms.max()) <= 8 * 0.1 + 0.01, "the prior mean (grey), moved at most K max_step"
    sigma = 1e-3  # the MAP step is then uncapped and first-order: D(x) = x - sigma^2 grad U(x)
    score = (t.denoiser(x, torch.full((2,), sigma, dtype=torch.float64)) - x) / sigma**2
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(t.energy(xg).sum(), xg)
    assert t.energy(x).shape == (2,)
    error = (score + grad).flatten(1).norm(dim=1) / grad.flatten(1).norm(dim=1)
    assert float(error.max()) < 0.05, error.tolist()


def test_denoiser_lowers_the_objective_from_the_gaussian_estimate(code):
    t = target(code, gradient_steps=4)
    x = 0.4 * torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    sigma, s = 0.3, 0.25
    gaussian = x * s**2 / (s**2 + sigma**2)

    def objective(y):
        return t.energy(y) + (y - x).square().sum() / (2 * sigma**2)

    out = t.denoiser(x, torch.tensor([sigma]))
    assert float(objective(out)) < float(objective(gaussian))


def test_runs_under_inference_mode_like_comfyui(code):
    request = WalkRequest(walk="euler_ancestral", steps=4, seed=2, batch_size=2)
    expected = run_walk(target(code, content=picture("rings"), gradient_steps=2), request).x
    with torch.inference_mode():
        content = picture("rings") * 1.0  # an inference tensor, as ComfyUI's images are
        got = run_walk(target(code, content=content, gradient_steps=2), request).x
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- determinism


def test_each_item_is_denoised_on_its_own(code):
    t = target(code, gradient_steps=3, content=picture("rings"))
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(6))
    sigma = torch.tensor([3.0, 0.3, 0.03])
    together = t.denoiser(x * sigma.view(-1, 1, 1, 1), sigma)
    for i in range(3):
        assert torch.equal(together[i:i + 1], t.denoiser(x[i:i + 1] * sigma[i], sigma[i:i + 1]))


def test_same_seed_is_bit_identical_and_item_i_is_the_run_with_seed_plus_i(code):
    t = target(code, gradient_steps=2)
    a, b = walk(t, seed=7, batch=3, steps=6), walk(t, seed=7, batch=3, steps=6)
    assert torch.equal(a.x, b.x)
    for i in range(3):
        alone = walk(t, seed=7 + i, batch=1, steps=6)
        assert alone.seeds == [7 + i]
        assert torch.equal(a.x[i:i + 1], alone.x), f"item {i} of the batch != a run with seed {7 + i}"


# ---------------------------------------------------------------- the spectrum term


def detail(x: torch.Tensor) -> torch.Tensor:
    """Mean squared Laplacian per picture, [B]: the energy of the finest detail (and of per-pixel noise)."""
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    return torch.nn.functional.conv2d(x, lap, groups=3).square().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("name", ["stained_glass", "marble"])
def test_the_spectrum_term_keeps_per_pixel_noise_out(name):
    """Without it the random encoder's statistics are met by dense colour noise (fine detail 2.8x / 3.0x the
    reference's for stained glass / marble, 48 px, 16 levels, two items); with it the pictures carry the
    reference's fine detail (1.03x / 1.1x measured) at a style distance no worse than 1.5x."""
    reference = reference_image(name, 96, 96, 0)[None] * 2 - 1
    code = encode_style(reference)
    request = WalkRequest(walk="langevin", steps=16, seed=0, batch_size=2, options={"corrector_steps": 2})
    plain, held = (run_walk(style_energy_target(StyleEnergySpec(style=code, spectrum_weight=u), 48, 48), request).x
                   for u in (0.0, 1.0))
    ratio_plain, ratio_held = detail(plain) / detail(reference), detail(held) / detail(reference)
    assert float(ratio_plain.min()) > 2.0 and float(ratio_held.max()) < 1.5, (ratio_plain, ratio_held)
    spectrum_plain, spectrum_held = (spectrum_distance(x, code.spectrum) for x in (plain, held))
    assert float(spectrum_held.max()) < 0.1 * float(spectrum_plain.min()), (spectrum_plain, spectrum_held)
    assert float(style_distance(code, held).max()) < 1.5 * float(style_distance(code, plain).min())


def test_a_code_without_a_spectrum_walks_without_the_term(caplog):
    code = encode_style(picture("stripes", 48))
    old = StyleCode(code.encoder_name, code.encoder_config, code.statistics, code.weights, code.stats, code.proj,
                    code.encoder)  # as loaded from a file saved before the spectrum existed
    request = WalkRequest(walk="langevin", steps=4, seed=3, options={"corrector_steps": 1})
    with caplog.at_level("WARNING"):
        t = style_energy_target(StyleEnergySpec(style=old, spectrum_weight=1.0), SIZE, SIZE)
    assert "no power spectrum" in caplog.text and "spectrum_weight=1" in caplog.text
    off = style_energy_target(StyleEnergySpec(style=code, spectrum_weight=0.0), SIZE, SIZE)
    assert torch.equal(run_walk(t, request).x, run_walk(off, request).x)
    assert "spectrum" not in t.info["terms"](torch.zeros(1, 3, SIZE, SIZE))


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("bad, match", [
    (dict(gradient_steps=0), "gradient_steps=0"),
    (dict(gradient_steps=MAX_GRADIENT_STEPS + 1), f"1..{MAX_GRADIENT_STEPS}"),
    (dict(gradient_steps=2.5), "gradient_steps"),
    (dict(temperature=0.0), "temperature=0.0"),
    (dict(prior_std=-1.0), "prior_std"),
    (dict(content_weight=float("nan")), "content_weight"),
    (dict(content_blur=-1.0), "content_blur"),
    (dict(spectrum_weight=-0.5), "spectrum_weight=-0.5"),
    (dict(spectrum_weight=float("inf")), "spectrum_weight"),
    (dict(content=torch.full((1, 3, 8, 8), float("nan"))), "non-finite"),
    (dict(content=torch.zeros(2, 3, 8, 8)), r"expected one walk-space picture \[1, 3, H, W\]"),
])
def test_bad_values_are_refused_with_what_is_allowed(code, bad, match):
    with pytest.raises(ValueError, match=match) as error:
        StyleEnergySpec(style=code, **bad)
    assert "style_energy_target" in str(error.value)


def test_style_must_be_a_style_code():
    with pytest.raises(ValueError, match="expected a StyleCode"):
        StyleEnergySpec(style=torch.zeros(3))


def test_a_size_below_the_encoder_minimum_is_refused_before_walking(code):
    t = target(code)
    with pytest.raises(ValueError, match=f"width=8.*{MIN_SIZE}"):
        t.at_size(8, 32)
    assert t.info["count"].calls == 0
    with pytest.raises(ValueError, match="expected \\[B, 3, 32, 32\\]"):
        t.denoiser(torch.zeros(1, 3, 16, 16), torch.ones(1))


# ---------------------------------------------------------------- the node


def test_node_is_registered_and_builds_a_resizable_pixel_target(code):
    assert NODE_CLASS_MAPPINGS["TargetDistributionStyle"] is TargetDistributionStyle
    assert NODE_DISPLAY_NAME_MAPPINGS["TargetDistributionStyle"] == "Target Distribution (style energy)"
    declared = TargetDistributionStyle.INPUT_TYPES()
    assert set(declared["optional"]) == {"content"}
    assert declared["required"]["gradient_steps"][1]["max"] == MAX_GRADIENT_STEPS
    image = pattern("rings", 20, 20).permute(1, 2, 0)[None]  # ComfyUI IMAGE [1, H, W, 3] in [0, 1]
    assert declared["required"]["spectrum_weight"][1]["default"] == StyleEnergySpec(style=code).spectrum_weight == 1
    (t,) = TargetDistributionStyle().build(code, 0.01, 0.25, 2, 5.0, 1.0, 0.5, content=image)
    assert t.space == "pixels" and t.takes_size and t.energy is not None and t.info["spectrum_weight"] == 0.5
    sized = t.at_size(24, 16)
    assert sized.shape == (3, 16, 24)
    result = run_walk(sized, WalkRequest(walk="pc", steps=3, seed=1, batch_size=2))
    assert result.x.shape == (2, 3, 16, 24) and bool(torch.isfinite(result.x).all())
    assert sized.info["count"].gradients == 2 * result.nfe


def test_node_errors_name_the_node(code):
    node = TargetDistributionStyle()
    with pytest.raises(ValueError, match="TargetDistributionStyle: gradient_steps=0"):
        node.build(code, 0.01, 0.25, 0, 1.0, 2.0)
    with pytest.raises(ValueError, match="TargetDistributionStyle: content has 2 pictures"):
        node.build(code, 0.01, 0.25, 2, 1.0, 2.0, content=torch.rand(2, 16, 16, 3))
    with pytest.raises(ValueError, match="TargetDistributionStyle: input 'style' must be linked to a WALK_STYLE"):
        node.build("not a style", 0.01, 0.25, 2, 1.0, 2.0)
