"""Headless stand-ins for ComfyUI's LoadImage, SaveImage, PreviewImage and SaveAnimatedWEBP.

Same class names, inputs and outputs as ComfyUI's, so editor workflows run unchanged; the folders
come from the run's :class:`RunnerPaths`. They live in :data:`IO_NODE_CLASSES`, the runner's table
only — never in the pack's NODE_CLASS_MAPPINGS, where they would shadow ComfyUI's own nodes.
"""
from __future__ import annotations

import itertools
import logging
import re
import secrets
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from ..atomic_files import write_new
from ..picture_files import PictureFileError, check_picture_file, read_frames
from .paths import check_name_length, current_paths, resolve_inside
from .png import save_png

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")
#: bytes a saved file's name adds to its prefix: "_" + a counter of up to 8 digits + "_" + ".webp"
COUNTER_ROOM = len("_12345678_.webp")


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
        try:  # only the header is read: a file that is no picture, or of a mode refused by name
            check_picture_file(path, "LoadImage")
        except PictureFileError as error:
            return str(error).removeprefix("LoadImage: ")
        return True

    def load_image(self, image: str):
        """Every frame of the first frame's size as a batch; values and alpha per mode (walk_core.picture_files)."""
        path = _input_file(image)
        frames: List[torch.Tensor] = []
        masks: List[torch.Tensor] = []
        for rgb, alpha in read_frames(path, f"LoadImage: image {image!r}"):
            frames.append(torch.from_numpy(np.ascontiguousarray(rgb))[None])  # [1, H, W, 3]
            if alpha is None:
                masks.append(torch.zeros((1,) + rgb.shape[:2], dtype=torch.float32))
            else:
                masks.append(1.0 - torch.from_numpy(np.ascontiguousarray(alpha))[None])  # [1, H, W]
        return (torch.cat(frames, dim=0), torch.cat(masks, dim=0))


def _save_target(base: Path, prefix: str, kind: str) -> Tuple[Path, str, str]:
    """(folder, file stem, subfolder as posix text) for a filename prefix like "walks/run"."""
    if "\\" in prefix:  # on POSIX a backslash is part of a name, not a separator: refuse the ambiguity
        raise ValueError(f"{prefix!r} contains a backslash; use '/' between folders (e.g. 'subfolder/name')")
    stem = PurePosixPath(prefix.replace("\\", "/")).name
    if not stem or stem in (".", ".."):
        raise ValueError(f"{prefix!r} has no file name part; expected e.g. 'ComfyUI' or 'subfolder/name'")
    check_name_length(prefix, kind, room=COUNTER_ROOM)
    full = resolve_inside(base, prefix, kind)
    folder = full.parent
    subfolder = folder.relative_to(base.resolve()).as_posix()
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise ValueError(f"{prefix!r} needs the folder {part}, but that is a file; expected a subfolder name "
                             f"that is free or a folder")
        if part == base.resolve():
            break
    return folder, stem, "" if subfolder == "." else subfolder


def check_prefix(filename_prefix: Optional[str], kind: str):
    """VALIDATE_INPUTS of a save node: True, or why ``filename_prefix`` cannot name files in the ``kind`` folder
    (not text, no file name, outside the folder, a name too long for the file system once numbered)."""
    if filename_prefix is None:
        return True  # linked: checked when the node runs
    if not isinstance(filename_prefix, str):
        return f"{filename_prefix!r} is not a string; expected a file name prefix such as 'ComfyUI'"
    _save_target(current_paths().folder(kind), filename_prefix, kind)  # a ValueError is the validation message
    return True


def _next_counter(folder: Path, stem: str) -> int:
    """One past the highest ``<stem>_<NNNNN>_`` number in ``folder`` (1 when none)."""
    pattern = re.compile(re.escape(stem) + r"_(\d+)_")
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))] if folder.is_dir() else []
    return max(numbers, default=0) + 1


def _write_numbered(folder: Path, stem: str, suffix: str, start: int, write) -> Tuple[Path, int]:
    """``write(path)`` as ``<stem>_<NNNNN>_<suffix>`` with the first counter >= ``start`` no file has; the name is
    claimed exclusively (walk_core.atomic_files), so runs saving with one prefix at once never share a file."""
    counters: Dict[Path, int] = {}

    def candidates():
        for counter in itertools.count(start):
            path = folder / f"{stem}_{counter:05}_{suffix}"
            counters[path] = counter
            yield path

    path = write_new(candidates(), write)
    return path, counters[path]


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
        return check_prefix(filename_prefix, cls.folder_type)

    def _prefix(self, filename_prefix: str) -> str:
        return filename_prefix

    def save_images(self, images, filename_prefix: str = "ComfyUI", prompt=None, extra_pnginfo=None):
        kind = self.folder_type
        pixels = images_to_uint8(images, type(self).__name__)
        try:
            folder, stem, subfolder = _save_target(current_paths().folder(kind), self._prefix(filename_prefix), kind)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}: filename_prefix {error}") from None
        counter = _next_counter(folder, stem)
        results: List[Dict[str, str]] = []
        for item in pixels:
            def write(temp: Path, item=item):
                save_png(temp, item, prompt=prompt, extra_pnginfo=extra_pnginfo, compress_level=self.compress_level)

            path, counter = _write_numbered(folder, stem, ".png", counter, write)
            log.debug("saved %s", path)
            results.append({"filename": path.name, "subfolder": subfolder, "type": kind})
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

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix: Optional[str] = None):
        return check_prefix(filename_prefix, "output")

    def save_images(self, images, fps, filename_prefix="ComfyUI", lossless=True, quality=80, method="default",
                    prompt=None, extra_pnginfo=None):
        if method not in WEBP_METHODS:
            raise ValueError(f"SaveAnimatedWEBP: method={method!r}; expected one of {', '.join(WEBP_METHODS)}")
        pixels = images_to_uint8(images, type(self).__name__)
        try:
            folder, stem, subfolder = _save_target(current_paths().folder("output"), filename_prefix, "output")
        except ValueError as error:
            raise ValueError(f"SaveAnimatedWEBP: filename_prefix {error}") from None
        frames = [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]

        def write(temp: Path):
            frames[0].save(temp, format="WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                           loop=0, lossless=bool(lossless), quality=int(quality), method=WEBP_METHODS[method])

        path, _ = _write_numbered(folder, stem, ".webp", _next_counter(folder, stem), write)
        log.debug("saved %s (%d frames)", path, len(frames))
        return {"ui": {"images": [{"filename": path.name, "subfolder": subfolder, "type": "output"}],
                       "animated": (True,)}}


#: The runner's image IO nodes; add them to a node table for headless runs only.
IO_NODE_CLASSES: Dict[str, type] = {"LoadImage": LoadImage, "SaveImage": SaveImage, "PreviewImage": PreviewImage,
                                    "SaveAnimatedWEBP": SaveAnimatedWEBP}
#: Their display names in ComfyUI (the editor's default titles); SaveAnimatedWEBP has none there.
IO_NODE_DISPLAY_NAMES: Dict[str, str] = {"LoadImage": "Load Image", "SaveImage": "Save Image",
                                         "PreviewImage": "Preview Image", "SaveAnimatedWEBP": "SaveAnimatedWEBP"}
