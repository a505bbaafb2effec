"""Write the weight-free example workflows (UI format) and their thumbnails.

    .venv/bin/python scripts/make_workflows.py            # all of them
    .venv/bin/python scripts/make_workflows.py default    # one

Widgets are laid out the way the editor saves them: required then optional inputs in declared order, socket
inputs left out, "fixed" after every seed widget. Each workflow is then run headless at full size and its
first picture becomes the .jpg thumbnail beside the .json.
"""
from __future__ import annotations

import json
import logging
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "rwalk" not in sys.modules:
    pack = types.ModuleType("rwalk")
    pack.__path__ = [str(ROOT)]
    sys.modules["rwalk"] = pack

from PIL import Image  # noqa: E402

from rwalk.nodes import NODE_CLASS_MAPPINGS  # noqa: E402
from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, load_workflow, run_workflow  # noqa: E402

TABLE = {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
log = logging.getLogger("make_workflows")


def _specs(cls):
    types_ = cls.INPUT_TYPES()
    return list(types_.get("required", {}).items()) + list(types_.get("optional", {}).items()), types_


def _is_widget(spec) -> bool:
    return isinstance(spec[0], (list, tuple)) or spec[0] in WIDGET_TYPES


def ui_node(node_id: int, kind: str, pos, widgets=None, links_in=None, size=(340, 260)):
    """One editor node: widgets from defaults + ``widgets``; ``links_in`` {input: link id}."""
    widgets, links_in = widgets or {}, links_in or {}
    if kind in ("Note", "MarkdownNote"):
        return {"id": node_id, "type": kind, "pos": list(pos), "size": list(size), "flags": {}, "order": 0,
                "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": [widgets["text"]]}
    cls = TABLE[kind]
    specs, types_ = _specs(cls)
    optional = set(types_.get("optional", {}))
    values, inputs = [], []
    for name, spec in specs:
        if _is_widget(spec):
            opts = spec[1] if len(spec) > 1 else {}
            default = opts.get("default", spec[0][0] if isinstance(spec[0], (list, tuple)) and spec[0] else None)
            values.append(widgets.pop(name, default))
            if opts.get("control_after_generate"):
                values.append("fixed")
        else:
            entry = {"name": name, "type": spec[0], "link": links_in.pop(name, None)}
            if name in optional:
                entry["shape"] = 7
            inputs.append(entry)
    if widgets or links_in:
        raise ValueError(f"{kind}: unknown inputs {sorted(widgets) + sorted(links_in)}")
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    outputs = [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(zip(names, cls.RETURN_TYPES))]
    return {"id": node_id, "type": kind, "pos": list(pos), "size": list(size), "flags": {}, "order": 0, "mode": 0,
            "inputs": inputs, "outputs": outputs, "properties": {"Node name for S&R": kind}, "widgets_values": values}


def workflow(title: str, nodes: list, wires: list) -> dict:
    """``nodes``: (id, kind, pos, widgets); ``wires``: (from id, output slot, to id, input name)."""
    built = {n[0]: None for n in nodes}
    links, links_in = [], {}
    for link_id, (src, slot, dst, name) in enumerate(wires, start=1):
        links_in.setdefault(dst, {})[name] = link_id
        links.append((link_id, src, slot, dst, name))
    for node_id, kind, pos, widgets in nodes:
        built[node_id] = ui_node(node_id, kind, pos, dict(widgets), links_in.get(node_id, {}),
                                 size=(300, 160) if kind == "Note" else (340, 300))
    table = []
    for link_id, src, slot, dst, name in links:
        out = built[src]["outputs"][slot]
        out["links"].append(link_id)
        target_inputs = built[dst]["inputs"]
        index = next(i for i, e in enumerate(target_inputs) if e["name"] == name)
        table.append([link_id, src, slot, dst, index, out["type"]])
    for order, node in enumerate(built.values()):
        node["order"] = order
    return {"last_node_id": max(built), "last_link_id": len(links), "nodes": list(built.values()), "links": table,
            "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "title": title},
            "version": 0.4}


def sampler(**over):
    base = {"walk": "euler_ancestral", "schedule": "karras", "steps": 30, "seed": 42, "width": 256, "height": 256}
    base.update(over)
    return base


WORKFLOWS = {
    "default": lambda: workflow("Random walk: a novel picture from a reference, no weights", [
        (1, "ReferenceImage", (40, 100), {"reference": "painting", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {}),
        (3, "WalkSampler", (800, 80), sampler(seed=5)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "random_walk"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "texture_from_image": lambda: workflow("Random walk: texture from any image", [
        (1, "ReferenceImage", (40, 100), {"reference": "foliage", "width": 256, "height": 256, "seed": 0}),
        (5, "Note", (40, 420), {"text": "Use your own picture: replace Reference Image with Load Image and connect "
                                         "its IMAGE to the patch target. The output may be any size: the patches "
                                         "keep the picture's pixel scale."}),
        (2, "TargetDistributionPatches", (420, 100), {}),
        (3, "WalkSampler", (800, 80), sampler(width=384, height=256, seed=7)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "texture"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "tileable_texture": lambda: workflow("Random walk: tileable texture", [
        (1, "ReferenceImage", (40, 100), {"reference": "bricks", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"tileable": True}),
        (3, "WalkSampler", (800, 80), sampler(seed=3)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "tile"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "photo_style_transfer": lambda: workflow("Random walk: photo style transfer without weights", [
        (1, "ReferenceImage", (40, 60), {"reference": "painting", "width": 256, "height": 256, "seed": 0}),
        (5, "ReferenceImage", (40, 380), {"reference": "photo", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"content_weight": 10.0}),
        (3, "WalkSampler", (800, 80), sampler(denoise=0.7)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "style_transfer"}),
    ], [(1, 0, 2, "images"), (5, 0, 2, "content"), (5, 0, 3, "init_image"), (2, 0, 3, "target"),
        (3, 0, 4, "images")]),
    "style_energy_walk": lambda: workflow("Random walk: sampling a style energy", [
        (1, "ReferenceImage", (40, 100), {"reference": "stained_glass", "width": 128, "height": 128, "seed": 0}),
        (2, "StyleEncoder", (420, 60), {}),
        (3, "TargetDistributionStyle", (420, 360), {}),
        (4, "WalkSampler", (800, 80), sampler(walk="langevin", corrector_steps=2, width=96, height=96)),
        (5, "SaveImage", (1180, 80), {"filename_prefix": "style_energy"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "style"), (3, 0, 4, "target"), (4, 0, 5, "images")]),
    "style_guided_patches": lambda: workflow("Random walk: style-guided walk on a patch target", [
        (1, "ReferenceImage", (40, 60), {"reference": "marble", "width": 256, "height": 256, "seed": 0}),
        (6, "ReferenceImage", (40, 380), {"reference": "stained_glass", "width": 128, "height": 128, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 60), {}),
        (7, "StyleEncoder", (420, 380), {}),
        (8, "GuidanceStepEnergy", (420, 640), {"energy": "style", "weight": 1.5, "steps": 3,
                                              "start_percent": 0.0, "end_percent": 0.9}),
        (3, "WalkSampler", (800, 80), sampler(width=192, height=192)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "style_guided"}),
    ], [(1, 0, 2, "images"), (6, 0, 7, "images"), (7, 0, 8, "style"), (8, 0, 3, "guidance"), (2, 0, 3, "target"),
        (3, 0, 4, "images")]),
    "train_then_walk": lambda: workflow("Random walk: train your own small model, then walk it", [
        (1, "TrainWalkModel", (40, 80), {"model_name": "painting_walk", "references": "painting", "minutes": 10.0}),
        (5, "Note", (40, 440), {"text": "Trains a small U-Net denoiser (about 1.7 M parameters) on the procedural "
                                         "painting for 10 minutes (CPU; a GPU is used when present), saves it to "
                                         "models/walk_models/painting_walk.safetensors with sample grids and "
                                         "validation losses beside it, then walks it. Running again continues "
                                         "only if you raise minutes. Train on your own pictures: connect Load "
                                         "Image to images (and clear references), or name a folder inside the "
                                         "input folder. Load a trained model later with Target Distribution "
                                         "(own model)."}),
        (2, "WalkSampler", (460, 80), sampler(walk="adams", steps=30, seed=1, width=64, height=64, batch_size=4)),
        (3, "SaveImage", (840, 80), {"filename_prefix": "own_model"}),
    ], [(1, 0, 2, "target"), (2, 0, 3, "images")]),
    "own_model_cfg": lambda: workflow("Random walk: a class-conditional own model with CFG", [
        (1, "TrainWalkModel", (40, 80), {"model_name": "textures_walk", "references": "bricks, foliage, marble, "
                                         "stained_glass", "class": "marble", "minutes": 10.0}),
        (5, "Note", (40, 440), {"text": "One model of four textures: each reference is a class (labels dropped "
                                         "10 % of the time, so the same model also predicts 'no class'). class "
                                         "picks the texture; CFG extrapolates from the unconditional prediction "
                                         "towards it. Try class = bricks, foliage or stained_glass."}),
        (4, "GuidanceStepCFG", (460, 420), {"weight": 2.0}),
        (2, "WalkSampler", (460, 80), sampler(walk="adams", steps=30, seed=2, width=64, height=64, batch_size=4)),
        (3, "SaveImage", (840, 80), {"filename_prefix": "own_model_cfg"}),
    ], [(1, 0, 2, "target"), (4, 0, 2, "guidance"), (2, 0, 3, "images")]),
}

# Folder of trained own models (``--models DIR``): copied into each run's model folder so that a workflow's Train
# Walk Model finds its model already trained and the thumbnail costs no training.
TRAINED = {}


def thumbnail(path: Path) -> Path:
    api, ui = load_workflow(path, TABLE)
    with tempfile.TemporaryDirectory() as tmp:
        if TRAINED.get("dir"):
            import shutil

            models = Path(tmp) / "out" / "walk_models"
            models.mkdir(parents=True)
            for f in Path(TRAINED["dir"]).glob("*.safetensors"):
                shutil.copy(f, models / f.name)
        result = run_workflow(api, TABLE, ui_workflow=ui, progress=False,
                              paths=RunnerPaths(Path(tmp) / "in", Path(tmp) / "out"))
        with Image.open(result.saved[0]) as img:
            img = img.convert("RGB")
            img.thumbnail((256, 256))
            out = path.with_suffix(".jpg")
            img.save(out, quality=85)
    return out


def main(names):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if names and names[0] == "--models":
        TRAINED["dir"], names = names[1], names[2:]
    for name in names or WORKFLOWS:
        path = ROOT / "workflows" / f"{name}.json"
        path.write_text(json.dumps(WORKFLOWS[name](), indent=1) + "\n")
        log.info("wrote %s and %s", path.relative_to(ROOT), thumbnail(path).relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
