"""Headless stand-ins for ComfyUI's LoadImage, SaveImage, PreviewImage and SaveAnimatedWEBP.

Same class names, inputs and outputs as ComfyUI's, so editor workflows run unchanged; the folders
come from the run's :class:`RunnerPaths`. They live in :data:`IO_NODE_CLASSES`, the runner's table
only — never in the pack's NODE_CLASS_MAPPINGS, where they would shadow ComfyUI's own nodes.
"""
from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence

from .paths import current_paths, resolve_inside
from .png import save_png

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")


def _input_file(name: str) -> Path:
    """The file a LoadImage ``image`` value names ("x.png", "sub/x.png", "x.png [output]")."""
    match = _ANNOTATION.match(name) if isinstance(name, str) else None
    kind = match.group(2) if match else "input"
    if match:
        name = match.group(1)
    paths = current_paths()
    return resolve_inside(paths.folder(kind), name, kind)


def list_input_images() -> List[str]:
    """Image files at the top of the input folder, sorted (LoadImage's choices)."""
    folder = current_paths().input_dir
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class LoadImage:
    DESCRIPTION = "Loads an image from the input folder as IMAGE, with its alpha channel as MASK."
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (list_input_images(), {
            "image_upload": True,
            "tooltip": "An image file in the input folder (a path relative to it may name a subfolder).",
        })}}

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        path = _input_file(image)  # raises for a path outside the folder
        if not path.is_file():
            present = ", ".join(list_input_images()[:20]) or "(none)"
            return f"{image!r} is not a file in {path.parent}; image files in the input folder: {present}"
        return True

    def load_image(self, image: str):
        path = _input_file(image)
        frames: List[torch.Tensor] = []
        masks: List[torch.Tensor] = []
        with Image.open(path) as img:
            for frame in ImageSequence.Iterator(img):
                frame = ImageOps.exif_transpose(frame)
                if frame.mode == "I":  # 16-bit greyscale
                    frame = frame.point(lambda v: v * (1 / 255))
                rgb = frame.convert("RGB")
                if frames and tuple(frames[0].shape[1:3]) != (rgb.size[1], rgb.size[0]):
                    continue  # frames of another size are skipped, as in ComfyUI
                pixels = np.asarray(rgb, dtype=np.float32) / 255.0  # [H, W, 3]
                frames.append(torch.from_numpy(pixels.copy())[None])
                if "A" in frame.getbands() or (frame.mode == "P" and "transparency" in frame.info):
                    alpha = np.asarray(frame.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
                    masks.append(1.0 - torch.from_numpy(alpha.copy())[None])  # [1, H, W]
                else:
                    masks.append(torch.zeros((1, rgb.size[1], rgb.size[0]), dtype=torch.float32))
                if img.format == "MPO":
                    break
        return (torch.cat(frames, dim=0), torch.cat(masks, dim=0))


def _save_target(base: Path, prefix: str, kind: str) -> Tuple[Path, str, str]:
    """(folder, file stem, subfolder as posix text) for a filename prefix like "walks/run"."""
    stem = PurePosixPath(prefix.replace("\\", "/")).name
    if not stem or stem in (".", ".."):
        raise ValueError(f"{prefix!r} has no file name part; expected e.g. 'ComfyUI' or 'subfolder/name'")
    full = resolve_inside(base, prefix, kind)
    folder = full.parent
    subfolder = folder.relative_to(base.resolve()).as_posix()
    return folder, stem, "" if subfolder == "." else subfolder


def _next_counter(folder: Path, stem: str) -> int:
    """One past the highest ``<stem>_<NNNNN>_`` number in ``folder`` (1 when none)."""
    pattern = re.compile(re.escape(stem) + r"_(\d+)_")
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))] if folder.is_dir() else []
    return max(numbers, default=0) + 1


def images_to_uint8(images: Any, where: str) -> np.ndarray:
    """An IMAGE ``[B, H, W, C]`` in 0..1 as uint8 ``[B, H, W, C]``; refuses NaN and bad shapes."""
    array = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or array.shape[0] == 0:
        raise ValueError(f"{where}: images must be an IMAGE [B, H, W, C] with C = 1, 3 or 4; got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: the images contain NaN or inf values; refusing to save them")
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


class SaveImage:
    DESCRIPTION = "Saves the images as PNG files in the output folder, with the workflow embedded."
    CATEGORY = "image"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    folder_type = "output"
    compress_level = 4

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": (
                    "The prefix for the files to save; it may start with a subfolder of the output folder.")}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix: Optional[str] = None):
        if filename_prefix is not None:
            if not isinstance(filename_prefix, str):
                return f"{filename_prefix!r} is not a string; expected a file name prefix such as 'ComfyUI'"
            _save_target(current_paths().folder(cls.folder_type), filename_prefix, cls.folder_type)
        return True

    def _prefix(self, filename_prefix: str) -> str:
        return filename_prefix

    def save_images(self, images, filename_prefix: str = "ComfyUI", prompt=None, extra_pnginfo=None):
        kind = self.folder_type
        pixels = images_to_uint8(images, type(self).__name__)
        folder, stem, subfolder = _save_target(current_paths().folder(kind), self._prefix(filename_prefix), kind)
        folder.mkdir(parents=True, exist_ok=True)
        counter = _next_counter(folder, stem)
        results: List[Dict[str, str]] = []
        for item in pixels:
            name = f"{stem}_{counter:05}_.png"
            save_png(folder / name, item, prompt=prompt, extra_pnginfo=extra_pnginfo,
                     compress_level=self.compress_level)
            log.debug("saved %s", folder / name)
            results.append({"filename": name, "subfolder": subfolder, "type": kind})
            counter += 1
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    DESCRIPTION = "Saves the images as temporary previews (the temp folder), with the workflow embedded."
    folder_type = "temp"
    compress_level = 1

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"images": ("IMAGE", {"tooltip": "The images to preview."})},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls):
        return True

    def _prefix(self, filename_prefix: str) -> str:
        return "ComfyUI_temp_" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))


WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}


class SaveAnimatedWEBP:
    DESCRIPTION = "Saves the image batch as one animated WebP (one frame per image) in the output folder."
    CATEGORY = "image/animation"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames, in order."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": (
                    "The prefix for the file to save; it may start with a subfolder of the output folder.")}),
                "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                  "tooltip": "Frames per second."}),
                "lossless": ("BOOLEAN", {"default": True, "tooltip": "Lossless WebP frames."}),
                "quality": ("INT", {"default": 80, "min": 0, "max": 100, "tooltip": "Quality of lossy frames."}),
                "method": (list(WEBP_METHODS), {"tooltip": "Encoder effort (slowest = smallest file)."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def save_images(self, images, fps, filename_prefix="ComfyUI", lossless=True, quality=80, method="default",
                    prompt=None, extra_pnginfo=None):
        if method not in WEBP_METHODS:
            raise ValueError(f"SaveAnimatedWEBP: method={method!r}; expected one of {', '.join(WEBP_METHODS)}")
        pixels = images_to_uint8(images, type(self).__name__)
        folder, stem, subfolder = _save_target(current_paths().folder("output"), filename_prefix, "output")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{stem}_{_next_counter(folder, stem):05}_.webp"
        frames = [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]
        frames[0].save(folder / name, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0,
                       lossless=bool(lossless), quality=int(quality), method=WEBP_METHODS[method])
        log.debug("saved %s (%d frames)", folder / name, len(frames))
        return {"ui": {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}],
                       "animated": (True,)}}


#: The runner's image IO nodes; add them to a node table for headless runs only.
IO_NODE_CLASSES: Dict[str, type] = {"LoadImage": LoadImage, "SaveImage": SaveImage, "PreviewImage": PreviewImage,
                                    "SaveAnimatedWEBP": SaveAnimatedWEBP}
