"""TrainWalkModel: fit an own small denoiser to pictures, save it as safetensors, and walk it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..walk_core.noise import SEED_MAX
from ..walk_core.references import REFERENCES
from ..walk_core.runner.paths import current_paths, resolve_inside
from .comfy_hooks import interrupt_check, progress_with_preview
from .layout import image_to_walk
from .model_files import output_file, save_dir
from .targets_checkpoint import model_device
from .types import CATEGORY, WALK_TARGET

if TYPE_CHECKING:
    from ..models.data import ImageSet

# The trainer (models/) is imported inside the functions that use it: ComfyUI's start-up, which imports every node
# module to read NODE_CLASS_MAPPINGS, does not load it (bench/import_time.py).
log = logging.getLogger(__name__)
WHO = "TrainWalkModel"
PROGRESS_TICKS = 1000
REFERENCE_SIZE = 128  # procedural references are made at this size (native crops of the training size)


def _input_folder() -> Path:
    try:
        import folder_paths  # noqa: PLC0415  (only present inside ComfyUI)
        return Path(folder_paths.get_input_directory())
    except ImportError:
        return current_paths().input_dir


def _picture(path: Optional[Path]):
    """A sample grid as a PIL image (for ComfyUI's node preview), or None."""
    if path is None:
        return None
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


def _labels(text: str, count: int):
    """'a, a, b' -> labels (0, 0, 1), classes ('a', 'b') in first-seen order; empty = unconditional."""
    names = [p.strip() for p in text.split(",")] if text.strip() else []
    if not names:
        return None, ()
    if len(names) != count or not all(names):
        raise ValueError(f"{WHO}: labels={text!r} gives {len(names)} names for {count} pictures; expected one "
                         "non-empty class name per picture, comma-separated (or empty for an unconditional model)")
    classes = tuple(dict.fromkeys(names))
    return [classes.index(n) for n in names], classes


def training_data(images, labels: str, folder: str, references: str, size: int) -> ImageSet:
    """Exactly one source: an IMAGE batch (+ labels), a folder inside the input folder, or procedural references."""
    from ..models import from_references, from_tensors, load_folder  # noqa: PLC0415

    given = [name for name, v in (("images", images), ("folder", folder.strip()), ("references", references.strip()))
             if v is not None and v != ""]
    if len(given) != 1:
        raise ValueError(f"{WHO}: {' and '.join(given) or 'no data source'} given; expected exactly one of images "
                         "(an IMAGE batch), folder (a folder of pictures inside the input folder) or references "
                         f"(procedural names: {', '.join(REFERENCES)})")
    if given[0] == "images":
        pictures = image_to_walk(images, f"{WHO}: images")
        lab, classes = _labels(labels, pictures.shape[0])
        return from_tensors(pictures, lab, classes, source=f"{pictures.shape[0]} pictures")
    if given[0] == "folder":
        return load_folder(_training_folder(folder))
    return from_references(_reference_names(references), max(REFERENCE_SIZE, 2 * size))


def _reference_names(references: str):
    """The comma-separated procedural reference names, each checked against the registry."""
    names = [n.strip() for n in references.split(",") if n.strip()]
    unknown = [n for n in names if n not in REFERENCES]
    if unknown:
        raise ValueError(f"{WHO}: references {unknown} unknown; expected comma-separated names from "
                         f"{', '.join(REFERENCES)}")
    return names


def _training_folder(folder: str) -> Path:
    """The training folder inside the input folder; it must exist and be a folder."""
    try:
        path = resolve_inside(_input_folder(), folder.strip(), "input")
    except ValueError as e:
        raise ValueError(f"{WHO}: folder {e}") from None
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise ValueError(f"{WHO}: folder {folder.strip()!r} {what} in the input folder {_input_folder()}; expected "
                         "a folder of pictures (or of class sub-folders holding pictures) there")
    return path


class TrainWalkModel:
    DESCRIPTION = (
        "Trains a small EDM-preconditioned U-Net denoiser on your pictures (an IMAGE batch, a folder of images, or "
        "the pack's procedural references) and returns it as a target to walk. One or a few pictures: it learns "
        "from random crops at their own scale (single-image training, like SinFusion); many pictures: from whole "
        "pictures resized. Labels make it class-conditional (one model, CFG-ready). Saved as safetensors in "
        "ComfyUI's models/walk_models (headless: output/walk_models) with a sample grid and validation losses beside "
        "it (the node shows each new grid while it trains); training stops cleanly at the time budget and resumes from "
        "the saved state when run again. A 10-minute "
        "CPU run gives a usable 64x64 texture model; a GPU is used when present.")
    CATEGORY = f"{CATEGORY}/models"
    RETURN_TYPES = (WALK_TARGET, "STRING")
    RETURN_NAMES = ("target", "model_path")
    OUTPUT_TOOLTIPS = ("The trained model (its EMA weights) as a pixel-space target; size from WalkSampler.",
                       "The saved model file (load it again with Target Distribution (own model)).")
    FUNCTION = "train"

    @classmethod
    def INPUT_TYPES(cls):
        from ..models.data import CROPS  # noqa: PLC0415

        return {
            "required": {
                "model_name": ("STRING", {"default": "my_walk_model", "tooltip": (
                    "File name of the model (.safetensors is added), in ComfyUI's models/walk_models (headless: "
                    "output/walk_models). Its training state, sample grids and metrics go beside it.")}),
                "size": ("INT", {"default": 64, "min": 16, "max": 512, "step": 8, "tooltip": (
                    "Training crop size in pixels; a multiple of 2^(levels-1). The model then walks at any such "
                    "multiple.")}),
                "minutes": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 10000.0, "step": 0.5, "tooltip": (
                    "Training time budget in all: it stops cleanly after this many minutes of training and saves. "
                    "Resumed runs count the time already trained, so running the workflow again only continues "
                    "when you raise it (0 = no limit; then steps must be set).")}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip": (
                    "Stop after this many optimiser steps in all, counting a resumed run's earlier steps "
                    "(0 = no limit: the time budget decides).")}),
                "batch_size": ("INT", {"default": 16, "min": 1, "max": 1024, "tooltip": "Crops per step."}),
                "learning_rate": ("FLOAT", {"default": 1e-3, "min": 1e-6, "max": 0.1, "step": 1e-4, "tooltip": (
                    "Adam's learning rate after a 100-step warm-up; it decays as 1/sqrt(step/2000) later (EDM2).")}),
                "width": ("INT", {"default": 32, "min": 8, "max": 512, "step": 8, "tooltip": (
                    "Channels of the U-Net's first level (multiple of 8); more = slower and more capacity.")}),
                "levels": ("INT", {"default": 3, "min": 1, "max": 6, "tooltip": (
                    "U-Net levels; each halves the resolution (channels x1, x2, x2, ...). More levels see larger "
                    "structures: for whole 64 px pictures, 4 levels with attention learn the layout (sky above "
                    "ground), 3 only the textures (measured).")}),
                "blocks": ("INT", {"default": 2, "min": 1, "max": 8, "tooltip": "Residual blocks per level."}),
                "attention": ("BOOLEAN", {"default": False, "tooltip": (
                    "Self-attention at the coarsest level (global structure; about 10 % slower per image).")}),
                "patch": (["1", "2", "4"], {"default": "1", "tooltip": (
                    "Pixels per side folded into channels before the first level (pixel unshuffle): 2 trains about "
                    "3.5x faster per image but keeps less fine detail (measured on the painting: smoother samples). "
                    "Sizes must then be multiples of patch x 2^(levels-1).")}),
                "crops": (list(CROPS), {"default": "auto", "tooltip": (
                    "native = random crops at the pictures' own scale (textures, single-image training); fit = "
                    "pictures resized so the shorter side is size (a dataset of whole pictures); mixed = both and "
                    "scales between; auto = native for fewer than 8 pictures, fit otherwise.")}),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "tooltip": (
                    "Seed of the initial weights and of every random draw of training: same seed, same model.")}),
                "resume": ("BOOLEAN", {"default": True, "tooltip": (
                    "Continue from the training state beside the model file when there is one (raise minutes or "
                    "steps to train longer); off = start afresh and overwrite.")}),
            },
            "optional": {
                "images": ("IMAGE", {"tooltip": "Training pictures (one data source only: images, folder or references)."}),
                "labels": ("STRING", {"default": "", "tooltip": (
                    "With images: a class name per picture, comma-separated (e.g. 'cat, cat, dog'); makes the model "
                    "class-conditional. Empty = unconditional.")}),
                "folder": ("STRING", {"default": "", "tooltip": (
                    "A folder of pictures inside ComfyUI's input folder; sub-folders holding pictures are classes.")}),
                "references": ("STRING", {"default": "", "tooltip": (
                    f"Procedural references, comma-separated ({', '.join(REFERENCES)}), made at "
                    f"{REFERENCE_SIZE} px (or twice size); several = one class each.")}),
                "class": ("STRING", {"default": "", "tooltip": (
                    "For a class-conditional model: the class the returned target walks towards (empty = "
                    "unconditional).")}),
                "device": (["auto", "cpu"], {"default": "auto", "tooltip": (
                    "Where training runs: auto = the GPU when present (ComfyUI's device), cpu = the CPU.")}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model_name=None, folder=None, references=None):
        """Names are checked before anything runs: the model file and the training folder stay in their folders,
        the folder exists, the model's name leaves room for the files written beside it, and every procedural
        reference is known."""
        for name, value in (("model_name", model_name), ("folder", folder), ("references", references)):
            if value is not None and not isinstance(value, str):
                return f"{name}={value!r} is not text; expected a file or folder name"
        try:
            if model_name is not None:
                output_file(model_name, WHO)
            if folder and folder.strip():
                _training_folder(folder)
            if references and references.strip():
                _reference_names(references)
        except ValueError as error:
            return str(error).removeprefix(f"{WHO}: ")
        return True

    def train(self, model_name, size, minutes, steps, batch_size, learning_rate, width, levels, blocks, attention,
              patch, crops, seed, resume, images=None, labels="", folder="", references="", device="auto", **inputs):
        from ..models import TrainConfig, UNetConfig, model_target, train  # noqa: PLC0415
        from ..models.train import progress_text  # noqa: PLC0415

        unknown = set(inputs) - {"class"}
        if unknown:
            raise TypeError(f"{WHO}.train: unexpected inputs {sorted(unknown)}")
        out = output_file(model_name, WHO)  # a bad name fails before any data is loaded
        data = training_data(images, labels, folder, references, size)
        architecture = UNetConfig(width=width, mults=(1,) + (2,) * (levels - 1), blocks=blocks,
                                  attention=(levels - 1,) if attention else (), patch=int(patch))
        where = model_device(device)
        config = TrainConfig(size=size, batch_size=batch_size, steps=steps, minutes=minutes, lr=learning_rate,
                             crops=crops, seed=seed, device="cuda" if where.type == "cuda" else "cpu")
        hook = progress_with_preview(PROGRESS_TICKS)
        stop = interrupt_check()

        def progress(fraction, info):  # the node shows each new sample grid while it trains
            hook(int(fraction * PROGRESS_TICKS), _picture(info.get("samples")), detail=progress_text(info))

        result = train(data, out, config, architecture, resume=resume, progress=progress if hook else None,
                       check=(lambda: stop({})) if stop else None)
        log.info("%s: model saved to %s (folder %s)", WHO, result.path, save_dir())
        from ..models import load_model  # the file as saved: what a later load gives

        target = model_target(load_model(result.path), size, class_name=inputs.get("class", ""), device=where,
                              name=result.path.stem)
        return (target, str(result.path))
