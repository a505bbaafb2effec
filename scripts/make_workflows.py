"""Write the weight-free example workflows (UI format) and their thumbnails.

    .venv/bin/python scripts/make_workflows.py            # all of them
    .venv/bin/python scripts/make_workflows.py default    # one
    .venv/bin/python scripts/make_workflows.py --server http://127.0.0.1:8188   # workflows/comfyui/ (needs a
        # running ComfyUI for its own nodes' declarations; their thumbnails are diagrams of the graph)

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

from rwalk.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402
from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, load_workflow, run_workflow  # noqa: E402
from rwalk.walk_core.guidance import own_statistics as own  # noqa: E402
from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE  # noqa: E402

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
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    outputs = [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(zip(names, cls.RETURN_TYPES))]
    return {"id": node_id, "type": kind, "pos": list(pos), "size": list(size), "flags": {}, "order": 0, "mode": 0,
            "inputs": inputs, "outputs": outputs, "properties": {"Node name for S&R": kind}, "widgets_values": values}


def workflow(title: str, nodes: list, wires: list, stack: bool = False) -> dict:
    """``nodes``: (id, kind, pos, widgets); ``wires``: (from id, output slot, to id, input name). ``stack``: size
    nodes by their slots and widgets and stack each column (nodes of the same x) in the given order."""
    built = {n[0]: None for n in nodes}
    links, links_in = [], {}
    for link_id, (src, slot, dst, name) in enumerate(wires, start=1):
        links_in.setdefault(dst, {})[name] = link_id
        links.append((link_id, src, slot, dst, name))
    for node_id, kind, pos, widgets in nodes:
        built[node_id] = ui_node(node_id, kind, pos, dict(widgets), links_in.get(node_id, {}),
                                 size=(300, 160) if kind == "Note" else (340, 300))
        if stack and kind != "Note":  # the height the editor draws: slots, then widgets (a text box is taller)
            node = built[node_id]
            texts = sum(isinstance(v, str) and len(v) > 30 for v in node["widgets_values"])
            slots = max(len(node["inputs"]), len(node["outputs"]))
            node["size"] = [340, 36 + 22 * slots + 26 * len(node["widgets_values"]) + 70 * texts]
    if stack:  # each column (same x) from the top in the given order, 40 apart
        tops = {}
        for node in built.values():
            x = node["pos"][0]
            node["pos"][1] = tops.get(x, 40)
            tops[x] = node["pos"][1] + node["size"][1] + 40
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


def patch_sampler(**over):
    """A WalkSampler walking the patch target: its walk, levels and noise scale (walk_core.targets.patch)."""
    return sampler(**{"walk": WALK, "steps": STEPS, "s_noise": WALK_S_NOISE, **over})


WORKFLOWS = {
    "default": lambda: workflow("Random walk: a novel picture from a reference, no weights", [
        (1, "ReferenceImage", (40, 100), {"reference": "painting", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {}),
        (3, "WalkSampler", (800, 80), patch_sampler(seed=5)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "random_walk"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "texture_from_image": lambda: workflow("Random walk: texture from any image", [
        (1, "ReferenceImage", (40, 100), {"reference": "foliage", "width": 256, "height": 256, "seed": 0}),
        (5, "Note", (40, 420), {"text": "Use your own picture: replace Reference Image with Load Image and connect "
                                         "its IMAGE to the patch target. The output may be any size: the patches "
                                         "keep the picture's pixel scale."}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "texture"}),
        (3, "WalkSampler", (800, 80), patch_sampler(width=384, height=256, seed=7)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "texture"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "tileable_texture": lambda: workflow("Random walk: tileable texture", [
        (1, "ReferenceImage", (40, 100), {"reference": "bricks", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"tileable": True, "mode": "texture"}),
        (3, "WalkSampler", (800, 80), patch_sampler(seed=3)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "tile"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "structured_texture": lambda: workflow("Random walk: a texture that keeps its reference's shapes", [
        (1, "ReferenceImage", (40, 100), {"reference": "bricks", "width": 256, "height": 256, "seed": 0}),
        (5, "Note", (40, 420), {"text": "texture mode: whole patches in coherent nearest-neighbour fields, coarse to "
                                         "fine, so bricks stay whole and their courses run on; no arrangement is "
                                         "kept from the reference (layout mode keeps it). posterior mode with "
                                         "context 1 is the older way to keep shapes: a finer mosaic."}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "texture"}),
        (3, "WalkSampler", (800, 80), patch_sampler(seed=3)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "structured"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "photo_style_transfer": lambda: workflow("Random walk: photo style transfer without weights", [
        (1, "ReferenceImage", (40, 60), {"reference": "painting", "width": 256, "height": 256, "seed": 0}),
        (5, "ReferenceImage", (40, 380), {"reference": "photo", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"content_weight": 10.0}),
        (3, "WalkSampler", (800, 80), patch_sampler(denoise=0.7)),
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
        (2, "TargetDistributionPatches", (420, 60), {"mode": "texture"}),
        (7, "StyleEncoder", (420, 380), {}),
        (8, "GuidanceStepEnergy", (420, 640), {"energy": "style", "weight": 1.5, "steps": 3,
                                              "start_percent": 0.0, "end_percent": 0.9}),
        (3, "WalkSampler", (800, 80), patch_sampler(width=192, height=192)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "style_guided"}),
    ], [(1, 0, 2, "images"), (6, 0, 7, "images"), (7, 0, 8, "style"), (8, 0, 3, "guidance"), (2, 0, 3, "target"),
        (3, 0, 4, "images")]),
    "faithful_patches": lambda: workflow("Random walk: a patch target kept to its reference's own statistics", [
        (1, "ReferenceImage", (40, 60), {"reference": "marble", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 60), {"mode": "posterior"}),
        (5, "StyleEncoder", (40, 400), {"statistics": own.STATISTICS, "encoder_seed": own.ENCODER_SEED}),
        (6, "GuidanceStepEnergy", (420, 420), {"energy": "style", "weight": own.STYLE_WEIGHT, "steps": 1,
                                              "start_percent": 0.0, "end_percent": own.STYLE_END}),
        (9, "Note", (40, 720), {"text": "The same reference feeds the patch target and the style term: the patch "
                                         "target holds the picture to the reference's colours (its palette "
                                         "setting), the term to its texture statistics (feature means and stds of "
                                         f"the random encoder) over the first {own.STYLE_END:.0%} of the walk, "
                                         "while the layout is set; the fine detail is left to the patches."}),
        (3, "WalkSampler", (800, 60), patch_sampler(seed=5)),
        (4, "SaveImage", (1180, 60), {"filename_prefix": "faithful_patches"}),
    ], [(1, 0, 2, "images"), (1, 0, 5, "images"), (5, 0, 6, "style"), (6, 0, 3, "guidance"), (2, 0, 3, "target"),
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
    "vary_subtle_strong": lambda: workflow("Random walk: vary subtle and vary strong", [
        (1, "ReferenceImage", (40, 100), {"reference": "painting", "width": 192, "height": 192, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {}),
        (6, "Note", (40, 440), {"text": "Replace Reference Image with Load Image to vary your own picture (the "
                                         "patch target then learns its patches from it, too). subtle re-walks "
                                         "from denoise 0.35, strong from 0.75."}),
        (3, "WalkVary", (800, 60), {"strength": "subtle", "count": 2, "steps": 30, "seed": 1}),
        (4, "WalkVary", (800, 420), {"strength": "strong", "count": 2, "steps": 30, "seed": 1}),
        (5, "SaveImage", (1180, 60), {"filename_prefix": "vary_subtle"}),
        (7, "SaveImage", (1180, 420), {"filename_prefix": "vary_strong"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (1, 0, 3, "image"), (2, 0, 4, "target"), (1, 0, 4, "image"),
        (3, 0, 5, "images"), (4, 0, 7, "images")]),
    "wander_animation": lambda: workflow("Random walk: seed-space wander as an animation", [
        (1, "ReferenceImage", (40, 100), {"reference": "marble", "width": 192, "height": 192, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "texture"}),
        (3, "WalkWander", (800, 80), {"frames": 24, "step": 0.08, "steps": 24, "seed": 2, "width": 128,
                                      "height": 128}),
        (4, "SaveAnimatedWEBP", (1180, 80), {"filename_prefix": "wander", "fps": 8.0, "lossless": False,
                                             "quality": 85}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "grid_chaos_stylize_tile": lambda: workflow("Random walk: a grid of four with chaos, stylize and tile", [
        (1, "ReferenceImage", (40, 60), {"reference": "foliage", "width": 192, "height": 192, "seed": 0}),
        (5, "ReferenceImage", (40, 420), {"reference": "stained_glass", "width": 128, "height": 128, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 60), {"mode": "texture"}),
        (3, "WalkGrid", (800, 60), {"chaos": 40, "stylize": 300, "tile": True, "aspect": "1:1", "size": 128,
                                    "items": 4, "steps": 30, "seed": 4}),
        (4, "SaveImage", (1180, 60), {"filename_prefix": "grid"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (5, 0, 3, "style_image"), (3, 0, 4, "images")]),
    "pan_zoom_out": lambda: workflow("Random walk: pan right, then zoom out", [
        (1, "ReferenceImage", (40, 100), {"reference": "painting", "width": 128, "height": 128, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "posterior"}),
        (3, "WalkOutpaint", (800, 60), {"direction": "right", "amount": 0.5, "steps": 30, "seed": 5}),
        (4, "WalkOutpaint", (1180, 60), {"direction": "zoom_out", "amount": 0.5, "steps": 30, "seed": 6}),
        (5, "SaveImage", (1560, 60), {"filename_prefix": "outpaint"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (1, 0, 3, "image"), (2, 0, 4, "target"), (3, 0, 4, "image"),
        (4, 0, 5, "images")]),
}

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"  # the usual SD1.5 file name; pick yours in the editor
CLIP_VISION = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"  # the usual IP-Adapter file name; pick yours


def sd_base(prompt: str, negative: str = "blurry, low quality, deformed", **target):
    """Checkpoint loader, two prompts and the MODEL target (nodes 1-4), and their wires."""
    nodes = [
        (1, "CheckpointLoaderSimple", (40, 80), {"ckpt_name": CHECKPOINT}),
        (2, "CLIPTextEncode", (420, 40), {"text": prompt}),
        (3, "CLIPTextEncode", (420, 300), {"text": negative}),
        (4, "TargetDistributionModel", (800, 80), target),
    ]
    wires = [(1, 1, 2, "clip"), (1, 1, 3, "clip"), (1, 0, 4, "model"), (2, 0, 4, "positive"), (3, 0, 4, "negative"),
             (1, 2, 4, "vae")]
    return nodes, wires


def sd_workflow(title, prompt, extra_nodes, extra_wires, **target):
    nodes, wires = sd_base(prompt, **target)
    return workflow(title, nodes + extra_nodes, wires + extra_wires, stack=True)


SD_SAMPLER = sampler(walk="edm", churn=40.0, steps=25, seed=7, width=512, height=512, trajectory_every=0)

# Workflows that need ComfyUI and a Stable Diffusion checkpoint (workflows/comfyui/); thumbnails are diagrams.
COMFY_WORKFLOWS = {
    "sd_text_to_image_walk": lambda: sd_workflow(
        "Random walk on a Stable Diffusion checkpoint: text to image", "a lighthouse on a cliff at sunset, oil "
        "painting, dramatic sky", [
            (5, "GuidanceStepCFG", (800, 420), {"weight": 7.0}),
            (6, "WalkSampler", (1180, 80), SD_SAMPLER),
            (7, "SaveImage", (1560, 80), {"filename_prefix": "sd_walk"}),
        ], [(5, 0, 6, "guidance"), (4, 0, 6, "target"), (6, 0, 7, "images")]),
    "sd_style_guided": lambda: sd_workflow(
        "Random walk on a Stable Diffusion checkpoint: style-guided text to image", "a quiet harbour town at "
        "dawn", [
            (5, "GuidanceStepCFG", (800, 420), {"weight": 7.0}),
            (8, "ReferenceImage", (40, 420), {"reference": "stained_glass", "width": 256, "height": 256,
                                              "seed": 0}),
            (9, "StyleEncoder", (420, 560), {}),
            (10, "GuidanceStepEnergy", (800, 620), {"energy": "style", "weight": 1.0, "steps": 1,
                                                   "start_percent": 0.0, "end_percent": 0.8}),
            (11, "Note", (40, 760), {"text": "The style term decodes x-hat-0 with the VAE (at half size: "
                                             "decode_scale 1/2 on the target) and steps the latent down the "
                                             "style distance's gradient. Use your own style picture: replace "
                                             "Reference Image with Load Image."}),
            (6, "WalkSampler", (1180, 80), SD_SAMPLER),
            (7, "SaveImage", (1560, 80), {"filename_prefix": "sd_style"}),
        ], [(8, 0, 9, "images"), (9, 0, 10, "style"), (5, 0, 10, "guidance"), (10, 0, 6, "guidance"),
            (4, 0, 6, "target"), (6, 0, 7, "images")], decode_scale="1/2"),
    "clip_vision_style_patches": lambda: workflow(
        "Random walk: a patch target steered by a style measured with a CLIP vision model", [
            (1, "ReferenceImage", (40, 60), {"reference": "marble", "width": 256, "height": 256, "seed": 0}),
            (6, "ReferenceImage", (40, 380), {"reference": "stained_glass", "width": 224, "height": 224,
                                              "seed": 0}),
            (9, "CLIPVisionLoader", (40, 700), {"clip_name": CLIP_VISION}),
            (2, "TargetDistributionPatches", (420, 60), {"mode": "texture"}),
            (7, "StyleEncoder", (420, 380), {"statistics": "mean_std"}),
            (8, "GuidanceStepEnergy", (420, 700), {"energy": "style", "weight": 1.5, "steps": 1,
                                                  "start_percent": 0.0, "end_percent": 0.9}),
            (10, "Note", (40, 880), {"text": "Needs a CLIP vision model in models/clip_vision (CLIP, SigLIP or "
                                             "DINOv2, e.g. the ones IP-Adapter uses). StyleEncoder then measures "
                                             "the style on that model's patch tokens; the guidance runs the "
                                             "model at every guided step (a GPU helps). Add Style Encoder: "
                                             "Save after StyleEncoder to keep the style for later."}),
            (3, "WalkSampler", (800, 80), patch_sampler(width=192, height=192)),
            (4, "SaveImage", (1180, 80), {"filename_prefix": "clip_style"}),
        ], [(1, 0, 2, "images"), (6, 0, 7, "images"), (9, 0, 7, "clip_vision"), (7, 0, 8, "style"),
            (8, 0, 3, "guidance"), (2, 0, 3, "target"), (3, 0, 4, "images")], stack=True),
    "sd_img2img_walk": lambda: sd_workflow(
        "Random walk on a Stable Diffusion checkpoint: image to image", "an impressionist landscape, thick "
        "brush strokes", [
            (8, "ReferenceImage", (40, 420), {"reference": "painting", "width": 512, "height": 512, "seed": 0}),
            (9, "VAEEncode", (420, 560), {}),
            (11, "Note", (40, 760), {"text": "Use your own picture: replace Reference Image with Load Image. "
                                             "denoise sets how much of the walk runs from it (0.3 keeps most, "
                                             "0.9 little). A mask from Set Latent Noise Mask is respected."}),
            (5, "GuidanceStepCFG", (800, 420), {"weight": 6.0}),
            (6, "WalkSampler", (1180, 80), {**SD_SAMPLER, "denoise": 0.6}),
            (7, "SaveImage", (1560, 80), {"filename_prefix": "sd_img2img"}),
        ], [(8, 0, 9, "pixels"), (1, 2, 9, "vae"), (9, 0, 6, "init_latent"), (5, 0, 6, "guidance"),
            (4, 0, 6, "target"), (6, 0, 7, "images")]),
    "sd_walk_as_sampler": lambda: sd_workflow(
        "Random walk inside SamplerCustomAdvanced: our walk as SAMPLER, our chain as GUIDER", "a red fox in "
        "fresh snow, photograph", [
            (5, "GuidanceStepCFG", (800, 420), {"weight": 6.0}),
            (12, "RandomNoise", (40, 420), {"noise_seed": 11}),
            (13, "BasicScheduler", (40, 580), {"scheduler": "karras", "steps": 25}),
            (14, "EmptyLatentImage", (40, 760), {"width": 512, "height": 512}),
            (15, "WalkSamplerSelect", (420, 560), {"walk": "edm"}),
            (16, "CFGGuider", (420, 800), {"cfg": 6.0}),
            (17, "SamplerCustomAdvanced", (1180, 80), {}),
            (18, "VAEDecode", (1560, 80), {}),
            (19, "SaveImage", (1940, 80), {"filename_prefix": "walk_as_sampler"}),
            (20, "WalkGuider", (800, 620), {}),
            (21, "KSamplerSelect", (800, 800), {"sampler_name": "euler_ancestral"}),
            (22, "SamplerCustomAdvanced", (1180, 480), {}),
            (23, "VAEDecode", (1560, 480), {}),
            (24, "SaveImage", (1940, 480), {"filename_prefix": "walk_guider"}),
        ], [(1, 0, 13, "model"), (1, 0, 16, "model"), (2, 0, 16, "positive"), (3, 0, 16, "negative"),
            (12, 0, 17, "noise"), (16, 0, 17, "guider"), (15, 0, 17, "sampler"), (13, 0, 17, "sigmas"),
            (14, 0, 17, "latent_image"), (17, 0, 18, "samples"), (1, 2, 18, "vae"), (18, 0, 19, "images"),
            (4, 0, 20, "target"), (5, 0, 20, "guidance"),
            (12, 0, 22, "noise"), (20, 0, 22, "guider"), (21, 0, 22, "sampler"), (13, 0, 22, "sigmas"),
            (14, 0, 22, "latent_image"), (22, 0, 23, "samples"), (1, 2, 23, "vae"), (23, 0, 24, "images")]),
    "sd_grid_vary_outpaint": lambda: sd_workflow(
        "Random walk on a Stable Diffusion checkpoint: a grid, a variation, a zoom out", "a cosy reading nook "
        "by a rainy window, watercolour", [
            (5, "GuidanceStepCFG", (800, 420), {"weight": 6.0}),
            (6, "WalkGrid", (1180, 80), {"chaos": 30, "size": 512, "items": 4, "walk": "edm", "steps": 25,
                                         "seed": 21}),
            (7, "SaveImage", (1560, 80), {"filename_prefix": "sd_grid"}),
            (8, "WalkVary", (1180, 600), {"strength": "subtle", "count": 2, "walk": "edm", "steps": 25,
                                          "seed": 22}),
            (9, "SaveImage", (1560, 600), {"filename_prefix": "sd_vary"}),
            (10, "WalkOutpaint", (1560, 400), {"direction": "zoom_out", "amount": 0.5, "walk": "edm",
                                                "steps": 25, "seed": 23}),
            (11, "SaveImage", (1940, 80), {"filename_prefix": "sd_zoom_out"}),
        ], [(4, 0, 6, "target"), (5, 0, 6, "guidance"), (6, 0, 7, "images"), (4, 0, 8, "target"),
            (6, 1, 8, "image"), (5, 0, 8, "guidance"), (8, 0, 9, "images"), (4, 0, 10, "target"),
            (8, 0, 10, "image"), (5, 0, 10, "guidance"), (10, 0, 11, "images")]),
}


def diagram(path: Path) -> Path:
    """A thumbnail for a workflow that needs a checkpoint: its graph drawn (pack nodes blue, ComfyUI's grey)."""
    from PIL import ImageDraw  # noqa: PLC0415

    data = json.loads(path.read_text())
    nodes = {n["id"]: n for n in data["nodes"]}
    header = 44  # title band in pixels
    x0 = min(n["pos"][0] for n in nodes.values()) - 20
    y0 = min(n["pos"][1] for n in nodes.values()) - 20
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes.values()) + 20
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes.values()) + 20
    scale = 720 / (x1 - x0)
    img = Image.new("RGB", (720, header + round((y1 - y0) * scale)), (30, 30, 34))
    draw = ImageDraw.Draw(img)
    box = {i: [(n["pos"][0] - x0) * scale, header + (n["pos"][1] - y0) * scale,
               (n["pos"][0] + n["size"][0] - x0) * scale, header + (n["pos"][1] + n["size"][1] - y0) * scale]
           for i, n in nodes.items()}
    for _, src, _, dst, _, _ in data["links"]:
        a, b = box[src], box[dst]
        draw.line([(a[2], (a[1] + a[3]) / 2), (b[0], (b[1] + b[3]) / 2)], fill=(200, 170, 80), width=2)
    for i, n in nodes.items():
        ours = n["type"] in NODE_CLASS_MAPPINGS
        colour = (52, 92, 150) if ours else ((80, 80, 60) if n["type"] == "Note" else (70, 70, 78))
        draw.rectangle(box[i], fill=colour, outline=(220, 220, 220))
        label = NODE_DISPLAY_NAME_MAPPINGS.get(n["type"], n["type"])
        chars = max(4, int((box[i][2] - box[i][0] - 8) / 6))
        for row, start in enumerate(range(0, min(len(label), 3 * chars), chars)):
            draw.text((box[i][0] + 4, box[i][1] + 4 + 11 * row), label[start:start + chars], fill=(240, 240, 240))
    draw.text((8, 6), data["extra"]["title"][:110], fill=(240, 240, 240))
    kinds = {n["type"] for n in nodes.values()}
    needs = "a Stable Diffusion checkpoint" if "CheckpointLoaderSimple" in kinds else "a CLIP vision model"
    draw.text((8, 22), f"needs ComfyUI and {needs} (blue: this pack's nodes)", fill=(200, 200, 120))
    out = path.with_suffix(".jpg")
    img.save(out, quality=90)
    return out


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
    if names and names[0] == "--server":  # ComfyUI's own nodes, declared as the server declares them
        from rwalk.walk_core.runner.remote import server_node_table  # noqa: PLC0415

        server, names = names[1], names[2:]
        TABLE.update({k: v for k, v in server_node_table(server).items() if k not in TABLE})
        folder = ROOT / "workflows" / "comfyui"
        folder.mkdir(exist_ok=True)
        for name in names or COMFY_WORKFLOWS:
            path = folder / f"{name}.json"
            path.write_text(json.dumps(COMFY_WORKFLOWS[name](), indent=1) + "\n")
            log.info("wrote %s and %s", path.relative_to(ROOT), diagram(path).relative_to(ROOT))
        return
    for name in names or WORKFLOWS:
        path = ROOT / "workflows" / f"{name}.json"
        path.write_text(json.dumps(WORKFLOWS[name](), indent=1) + "\n")
        log.info("wrote %s and %s", path.relative_to(ROOT), thumbnail(path).relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
