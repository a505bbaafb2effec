"""The own-model nodes (TrainWalkModel, TargetDistributionCheckpoint) headless, and ``python cli.py train``."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cli
from rwalk.models import load_model
from rwalk.nodes.targets_checkpoint import TargetDistributionCheckpoint
from rwalk.nodes.train import TrainWalkModel
from rwalk.walk_core import WalkRequest, run_walk
from rwalk.walk_core.runner import RunnerPaths, use_paths

TINY = dict(size=16, minutes=0.0, steps=3, batch_size=4, learning_rate=1e-3, width=8, levels=2, blocks=1,
            attention=False, patch="1", crops="auto", seed=0, resume=True)


@pytest.fixture
def folders(tmp_path):
    with use_paths(RunnerPaths(tmp_path / "input", tmp_path / "output")) as paths:
        yield paths


def test_train_node_saves_a_model_the_checkpoint_node_loads(folders):
    # trained and loaded on the CPU: "auto" trains on a GPU where there is one, and a GPU run need not equal a
    # CPU one bit for bit (seen on an H200)
    target, path = TrainWalkModel().train("tex", references="bricks", device="cpu", **TINY)
    path = Path(path)
    assert path == folders.output_dir / "walk_models" / "tex.safetensors" and path.is_file()
    assert (path.parent / "tex.samples").is_dir() and (path.parent / "tex.metrics.jsonl").is_file()
    assert target.shape == (3, 16, 16)
    assert "tex.safetensors" in TargetDistributionCheckpoint.INPUT_TYPES()["required"]["model_name"][0]
    (loaded,) = TargetDistributionCheckpoint().load("tex.safetensors", "cpu", **{"class": ""})
    request = WalkRequest(walk="euler", steps=2, seed=3)
    assert torch.equal(run_walk(target, request).x, run_walk(loaded.at_size(16, 16), request).x)


def test_train_node_reports_progress_headless(folders):
    from rwalk.walk_core.progress import use_progress

    seen = []
    with use_progress(lambda done, total: seen.append((done, total))):
        TrainWalkModel().train("p", references="bricks", **TINY)
    assert seen[-1] == (1000, 1000) and len(seen) == TINY["steps"]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_train_node_resumes_and_trains_longer(folders):
    TrainWalkModel().train("r", references="marble", **TINY)
    _, path = TrainWalkModel().train("r", references="marble", **{**TINY, "steps": 5})
    assert load_model(path).training["steps"] == 5


def test_train_node_class_conditional_from_images_with_labels(folders):
    images = torch.rand(3, 24, 24, 3)
    target, path = TrainWalkModel().train("c", images=images, labels="sky, sea, sky", **TINY, **{"class": "sea"})
    assert load_model(path).classes == ("sky", "sea")
    assert target.unconditional is not None and target.info["class"] == "sea"


def test_train_node_from_a_folder_inside_the_input_folder(folders):
    import numpy as np
    from PIL import Image

    (folders.input_dir / "pics").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((20, 20, 3), 60 * i, dtype=np.uint8)).save(folders.input_dir / "pics" / f"{i}.png")
    _, path = TrainWalkModel().train("f", folder="pics", **TINY)
    assert "2 pictures" not in load_model(path).training["data"] and "pics" in load_model(path).training["data"]
    with pytest.raises(ValueError, match="outside the input folder"):
        TrainWalkModel().train("f", folder="../elsewhere", **TINY)


@pytest.mark.parametrize("sources,message", [
    ({}, "no data source given"),
    ({"references": "bricks", "folder": "x"}, "folder and references given"),
    ({"references": "bricks, clouds"}, r"references \['clouds'\] unknown"),
    ({"images": torch.rand(2, 16, 16, 3), "labels": "a"}, "gives 1 names for 2 pictures"),
])
def test_train_node_data_errors(folders, sources, message):
    with pytest.raises(ValueError, match=message):
        TrainWalkModel().train("e", **sources, **TINY)


def test_checkpoint_node_errors(folders):
    with pytest.raises(FileNotFoundError, match=r"model_name='none.safetensors' is not in .*found: none"):
        TargetDistributionCheckpoint().load("none.safetensors", "cpu", **{"class": ""})
    TrainWalkModel().train("u", references="bricks", **TINY)
    with pytest.raises(ValueError, match="unconditional"):
        TargetDistributionCheckpoint().load("u.safetensors", "cpu", **{"class": "cat"})


def test_cli_train_writes_and_resumes(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    args = ["train", "--references", "foliage", "--out", str(out), "--steps", "2", "--minutes", "0", "--size", "16",
            "--width", "8", "--levels", "2", "--blocks", "1", "--reference-size", "32", "--batch-size", "2", "-q"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert cli.main([*args[:6], "4", *args[7:]]) == 0
    assert load_model(out).training["steps"] == 4
    assert load_model(out).training["validation"] == "held out"


def test_cli_train_bad_input_exits_2(tmp_path, capsys):
    assert cli.main(["train", "--folder", str(tmp_path / "absent"), "--out", str(tmp_path / "m.safetensors"),
                     "-q"]) == 2
    assert "not a folder" in capsys.readouterr().err
