"""Every shipped workflow is public API: it is UI format, opens in the editor (widgets in declared
order), runs headless at small sizes, and writes PNGs that carry their graph back."""
from __future__ import annotations

import json
from pathlib import Path


import pytest
from PIL import Image

from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, load_workflow, read_png_workflow, run_workflow
from cli_module import load_cli  # tests/ is on sys.path (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
COMFY_LOADERS = {"CheckpointLoaderSimple", "CLIPVisionLoader"}  # a workflow that needs ComfyUI starts from one


def _needs_comfyui(path: Path) -> bool:
    """Whether a workflow loads a model file with ComfyUI's own nodes (its title and a Note name the file)."""
    return any(n["type"] in COMFY_LOADERS for n in json.loads(path.read_text())["nodes"])


EXAMPLES = sorted((ROOT / "workflows").glob("*.json"))  # all in one folder: ComfyUI's template browser lists it
WORKFLOWS = [p for p in EXAMPLES if not _needs_comfyui(p)]  # run headless
COMFY_WORKFLOWS = [p for p in EXAMPLES if _needs_comfyui(p)]  # need ComfyUI and its model files



def node_table():
    from rwalk.nodes import NODE_CLASS_MAPPINGS

    return {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}


TINY_TRAINING = {"size": 16, "steps": 2, "minutes": 0, "batch_size": 2, "width": 8, "levels": 2, "blocks": 1}


def small(api: dict) -> list[str]:
    """--set overrides that make every walk tiny (16x16, 3 steps, batch 1) and every training a few steps."""
    sets = []
    for node_id, node in api.items():
        if node["class_type"] == "WalkSampler":
            sets += [f"{node_id}.width=16", f"{node_id}.height=16", f"{node_id}.steps=3", f"{node_id}.batch_size=1"]
        if node["class_type"] == "TrainWalkModel":
            sets += [f"{node_id}.{k}={v}" for k, v in TINY_TRAINING.items()]
        if node["class_type"] in ("WalkVary", "WalkGrid", "WalkWander", "WalkOutpaint"):
            sets.append(f"{node_id}.steps=3")
        if node["class_type"] == "WalkVary":
            sets.append(f"{node_id}.count=1")
        if node["class_type"] == "WalkGrid":
            sets += [f"{node_id}.size=32", f"{node_id}.items=2"]
        if node["class_type"] == "WalkWander":
            sets += [f"{node_id}.frames=3", f"{node_id}.width=16", f"{node_id}.height=16"]
        if node["class_type"] == "XYPlotWalk":
            sets += [f"{node_id}.width=16", f"{node_id}.height=16", f"{node_id}.steps=3"]
        if node["class_type"] == "XYPlotAxis" and node["inputs"].get("input") == "steps":
            sets.append(f"{node_id}.values=2, 3")
        if node["class_type"] == "ReferenceImage" and any(n["class_type"] in ("WalkVary", "WalkOutpaint")
                                                           for n in api.values()):
            sets += [f"{node_id}.width=32", f"{node_id}.height=32"]  # the picture to vary / extend is walked
    return sets


def test_the_two_required_workflows_exist():
    names = {p.stem for p in WORKFLOWS}
    assert {"default", "compare_walks"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_is_ui_format_with_thumbnail(path):
    data = json.loads(path.read_text())
    assert "nodes" in data and "links" in data, "workflows/ holds editor (UI) format files"
    assert path.with_suffix(".jpg").is_file(), f"{path.name} needs a .jpg thumbnail beside it"
    api, ui = load_workflow(path, node_table())
    assert ui is not None and len(api) == len([n for n in data["nodes"] if n["type"] not in ("Note", "MarkdownNote")])
    # widgets_values hold exactly the declared widgets (+ the seed's control value) in declared order
    for node in data["nodes"]:
        if node["type"] == "WalkSampler":
            w = node["widgets_values"]
            assert w[0] in node_table()["WalkSampler"].INPUT_TYPES()["required"]["walk"][0]
            assert w[4] in ("fixed", "increment", "decrement", "randomize")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_runs_headless(path, tmp_path):
    table = node_table()
    api, ui = load_workflow(path, table)
    out = tmp_path / "out"
    result = run_workflow(api, table, ui_workflow=ui, overrides=small(api), progress=False,
                          paths=RunnerPaths(tmp_path / "in", out))
    assert result.saved, "a shipped workflow must save or preview at least one picture"
    for saved in result.saved:
        if saved.suffix == ".webp":  # an animation: one frame per picture of the batch
            with Image.open(saved) as anim:
                assert getattr(anim, "n_frames", 1) > 1
            continue
        prompt, workflow = read_png_workflow(saved)
        assert prompt and workflow, f"{saved} lacks the prompt/workflow text chunks"
        assert {n["class_type"] for n in prompt.values()} == {n["class_type"] for n in api.values()}


def test_default_workflow_through_the_cli(tmp_path, capsys):
    api, _ = load_workflow(ROOT / "workflows" / "default.json", node_table())
    args = ["run", str(ROOT / "workflows" / "default.json"), "--output-dir", str(tmp_path), "--no-progress"]
    for s in small(api):
        args += ["--set", s]
    assert load_cli().main(args) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert printed and all(Path(p).is_file() and p.endswith(".png") for p in printed)


def test_the_comfyui_workflows_of_the_model_issue_exist():
    names = {p.stem for p in COMFY_WORKFLOWS}
    assert {"sd15_text_to_image_walk", "sd15_style_guided", "sd15_img2img_walk", "sd15_walk_as_sampler",
            "sd15_grid_vary_outpaint", "clip_vision_style_patches"} <= names


@pytest.mark.parametrize("path", COMFY_WORKFLOWS, ids=lambda p: p.stem)
def test_comfyui_workflow_is_ui_format_and_headless_names_the_nodes_it_needs(path):
    """They open in the editor (run in test_comfyui_integration.py; their widget values and sizes are checked in
    test_workflow_editor_rules.py); their title and a Note name the model file; headless they fail at once,
    before any work, naming ComfyUI's nodes they use and pointing at --server."""
    from rwalk.nodes import NODE_CLASS_MAPPINGS
    from rwalk.walk_core.runner import WorkflowError

    data = json.loads(path.read_text())
    assert "nodes" in data and "links" in data
    assert path.with_suffix(".jpg").is_file(), f"{path.name} needs a .jpg thumbnail beside it"
    kinds = {n["type"] for n in data["nodes"]} - {"Note", "MarkdownNote"}
    loaders = kinds & COMFY_LOADERS
    assert loaders and kinds & set(NODE_CLASS_MAPPINGS)
    files = [n["widgets_values"][0] for n in data["nodes"] if n["type"] in loaders]
    notes = " ".join(n["widgets_values"][0] for n in data["nodes"] if n["type"] == "Note")
    assert all(f in data["extra"]["title"] and f in notes for f in files), (files, data["extra"]["title"])
    with pytest.raises(WorkflowError, match=f"({'|'.join(sorted(loaders))}).*--server"):
        load_workflow(path, node_table())
