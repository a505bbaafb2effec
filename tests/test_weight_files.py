"""Model and style files with integer or non-finite tensors are refused at load, naming the file and the tensor
(walk_core/weight_checks.py), instead of being truncated or blamed on the walk later."""
from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rwalk.models import load_model, save_model
from rwalk.models.checkpoint import load_state, save_state
from rwalk.models.unet import EDMDenoiser, UNetConfig
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.style import encode_style, load_style, save_style


def rewrite(path, key, change):
    """The safetensors file at ``path`` with tensor ``key`` replaced by ``change(tensor)``, metadata kept."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors[key] = change(tensors[key])
    save_file(tensors, str(path), metadata=metadata)


def to_int(t):
    return (t * 1000).to(torch.int32)


def with_nan(t):
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


@pytest.fixture(scope="module")
def style_code():
    return encode_style(reference_image("marble", 32, 32, 0)[None] * 2 - 1, statistics="gram")


@pytest.mark.parametrize("change, needle", [(to_int, "has dtype int32; expected a floating dtype"),
                                            (with_nan, "has 1 non-finite value")])
def test_style_file_with_integer_or_nan_statistics_is_refused(tmp_path, style_code, change, needle):
    path = save_style(style_code, tmp_path / "s.safetensors")
    load_style(path)  # the untouched file loads
    key = sorted(style_code.stats)[0]
    rewrite(path, key, change)
    with pytest.raises(ValueError, match=rf"load_style \(.*s.safetensors\): tensor '{key}' {needle}"):
        load_style(path)


@pytest.mark.parametrize("change, needle", [(to_int, "has dtype int32"), (with_nan, "has 1 non-finite")])
def test_model_file_with_integer_or_nan_weights_is_refused(tmp_path, change, needle):
    path = save_model(EDMDenoiser(UNetConfig(width=8, mults=(1,), blocks=1)), tmp_path / "m.safetensors")
    load_model(path)
    with safe_open(str(path), framework="pt") as f:
        key = sorted(k for k in f.keys() if k.endswith(".weight"))[0]
    rewrite(path, key, change)
    with pytest.raises(ValueError, match=rf"load_model \(.*m.safetensors\): tensor '{key}' {needle}"):
        load_model(path)


def test_training_state_with_integer_moments_is_refused_but_its_generator_state_is_bytes(tmp_path):
    tensors = {"model.w": torch.ones(2), "adam.0.exp_avg": torch.zeros(2), "rng": torch.zeros(4, dtype=torch.uint8)}
    path = save_state(tmp_path / "m.state.safetensors", tensors, {"step": "1"})
    assert load_state(path)[1]["step"] == "1"
    rewrite(path, "adam.0.exp_avg", lambda t: t.to(torch.int64))
    with pytest.raises(ValueError, match=r"resume \(.*\): tensor 'adam.0.exp_avg' has dtype int64"):
        load_state(path)
