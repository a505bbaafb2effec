"""The shipped example workflows: which nodes, widget values and wires each one has.

Each entry is a function returning ``(title, nodes, wires)``: nodes as (id, kind, (x, y), widgets[, title]), where
(x, y) only choose a node's column and its place in it (``walk_core/runner/layout.py`` sets the positions
from the sizes the editor draws), and wires as (from id, output slot, to id, input name).
``make_workflows.py`` writes them. WORKFLOWS need only this pack; COMFY_WORKFLOWS need ComfyUI and a model
file, which their title and a Note name.

    .venv/bin/python scripts/example_workflows.py    # lists them: file, number of nodes, title
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

if "rwalk" not in sys.modules:  # run on its own
    _pack = types.ModuleType("rwalk")
    _pack.__path__ = [str(Path(__file__).resolve().parents[1])]
    sys.modules["rwalk"] = _pack

from comfy_core_nodes import CHECKPOINT, CLIP_VISION  # noqa: E402
from rwalk.walk_core.guidance import own_statistics as own  # noqa: E402
from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE  # noqa: E402


def spec(title: str, nodes: list, wires: list) -> tuple:
    return title, nodes, wires


def sampler(**over):
    base = {"walk": "euler_ancestral", "schedule": "karras", "steps": 30, "seed": 42, "width": 256, "height": 256}
    base.update(over)
    return base


def patch_sampler(**over):
    """A WalkSampler walking the patch target: its walk, levels and noise scale (walk_core.targets.patch)."""
    return sampler(**{"walk": WALK, "steps": STEPS, "s_noise": WALK_S_NOISE, **over})


WORKFLOWS = {
    "default": lambda: spec("Random walk: a novel picture from a reference, no weights", [
        (1, "ReferenceImage", (40, 100), {"reference": "painting", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {}),
        (3, "WalkSampler", (800, 80), patch_sampler(seed=5)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "random_walk"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "texture_from_image": lambda: spec("Random walk: texture from any image", [
        (1, "ReferenceImage", (40, 100), {"reference": "foliage", "width": 256, "height": 256, "seed": 0}),
        (5, "Note", (40, 420), {"text": "Use your own picture: replace Reference Image with Load Image and connect "
                                         "its IMAGE to the patch target. The output may be any size: the patches "
                                         "keep the picture's pixel scale."}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "texture"}),
        (3, "WalkSampler", (800, 80), patch_sampler(width=384, height=256, seed=7)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "texture"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "tileable_texture": lambda: spec("Random walk: tileable texture", [
        (1, "ReferenceImage", (40, 100), {"reference": "bricks", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"tileable": True, "mode": "texture"}),
        (3, "WalkSampler", (800, 80), patch_sampler(seed=3)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "tile"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "structured_texture": lambda: spec("Random walk: a texture that keeps its reference's shapes", [
        (1, "ReferenceImage", (40, 100), {"reference": "bricks", "width": 256, "height": 256, "seed": 0}),
        (5, "Note", (40, 420), {"text": "texture mode: whole patches in coherent nearest-neighbour fields, coarse to "
                                         "fine, so bricks stay whole and their courses run on; no arrangement is "
                                         "kept from the reference (layout mode keeps it). posterior mode with "
                                         "context 1 is the older way to keep shapes: a finer mosaic."}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "texture"}),
        (3, "WalkSampler", (800, 80), patch_sampler(seed=3)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "structured"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "photo_style_transfer": lambda: spec("Random walk: photo style transfer without weights", [
        (1, "ReferenceImage", (40, 60), {"reference": "painting", "width": 256, "height": 256, "seed": 0}),
        (5, "ReferenceImage", (40, 380), {"reference": "photo", "width": 256, "height": 256, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"content_weight": 10.0}),
        (3, "WalkSampler", (800, 80), patch_sampler(denoise=0.7)),
        (4, "SaveImage", (1180, 80), {"filename_prefix": "style_transfer"}),
    ], [(1, 0, 2, "images"), (5, 0, 2, "content"), (5, 0, 3, "init_image"), (2, 0, 3, "target"),
        (3, 0, 4, "images")]),
    "style_energy_walk": lambda: spec("Random walk: sampling a style energy", [
        (1, "ReferenceImage", (40, 100), {"reference": "stained_glass", "width": 128, "height": 128, "seed": 0}),
        (2, "StyleEncoder", (420, 60), {}),
        (3, "TargetDistributionStyle", (420, 360), {}),
        (4, "WalkSampler", (800, 80), sampler(walk="langevin", corrector_steps=2, width=96, height=96)),
        (5, "SaveImage", (1180, 80), {"filename_prefix": "style_energy"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "style"), (3, 0, 4, "target"), (4, 0, 5, "images")]),
    "style_guided_patches": lambda: spec("Random walk: style-guided walk on a patch target", [
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
    "faithful_patches": lambda: spec("Random walk: a patch target kept to its reference's own statistics", [
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
    "train_then_walk": lambda: spec("Random walk: train your own small model, then walk it", [
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
    "own_model_cfg": lambda: spec("Random walk: a class-conditional own model with CFG", [
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
    "vary_subtle_strong": lambda: spec("Random walk: vary subtle and vary strong", [
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
    "wander_animation": lambda: spec("Random walk: seed-space wander as an animation", [
        (1, "ReferenceImage", (40, 100), {"reference": "marble", "width": 192, "height": 192, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {"mode": "texture"}),
        (3, "WalkWander", (800, 80), {"frames": 24, "step": 0.08, "steps": 24, "seed": 2, "width": 128,
                                      "height": 128}),
        (4, "SaveAnimatedWEBP", (1180, 80), {"filename_prefix": "wander", "fps": 8.0, "lossless": False,
                                             "quality": 85}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "grid_chaos_stylize_tile": lambda: spec("Random walk: a grid of four with chaos, stylize and tile", [
        (1, "ReferenceImage", (40, 60), {"reference": "foliage", "width": 192, "height": 192, "seed": 0}),
        (5, "ReferenceImage", (40, 420), {"reference": "stained_glass", "width": 128, "height": 128, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 60), {"mode": "texture"}),
        (3, "WalkGrid", (800, 60), {"chaos": 40, "stylize": 300, "tile": True, "aspect": "1:1", "size": 128,
                                    "items": 4, "steps": 30, "seed": 4}),
        (4, "SaveImage", (1180, 60), {"filename_prefix": "grid"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (5, 0, 3, "style_image"), (3, 0, 4, "images")]),
    "pan_zoom_out": lambda: spec("Random walk: pan right, then zoom out", [
        (1, "ReferenceImage", (40, 100), {"reference": "painting", "width": 128, "height": 128, "seed": 0}),
        (2, "TargetDistributionPatches", (420, 100), {}),
        (3, "WalkOutpaint", (800, 60), {"direction": "right", "amount": 0.5, "steps": 30, "seed": 5}),
        (4, "WalkOutpaint", (1180, 60), {"direction": "zoom_out", "amount": 0.5, "steps": 30, "seed": 6}),
        (5, "SaveImage", (1560, 60), {"filename_prefix": "outpaint"}),
    ], [(1, 0, 2, "images"), (2, 0, 3, "target"), (1, 0, 3, "image"), (2, 0, 4, "target"), (3, 0, 4, "image"),
        (4, 0, 5, "images")]),
}

LABELS = "curved, straight, straight, curved, curved, curved, straight, straight"  # the patterns' classes
# walk: steps, chosen so that every walk makes about 24 network evaluations
COMPARED = {"euler": 24, "heun": 12, "euler_ancestral": 24, "edm": 12, "langevin": 23, "pc": 12}
EVALUATIONS = {"euler": 24, "heun": 23, "euler_ancestral": 24, "edm": 23, "langevin": 24, "pc": 24}


def compare_walks():
    """One mixture target, six walks side by side (two rows of three walk + save pairs), same seed."""
    nodes, wires = [(1, "TargetDistributionMixture", (40, 300), {})], []
    for k, (walk, steps) in enumerate(COMPARED.items()):
        walker, saver, x, y = 2 + 2 * k, 3 + 2 * k, 420 + 720 * (k % 3), 40 + 600 * (k // 3)
        nodes += [(walker, "WalkSampler", (x, y), sampler(walk=walk, steps=steps, seed=7, batch_size=4, width=96,
                                                          height=96), f"WalkSampler: {walk} ({EVALUATIONS[walk]} "
                                                                      "evaluations)"),
                  (saver, "SaveImage", (x + 360, y), {"filename_prefix": f"compare_walks/{walk}"})]
        wires += [(1, 0, walker, "target"), (walker, 0, saver, "images")]
    return spec("Random walk: compare walks", nodes, wires)


def cfg_rows(title: str, rows: list, prefix: str):
    """A labelled mixture (class straight) and one CFG -> WalkSampler -> SaveImage row per (weight, start, end)."""
    nodes = [(1, "TargetDistributionMixture", (40, 300), {"labels": LABELS, "class": "straight"})]
    wires = []
    for k, (weight, start, end, name, step_title, walk_title) in enumerate(rows):
        cfg, walker, saver, y = 2 + 3 * k, 3 + 3 * k, 4 + 3 * k, 40 + 560 * k
        nodes += [(cfg, "GuidanceStepCFG", (420, y), {"weight": weight, "start_percent": start, "end_percent": end},
                   step_title),
                  (walker, "WalkSampler", (760, y), sampler(walk="pc", steps=24, seed=5, batch_size=4, width=96,
                                                            height=96), walk_title),
                  (saver, "SaveImage", (1140, y), {"filename_prefix": f"{prefix}/{name}"})]
        wires += [(1, 0, walker, "target"), (cfg, 0, walker, "guidance"), (walker, 0, saver, "images")]
    return spec(title, nodes, wires)


WORKFLOWS.update({
    "exact_mixture": lambda: spec("Random walk: exact mixture (patterns)", [
        (1, "TargetDistributionMixture", (40, 120), {}),
        (2, "WalkSampler", (420, 80), sampler(walk="pc", width=128, height=128)),
        (3, "SaveImage", (800, 80), {"filename_prefix": "exact_mixture"}),
    ], [(1, 0, 2, "target"), (2, 0, 3, "images")]),
    "compare_walks": compare_walks,
    "xy_plot_walks": lambda: spec("Random walk: XY plot of walks by steps, in one run", [
        (1, "TargetDistributionMixture", (40, 80), {}),
        (2, "XYPlotAxis", (40, 400), {"input": "walk", "values": "euler, euler_ancestral, adams, er_sde"},
         "XY Plot Axis: walk"),
        (3, "XYPlotAxis", (40, 600), {"input": "steps", "values": "10, 20, 40"}, "XY Plot Axis: steps"),
        (6, "Note", (40, 800), {"text": "Each axis names a Walk Sampler input and its values (comma-separated; "
                                         "numbers also as start:stop:step). The plot walks every cell with the "
                                         "settings on XY Plot Walk and the cell's two values, same seed, one "
                                         "progress bar, and writes the names and values on the grid."}),
        (4, "XYPlotWalk", (420, 80), {"seed": 3, "width": 64, "height": 64}),
        (5, "SaveImage", (800, 80), {"filename_prefix": "xy_plot/walks_by_steps"}),
    ], [(1, 0, 4, "target"), (2, 0, 4, "x_axis"), (3, 0, 4, "y_axis"), (4, 0, 5, "images")]),
    "cfg_scale_sweep": lambda: cfg_rows("Random walk: CFG scale sweep on a conditional mixture", [
        (w, 0.0, 1.0, f"scale_{w:g}", f"CFG scale {w:g}", f"WalkSampler (CFG {w:g})") for w in (1.0, 2.0, 4.0, 8.0)],
        "cfg_sweep"),
    "cfg_interval": lambda: cfg_rows("Random walk: the same CFG with and without a guidance interval", [
        (6.0, 0.0, 1.0, "full", "CFG 6, whole walk", "WalkSampler (CFG whole walk)"),
        (6.0, 0.2, 0.6, "interval", "CFG 6, interval 0.2-0.6", "WalkSampler (CFG interval 0.2-0.6)")],
        "cfg_interval"),
    "guided_classes": lambda: spec("Random walk: class-guided (CFG + rescale)", [
        (1, "TargetDistributionMixture", (40, 80), {"labels": LABELS, "class": "curved"}),
        (2, "GuidanceStepCFG", (40, 360), {"weight": 3.0}),
        (3, "GuidanceStepRescale", (400, 360), {"phi": 0.7}),
        (4, "WalkSampler", (760, 80), sampler(walk="pc", seed=0, batch_size=4, width=96, height=96)),
        (5, "SaveImage", (1140, 80), {"filename_prefix": "guided_classes"}),
    ], [(1, 0, 4, "target"), (2, 0, 3, "guidance"), (3, 0, 4, "guidance"), (4, 0, 5, "images")]),
})


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


SD_NOTE = (f"Needs ComfyUI and a Stable Diffusion 1.5 checkpoint: models/checkpoints/{CHECKPOINT} (or pick yours "
           "in Load Checkpoint; any SD1.5-family model works).")


def sd_workflow(title, prompt, extra_nodes, extra_wires, **target):
    """An SD1.5 example: checkpoint, prompts and MODEL target, ``extra_nodes``, and a Note naming the model file."""
    nodes, wires = sd_base(prompt, **target)
    note = (30, "Note", (40, 2000), {"text": SD_NOTE})
    return spec(f"{title} (needs an SD1.5 checkpoint: {CHECKPOINT})", nodes + extra_nodes + [note],
                wires + extra_wires)


SD_SAMPLER = sampler(walk="edm", churn=40.0, steps=25, seed=7, width=512, height=512, trajectory_every=0)

# Workflows that need ComfyUI and a model file (a Stable Diffusion 1.5 checkpoint or a CLIP vision model), named
# in their title and a Note; their thumbnails are diagrams of the graph.
COMFY_WORKFLOWS = {
    "sd15_text_to_image_walk": lambda: sd_workflow(
        "Random walk on a Stable Diffusion checkpoint: text to image", "a lighthouse on a cliff at sunset, oil "
        "painting, dramatic sky", [
            (5, "GuidanceStepCFG", (800, 420), {"weight": 7.0}),
            (6, "WalkSampler", (1180, 80), SD_SAMPLER),
            (7, "SaveImage", (1560, 80), {"filename_prefix": "sd_walk"}),
        ], [(5, 0, 6, "guidance"), (4, 0, 6, "target"), (6, 0, 7, "images")]),
    "sd15_style_guided": lambda: sd_workflow(
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
    "clip_vision_style_patches": lambda: spec(
        f"Random walk: a patch target steered by a style measured with a CLIP vision model (needs {CLIP_VISION})", [
            (1, "ReferenceImage", (40, 60), {"reference": "marble", "width": 256, "height": 256, "seed": 0}),
            (6, "ReferenceImage", (40, 380), {"reference": "stained_glass", "width": 224, "height": 224,
                                              "seed": 0}),
            (9, "CLIPVisionLoader", (40, 700), {"clip_name": CLIP_VISION}),
            (2, "TargetDistributionPatches", (420, 60), {"mode": "texture"}),
            (7, "StyleEncoder", (420, 380), {"statistics": "mean_std"}),
            (8, "GuidanceStepEnergy", (420, 700), {"energy": "style", "weight": 1.5, "steps": 1,
                                                  "start_percent": 0.0, "end_percent": 0.9}),
            (10, "Note", (40, 880), {"text": f"Needs ComfyUI and a CLIP vision model: models/clip_vision/{CLIP_VISION} "
                                             "(or pick yours in Load CLIP Vision: CLIP, SigLIP or DINOv2, e.g. the "
                                             "ones IP-Adapter uses). StyleEncoder then measures "
                                             "the style on that model's patch tokens; the guidance runs the "
                                             "model at every guided step (a GPU helps). Add Style Encoder: "
                                             "Save after StyleEncoder to keep the style for later."}),
            (3, "WalkSampler", (800, 80), patch_sampler(width=192, height=192)),
            (4, "SaveImage", (1180, 80), {"filename_prefix": "clip_style"}),
        ], [(1, 0, 2, "images"), (6, 0, 7, "images"), (9, 0, 7, "clip_vision"), (7, 0, 8, "style"),
            (8, 0, 3, "guidance"), (2, 0, 3, "target"), (3, 0, 4, "images")]),
    "sd15_img2img_walk": lambda: sd_workflow(
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
    "sd15_walk_as_sampler": lambda: sd_workflow(
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
    "sd15_grid_vary_outpaint": lambda: sd_workflow(
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


def listing() -> str:
    """One line per example: its file name, number of nodes and title."""
    rows = []
    for name, build in {**WORKFLOWS, **COMFY_WORKFLOWS}.items():
        title, nodes, _ = build()
        rows.append(f"{name + '.json':34} {len(nodes):3} nodes  {title}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(listing() + "\n")
