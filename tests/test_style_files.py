"""Style Encoder: Save / Load (nodes/style_files.py): style codes as files, in the nodes and headless."""
from __future__ import annotations

import pytest
import torch

from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes.style_files import NONE_YET, StyleEncoderLoad, StyleEncoderSave, style_names
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, run_workflow, use_paths
from rwalk.walk_core.style import encode_style, style_distance

TABLE = {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}


@pytest.fixture
def paths(tmp_path):
    with use_paths(RunnerPaths(tmp_path / "in", tmp_path / "out")) as p:
        yield p


def sampler_inputs(**chosen):
    """WalkSampler's required inputs at their defaults, with ``chosen`` ones set."""
    declared = NODE_CLASS_MAPPINGS["WalkSampler"].INPUT_TYPES()["required"]
    values = {name: options.get("default", kind[0] if isinstance(kind, list) else None)
              for name, (kind, options) in declared.items()}
    return {**{k: v for k, v in values.items() if v is not None}, **chosen}


def code():
    return encode_style(reference_image("marble", 32, 32, 0)[None] * 2 - 1, statistics="all")


def test_save_never_overwrites_and_load_gives_the_same_style(paths):
    assert style_names() == [NONE_YET]
    original = code()
    (passed,) = StyleEncoderSave().save(original, "marble")
    assert passed is original
    StyleEncoderSave().save(original, "marble.safetensors")
    folder = paths.output_dir / "walk_styles"
    assert sorted(p.name for p in folder.iterdir()) == ["marble.safetensors", "marble_2.safetensors"]
    assert style_names() == ["marble.safetensors", "marble_2.safetensors"]
    (back,) = StyleEncoderLoad().load("marble_2.safetensors")
    assert back == original and torch.equal(back.spectrum, original.spectrum)
    x = reference_image("bricks", 32, 32, 0)[None] * 2 - 1
    assert torch.equal(style_distance(back, x), style_distance(original, x))


def test_load_refusals_say_where_it_looked_and_what_is_there(paths):
    with pytest.raises(FileNotFoundError, match="no style code in .*walk_styles; save one"):
        StyleEncoderLoad().load(NONE_YET)
    StyleEncoderSave().save(code(), "kept")
    with pytest.raises(FileNotFoundError, match=r"style_name='other.safetensors' is not a file in .*found: kept"):
        StyleEncoderLoad().load("other.safetensors")
    with pytest.raises(ValueError, match="StyleEncoderLoad: style_name .*outside"):
        StyleEncoderLoad().load("../kept.safetensors")
    with pytest.raises(ValueError, match="StyleEncoderSave: name .*outside"):
        StyleEncoderSave().save(code(), "../../escape")


def test_a_style_saved_by_one_workflow_walks_in_another(tmp_path):
    paths = RunnerPaths(tmp_path / "in", tmp_path / "out")
    save = {"1": {"class_type": "ReferenceImage", "inputs": {"reference": "stained_glass", "width": 32, "height": 32,
                                                             "seed": 0, "batch_size": 1}},
            "2": {"class_type": "StyleEncoder", "inputs": {"images": ["1", 0], "encoder": "random",
                                                           "statistics": "gram", "weights": "", "encoder_seed": 3}},
            "3": {"class_type": "StyleEncoderSave", "inputs": {"style": ["2", 0], "name": "glass"}}}
    run_workflow(save, TABLE, paths=paths, progress=False)
    assert (tmp_path / "out" / "walk_styles" / "glass.safetensors").is_file()
    walk = {"1": {"class_type": "StyleEncoderLoad", "inputs": {"style_name": "glass.safetensors"}},
            "2": {"class_type": "TargetDistributionStyle", "inputs": {
                "style": ["1", 0], "temperature": 0.01, "prior_std": 0.25, "gradient_steps": 2, "content_weight": 1.0,
                "content_blur": 2.0, "spectrum_weight": 1.0}},
            "3": {"class_type": "WalkSampler", "inputs": sampler_inputs(target=["2", 0], walk="langevin", steps=3,
                                                                        width=24, height=24)},
            "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "walked"}}}
    result = run_workflow(walk, TABLE, paths=paths, progress=False)
    assert [p.name for p in result.saved] == ["walked_00001_.png"]


def test_a_saved_style_file_gets_the_normal_file_mode(paths):
    import os
    umask = os.umask(0o022)
    os.umask(umask)
    StyleEncoderSave().save(code(), "mode")
    path = paths.output_dir / "walk_styles" / "mode.safetensors"
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask  # not safetensors' own 0600
