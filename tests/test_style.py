"""Style statistics: the random encoder, the statistics' invariances, weighted references, save/load, the
vgg19 weights file (a random state dict, never real weights), the style energy in a walk, and the node.

Walk comparisons are paired (same seeds, same evaluations): the guided walk must beat the unguided one by
more than Z standard errors of the per-item differences.
"""
from __future__ import annotations

import pytest
import torch

from rwalk.nodes.guidance_energy import GuidanceStepEnergy
from rwalk.nodes.style import StyleEncoder
from rwalk.walk_core import GuidanceChain, WalkRequest, run_walk
from rwalk.walk_core.guidance.energy import EnergyTerm
from rwalk.walk_core.style import (STATISTICS, StyleCode, encode_style, load_style, save_style, style_distance)
from rwalk.walk_core.style import encoders
from rwalk.walk_core.style.encoders import VGG19_FILE, RandomEncoder, build_encoder
from rwalk.walk_core.targets.image_mixture import ImageMixtureSpec, image_mixture_target
from rwalk.walk_core.targets.patterns import pattern

from style_fakes import random_vgg19_state, write_random_vgg19

Z = 3.0


def picture(name: str, size: int = 48) -> torch.Tensor:
    """A built-in pattern as a walk-space picture [1, 3, size, size] in [-1, 1]."""
    return pattern(name, size, size)[None] * 2 - 1


def texture(seed: int, size: int = 48) -> torch.Tensor:
    """A periodic random texture (a sum of a few random plane waves with whole periods), [1, 3, size, size]."""
    g = torch.Generator().manual_seed(seed)
    u = torch.arange(size, dtype=torch.float32) / size
    y, x = torch.meshgrid(u, u, indexing="ij")
    out = torch.zeros(3, size, size)
    for _ in range(6):
        fx, fy = torch.randint(-6, 7, (2,), generator=g).tolist()
        phase, colour = torch.rand(1, generator=g) * 6.28, torch.rand(3, 1, 1, generator=g) - 0.5
        out = out + colour * torch.sin(6.2832 * (fx * x + fy * y) + phase)
    return (out / out.abs().max())[None]


# ---------------------------------------------------------------- encoders and statistics


def test_random_encoder_is_deterministic_for_a_seed_and_differs_across_seeds():
    x = picture("rings", 32)
    a, b, c = (RandomEncoder(seed=s).features(x) for s in (7, 7, 8))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.allclose(a[0], c[0])
    for size in (16, 17, 40):  # any size from 16 px
        assert len(RandomEncoder().features(torch.zeros(2, 3, size, size + 3))) == 3
    with pytest.raises(ValueError, match="at least 16 px"):
        RandomEncoder().features(torch.zeros(1, 3, 12, 40))


@pytest.mark.parametrize("statistics", STATISTICS)
def test_statistics_are_translation_robust_like_gram_matrices(statistics):
    a, b = texture(1), texture(2)
    code = encode_style(a, statistics=statistics)
    shifted = torch.roll(a, shifts=(13, 7), dims=(2, 3))  # the same periodic texture, moved
    d_shift, d_other = float(style_distance(code, shifted)), float(style_distance(code, b))
    assert float(style_distance(code, a)) == pytest.approx(0.0, abs=1e-6)
    assert d_shift < 0.1 * d_other, (d_shift, d_other)


@pytest.mark.parametrize("statistics", STATISTICS)
@pytest.mark.parametrize("a, b", [("checker", "stripes"), ("dots", "rings"), ("sunset", "hills")])
def test_a_code_is_closest_to_its_own_picture(a, b, statistics):
    code = encode_style(picture(a), statistics=statistics)
    distances = style_distance(code, torch.cat([picture(a), picture(b)]))  # per item, [2]
    assert distances.shape == (2,) and float(distances[0]) < float(distances[1])


def test_weights_average_the_references():
    a, b = picture("checker"), picture("dots")
    alone = encode_style(a, statistics="all")
    mixed = encode_style(torch.cat([a, b]), statistics="all", weights=(1.0, 0.0))
    assert set(mixed.stats) == set(alone.stats)
    assert all(torch.equal(mixed.stats[k], alone.stats[k]) for k in alone.stats)
    half = encode_style(torch.cat([a, b]), statistics="gram", weights=(2.0, 2.0))
    both = (encode_style(a).stats["gram.0"] + encode_style(b).stats["gram.0"]) / 2
    assert half.weights == (0.5, 0.5) and torch.allclose(half.stats["gram.0"], both, atol=1e-6)
    with pytest.raises(ValueError, match="one per picture"):
        encode_style(torch.cat([a, b]), weights=(1.0,))
    with pytest.raises(ValueError, match="positive sum"):
        encode_style(a, weights=(0.0,))


def test_style_distance_is_differentiable():
    code = encode_style(picture("stripes"), statistics="all")
    x = picture("checker").repeat(2, 1, 1, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(style_distance(code, x).sum(), x)
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("statistics", STATISTICS)
def test_save_load_round_trips_bit_exactly(tmp_path, statistics):
    code = encode_style(torch.cat([picture("dots"), picture("hills")]), statistics=statistics,
                        weights=(0.3, 0.7), encoder_config={"seed": 5})
    back = load_style(save_style(code, tmp_path / "style.safetensors"))
    assert back == code and back.encoder_config == code.encoder_config
    assert set(back.stats) == set(code.stats) and set(back.proj) == set(code.proj)
    assert all(torch.equal(back.stats[k], code.stats[k]) for k in code.stats)
    assert all(torch.equal(back.proj[k], code.proj[k]) for k in code.proj)
    x = picture("rings")
    assert torch.equal(style_distance(back, x), style_distance(code, x))


def test_a_damaged_or_foreign_file_is_refused_clearly(tmp_path):
    path = save_style(encode_style(picture("dots")), tmp_path / "style.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_style(tmp_path / "cut.safetensors")
    with pytest.raises(FileNotFoundError, match="absent.safetensors.*no such file"):
        load_style(tmp_path / "absent.safetensors")
    from safetensors.torch import save_file
    save_file({"gram.0": torch.zeros(2, 2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="rwalk.style"):
        load_style(tmp_path / "foreign.safetensors")
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    save_file(tensors, str(tmp_path / "newer.safetensors"), metadata={**metadata, "version": "2"})
    with pytest.raises(ValueError, match=r"version '2'; this pack reads style codes of version '1'"):
        load_style(tmp_path / "newer.safetensors")
    code = encode_style(picture("dots"))
    save_style(StyleCode(code.encoder_name, code.encoder_config, code.statistics, code.weights,
                         {**code.stats, "gram.1": torch.zeros(3, 3)}, {}, code.encoder), tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match=r"gram\.1 has shape \(3, 3\)"):
        load_style(tmp_path / "bad.safetensors")
    del code.stats["gram.2"]
    save_style(code, tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="gram.2"):
        load_style(tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- vgg19 weights


@pytest.mark.parametrize("pictures, match", [
    (torch.zeros(0, 3, 32, 32), r"empty batch \(0 pictures\)"),
    (torch.zeros(2, 4, 32, 32), r"shape \[2, 4, 32, 32\]; expected a batch of RGB pictures"),
    (torch.zeros(3, 32, 32), r"shape \[3, 32, 32\]"),
    (torch.zeros(2, 3, 8, 8), r"8x8 px is too small; expected at least 16 px per side \(StyleEncoder's images"),
])
def test_bad_reference_batches_are_refused_naming_the_input(pictures, match):
    with pytest.raises(ValueError, match=match):
        encode_style(pictures)


def test_non_finite_reference_pixels_are_refused_naming_the_picture():
    pictures = torch.cat([picture("dots"), picture("hills"), picture("rings")])
    pictures[1, 2, 5, 7] = float("nan")
    pictures[2, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"picture\(s\) \[1, 2\] of 3 have non-finite pixels"):
        encode_style(pictures)
    assert all(bool(torch.isfinite(v).all()) for v in encode_style(pictures[:1]).stats.values())


def test_vgg19_absent_names_the_file_the_folders_and_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path / "pack")
    with pytest.raises(FileNotFoundError) as error:
        build_encoder("vgg19", search_dirs=[tmp_path / "comfy"])
    text = str(error.value)
    assert VGG19_FILE in text and str(tmp_path / "pack") in text and str(tmp_path / "comfy") in text
    assert "save_file" in text and "torchvision" in text


def test_the_weights_folder_says_how_to_make_vgg19_as_the_error_does():
    from rwalk.walk_core.style.encoders import MAKE_VGG19, PACK_WEIGHTS_DIR

    readme = (PACK_WEIGHTS_DIR / "README.md").read_text()
    code = [line.strip() for line in MAKE_VGG19.splitlines()[1:]]  # after "make it once ...:"
    assert len(code) == 3 and all(line in readme for line in code), code


def test_vgg19_from_a_random_safetensors_file_loads_and_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path / "pack")
    write_random_vgg19(tmp_path / VGG19_FILE)  # found in the extra (ComfyUI) folder
    code = encode_style(picture("checker", 32), "vgg19", "all", search_dirs=[tmp_path])
    assert code.layers == 5 and code.stats["gram.3"].shape == (512, 512)
    d = style_distance(code, torch.cat([picture("checker", 32), picture("stripes", 32)]))
    assert float(d[0]) == pytest.approx(0.0, abs=1e-5) and float(d[1]) > 0
    back = load_style(save_style(code, tmp_path / "v.safetensors"), search_dirs=[tmp_path])
    assert torch.equal(back.stats["gram.4"], code.stats["gram.4"])


@pytest.mark.parametrize("change, match", [
    (lambda s: s.pop("features.21.weight"), "missing keys features.21.weight"),
    (lambda s: s.update({"features.7.bias": torch.zeros(3)}), r"features.7.bias has shape \(3,\)"),
    (lambda s: s.update({"features.99.weight": torch.zeros(1)}), "unexpected keys features.99.weight"),
])
def test_vgg19_wrong_keys_or_shapes_name_the_key(tmp_path, change, match):
    state = random_vgg19_state()
    change(state)
    write_random_vgg19(tmp_path / VGG19_FILE, state)
    with pytest.raises(ValueError, match=match):
        build_encoder("vgg19", search_dirs=[tmp_path])


# ---------------------------------------------------------------- the style energy in a walk


def test_style_energy_lowers_the_style_distance_at_equal_evaluations():
    size, batch = 24, 12
    target = image_mixture_target(ImageMixtureSpec(), size, size)
    code = encode_style(picture("stripes", size))
    request = WalkRequest(walk="euler_ancestral", steps=8, seed=11, batch_size=batch)
    unguided = run_walk(target, request, GuidanceChain())
    guided = run_walk(target, request, GuidanceChain().plus(EnergyTerm(weight=0.5, energy="style", style=code,
                                                                       steps=2)))
    assert guided.nfe == unguided.nfe
    diff = (style_distance(code, unguided.x) - style_distance(code, guided.x)).double()
    se = float(diff.std()) / batch ** 0.5
    assert float(diff.mean()) > Z * se, (float(diff.mean()), se)


def test_style_energy_refusals():
    with pytest.raises(ValueError, match="needs a style"):
        EnergyTerm(energy="style")
    term = EnergyTerm(energy="style", style=encode_style(picture("dots")))
    small = image_mixture_target(ImageMixtureSpec(), 8, 8)
    with pytest.raises(ValueError, match="at least 16 px"):
        run_walk(small, WalkRequest(steps=2), GuidanceChain().plus(term))


# ---------------------------------------------------------------- nodes


def comfy_image(name: str, size: int = 32) -> torch.Tensor:
    return pattern(name, size, size).permute(1, 2, 0)[None]  # [1, H, W, 3] in [0, 1]


def test_style_encoder_node_returns_a_walk_style():
    images = torch.cat([comfy_image("dots"), comfy_image("rings")])
    (code,) = StyleEncoder().encode(images, "random", "mean_std", "1, 3", 4)
    assert isinstance(code, StyleCode) and code.weights == (0.25, 0.75) and code.encoder_config["seed"] == 4
    with pytest.raises(ValueError, match="weights='1, x'"):
        StyleEncoder().encode(images, "random", "gram", "1, x", 0)
    with pytest.raises(ValueError, match="3 weights for 2 pictures"):
        StyleEncoder().encode(images, "random", "gram", "1,2,3", 0)


def test_energy_node_takes_the_style_input_and_names_missing_inputs():
    (code,) = StyleEncoder().encode(comfy_image("dots"), "random", "gram", "", 0)
    args = dict(weight=0.3, steps=1, content_blur=0.0, start_percent=0.0, end_percent=1.0, schedule="constant")
    (chain,) = GuidanceStepEnergy().add(energy="style", image=None, style=code, **args)
    term = chain.terms[-1]
    assert term.energy == "style" and term.style is code and term.reference is None
    with pytest.raises(ValueError, match="'style' input"):
        GuidanceStepEnergy().add(energy="style", image=comfy_image("dots"), **args)
    with pytest.raises(ValueError, match="'image' input"):
        GuidanceStepEnergy().add(energy="content", image=None, style=code, **args)
