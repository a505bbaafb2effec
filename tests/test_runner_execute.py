"""Running workflows headless: order, overrides, errors, image IO and PNG metadata."""
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import _runner_fakes as fakes  # tests/ is on sys.path (conftest.py)

runner = fakes.load_runner()
TABLE = fakes.node_table(runner)


@pytest.fixture(autouse=True)
def _clear_calls():
    fakes.CALLS.clear()


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "input").mkdir()
    return runner.RunnerPaths(tmp_path / "input", tmp_path / "output")


def run(api, paths, **kw):
    return runner.run_workflow(api, TABLE, paths=paths, progress=False, **kw)


def test_runs_needed_nodes_in_topological_order_and_skips_unused(paths):
    result = run(fakes.simple_api(), paths)
    assert result.order == ["1", "2", "3"]
    assert [c[0] for c in fakes.CALLS] == ["MakeImage", "Invert", "Collect"]
    assert result.ui == {"3": {"text": ["hello"]}}
    assert result.outputs["1"][0].shape == (1, 8, 16, 3)
    assert result.outputs["3"] == ()


def test_shared_node_runs_once_and_nothing_is_cached_across_runs(paths):
    api = {"1": {"class_type": "MakeImage", "inputs": {"width": 4, "height": 4, "seed": 3, "color": "red"}},
           "2": {"class_type": "Invert", "inputs": {"image": ["1", 0]}},
           "3": {"class_type": "Blend", "inputs": {"a": ["1", 0], "b": ["2", 0], "factor": 0.25}},
           "4": {"class_type": "Collect", "inputs": {"images": ["3", 0]}},
           "5": {"class_type": "Collect", "inputs": {"images": ["1", 0]}}}
    result = run(api, paths)
    assert [c[0] for c in fakes.CALLS].count("MakeImage") == 1
    assert result.order.index("1") < result.order.index("2") < result.order.index("3") < result.order.index("4")
    run(api, paths)
    assert [c[0] for c in fakes.CALLS].count("MakeImage") == 2


def test_hidden_inputs_are_supplied(paths):
    ui = fakes.simple_ui()
    run(runner.ui_to_api(ui, TABLE), paths, ui_workflow=ui)
    collect = fakes.CALLS[-1][1]
    assert collect["unique_id"] == "3"
    assert collect["prompt"]["1"]["class_type"] == "MakeImage"
    assert collect["extra_pnginfo"] == {"workflow": ui}


def test_overrides_parse_by_declared_type_and_node_may_be_named_by_class(paths):
    api = fakes.simple_api()
    out = runner.apply_overrides(api, ["1.width=4", "Invert.strength=0.25", "1.color=red", "3.label=a=b"], TABLE)
    assert out["1"]["inputs"]["width"] == 4 and out["2"]["inputs"]["strength"] == 0.25
    assert out["1"]["inputs"]["color"] == "red" and out["3"]["inputs"]["label"] == "a=b"
    assert api["1"]["inputs"]["width"] == 16  # the original is not changed
    result = run(api, paths, overrides=["1.width=4", "1.height=2"])
    assert result.outputs["1"][0].shape == (1, 2, 4, 3)
    flags = runner.apply_overrides({"1": {"class_type": "Options", "inputs": {}}}, ["1.flag=true"], TABLE)
    assert flags["1"]["inputs"]["flag"] is True


@pytest.mark.parametrize("override, match", [
    ("9.width=4", "no node '9'"),
    ("MakeImage.width=4", "2 nodes match"),
    ("1.colour=red", "has no input 'colour'"),
    ("1.width=wide", "cannot use 'wide'; expected an integer in 1..64"),
    ("1.color=purple", "expected one of \\['red', 'green', 'blue'\\]"),
    ("2.image=x", "IMAGE socket"),
    ("1width4", "expected NODE.INPUT=VALUE"),
])
def test_bad_overrides_are_clear_errors(override, match):
    with pytest.raises(runner.WorkflowError, match=match):
        runner.apply_overrides(fakes.simple_api(), [override], TABLE)


def test_override_out_of_range_is_caught_by_validation_before_running(paths):
    with pytest.raises(runner.WorkflowError, match="above the maximum 64"):
        run(fakes.simple_api(), paths, overrides=["1.width=1000"])
    assert fakes.CALLS == []


def test_seed_sets_every_seed_input():
    api = {**fakes.simple_api(), "5": {"class_type": "NoiseSeed", "inputs": {"noise_seed": 1, "scale": 1.0}}}
    assert runner.seed_overrides(api, 7, TABLE) == ["1.seed=7", "4.seed=7", "5.noise_seed=7"]
    seeded = runner.set_seed(api, 7, TABLE)
    assert [seeded[n]["inputs"].get("seed", seeded[n]["inputs"].get("noise_seed")) for n in ("1", "4", "5")] == [7] * 3


def test_node_errors_name_the_node_and_keep_the_cause(paths):
    api = {**fakes.save_api(), "3": {"class_type": "Boom", "inputs": {"image": ["1", 0]}},
           "4": {"class_type": "Collect", "inputs": {"images": ["3", 0]}}}
    with pytest.raises(runner.NodeExecutionError) as info:
        run(api, paths)
    assert "node 3 (Boom)" in str(info.value) and "kaboom" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert (info.value.node_id, info.value.class_type) == ("3", "Boom")


def test_progress_hook_is_installed_per_node(paths):
    fakes.Progressing.SEEN.clear()
    api = {"1": {"class_type": "MakeImage", "inputs": {"width": 4, "height": 4, "seed": 0, "color": "red"}},
           "2": {"class_type": "Progressing", "inputs": {"image": ["1", 0]}},
           "3": {"class_type": "Collect", "inputs": {"images": ["2", 0]}}}
    run(api, paths)
    assert len(fakes.Progressing.SEEN) == 1 and callable(fakes.Progressing.SEEN[0])


def test_terminal_progress_bar_draws_only_on_a_terminal():
    stream = io.StringIO()
    with runner.TerminalProgress("5 WalkSampler", stream, force=True, min_interval=0) as bar:
        for i in range(4):
            bar(i + 1, 4)
    text = stream.getvalue()
    assert "5 WalkSampler [" in text and "4/4" in text and text.endswith("\n")
    quiet = io.StringIO()
    runner.TerminalProgress("x", quiet)(1, 2)
    assert quiet.getvalue() == ""


def test_save_image_writes_numbered_pngs_with_the_workflow(paths):
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", [8, 4, 1, "fixed", "green"], outputs=["IMAGE"])
    ui.add(2, "SaveImage", ["walks/run"], inputs=[("images", "IMAGE")])
    ui.link(1, 0, 2, "images")
    ui = ui.build()
    api = runner.ui_to_api(ui, TABLE)
    first = run(api, paths, ui_workflow=ui, overrides=["1.width=6"])
    second = run(api, paths, ui_workflow=ui)
    folder = paths.output_dir / "walks"
    assert first.saved == [folder / "run_00001_.png"] and second.saved == [folder / "run_00002_.png"]
    assert first.ui["2"] == {"images": [{"filename": "run_00001_.png", "subfolder": "walks", "type": "output"}]}
    prompt, workflow = runner.read_png_workflow(first.saved[0])
    assert prompt["1"]["inputs"]["width"] == 6 and prompt["2"]["class_type"] == "SaveImage"
    assert workflow["nodes"][0]["widgets_values"][0] == 6  # the override is in the editor workflow too
    assert ui["nodes"][0]["widgets_values"][0] == 8  # the caller's copy is untouched
    with Image.open(first.saved[0]) as image:
        assert image.size == (6, 4) and image.mode == "RGB"
    api_again, ui_again = runner.load_workflow(first.saved[0], TABLE)  # a PNG is a workflow source
    assert api_again == prompt and ui_again == workflow


def test_preview_image_writes_to_temp(paths):
    api = {**fakes.save_api(), "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = run(api, paths)
    entry = result.ui["3"]["images"][0]
    assert entry["type"] == "temp" and entry["filename"].startswith("ComfyUI_temp_")
    assert (paths.temp_dir / entry["filename"]).is_file()
    assert len(result.saved) == 2


def test_load_image_reads_rgba_as_image_and_inverted_alpha_mask(paths):
    rgba = np.zeros((3, 5, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 64
    Image.fromarray(rgba, "RGBA").save(paths.input_dir / "ref.png")
    Image.fromarray(rgba[..., :3], "RGB").save(paths.input_dir / "rgb.png")
    assert runner.LoadImage.INPUT_TYPES  # the combo lists files of the current input folder
    api = {"1": {"class_type": "LoadImage", "inputs": {"image": "ref.png"}},
           "2": {"class_type": "LoadImage", "inputs": {"image": "rgb.png"}},
           "3": {"class_type": "Collect", "inputs": {"images": ["1", 0], "value": ["1", 1]}},
           "4": {"class_type": "Collect", "inputs": {"images": ["2", 0], "value": ["2", 1]}}}
    result = run(api, paths)
    image, mask = result.outputs["1"]
    assert image.shape == (1, 3, 5, 3) and image.dtype == torch.float32
    assert torch.allclose(image[..., 0], torch.ones(1, 3, 5))
    assert torch.allclose(mask, torch.full((1, 3, 5), 1 - 64 / 255))
    assert torch.equal(result.outputs["2"][1], torch.zeros(1, 3, 5))


def test_save_refuses_nan_images(paths):
    class NanImage:
        RETURN_TYPES = ("IMAGE",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        def run(self):
            return (torch.full((1, 2, 2, 3), float("nan")),)

    api = {"1": {"class_type": "NanImage", "inputs": {}},
           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(runner.NodeExecutionError, match="node 2 \\(SaveImage\\).*NaN"):
        runner.run_workflow(api, {**TABLE, "NanImage": NanImage}, paths=paths, progress=False)


def test_png_chunks_round_trip(tmp_path):
    path = runner.save_png(tmp_path / "a.png", np.zeros((2, 3, 3), np.uint8), prompt={"1": {"class_type": "X"}},
                           extra_pnginfo={"workflow": {"nodes": []}}, seeds=[5, 6])
    text = runner.read_png_text(path)
    assert json.loads(text["seeds"]) == [5, 6]
    assert runner.read_png_workflow(path) == ({"1": {"class_type": "X"}}, {"nodes": []})
    Image.new("RGB", (2, 2)).save(tmp_path / "plain.png")
    with pytest.raises(runner.WorkflowError, match="carries no workflow"):
        runner.read_png_workflow(tmp_path / "plain.png")
