"""Style Encoder: Save / Load -- WALK_STYLE codes as safetensors files (walk_core.style save_style / load_style).

Codes live in ComfyUI's ``models/walk_styles/`` inside ComfyUI and in the runner's ``<output>/walk_styles/``
headless; a saved code never overwrites another (a number is added to the name instead)."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Iterator, List, Optional

from ..walk_core.runner.paths import check_name_length, current_paths, resolve_inside
from ..walk_core.style import load_style, save_style_new
from .style import comfy_weight_dirs, wrap_clip_vision
from .types import CATEGORY, WALK_STYLE

log = logging.getLogger(__name__)

SUBDIR = "walk_styles"
SUFFIX = ".safetensors"
NONE_YET = "(no style codes yet: save one with Style Encoder: Save)"
NUMBER_ROOM = len("_12345")  # bytes a number added to a taken name may need


def style_dir() -> Path:
    """The folder style codes are saved to and loaded from."""
    try:
        import folder_paths  # noqa: PLC0415  (only present inside ComfyUI)
    except ImportError:
        return current_paths().output_dir / SUBDIR
    return Path(folder_paths.models_dir) / SUBDIR


def style_names() -> List[str]:
    """The codes in the folder, by file name (Style Encoder: Load's choices); never empty for the editor's sake."""
    folder = style_dir()
    names = sorted(p.name for p in folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    return names or [NONE_YET]


def _target(name: str, who: str) -> Path:
    """``name``.safetensors in the folder; refuses a name that is not text, escapes the folder or is too long."""
    if not isinstance(name, str):
        raise ValueError(f"{who}: name={name!r} is not text; expected a file name such as 'my_style'")
    stem = name.strip()
    if stem.endswith(SUFFIX):
        stem = stem[: -len(SUFFIX)]
    try:
        check_name_length(stem, "style codes", room=NUMBER_ROOM + len(SUFFIX))
        path = resolve_inside(style_dir(), stem + SUFFIX, "style codes")
    except ValueError as error:
        raise ValueError(f"{who}: name {error}") from None
    if path.name == SUFFIX or path.parent == path:
        raise ValueError(f"{who}: name={name!r} has no file name part; expected e.g. 'my_style' or 'subfolder/name'")
    last = stem.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if last in ("", ".", "..") or last.startswith("."):
        raise ValueError(f"{who}: name={name!r} would make a hidden file name ({path.name!r}); expected a name that "
                         "does not start with '.', e.g. 'my_style' or 'subfolder/name'")
    return path


def _free_files(name: str, who: str) -> Iterator[Path]:
    """``name``.safetensors, then ``name``_2, _3, ... (the saver takes the first that no file has)."""
    path = _target(name, who)
    yield path
    stem = path.name[: -len(SUFFIX)]
    for count in itertools.count(2):
        yield path.with_name(f"{stem}_{count}{SUFFIX}")


class StyleEncoderSave:
    DESCRIPTION = (
        "Saves a WALK_STYLE (Style Encoder's statistics, with its encoder's settings and the references' power "
        "spectrum) as a safetensors file in ComfyUI's models/walk_styles folder (headless: the output folder's "
        "walk_styles), to use again with Style Encoder: Load without the reference pictures. An existing file is "
        "never overwritten: a number is added to the name. Passes the style on.")
    CATEGORY = f"{CATEGORY}/style"
    RETURN_TYPES = (WALK_STYLE,)
    RETURN_NAMES = ("style",)
    OUTPUT_TOOLTIPS = ("The same style, unchanged.",)
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "style": (WALK_STYLE, {"tooltip": "The style code to save (from Style Encoder or Style Encoder: Load)."}),
            "name": ("STRING", {"default": "style", "tooltip": (
                "File name in the walk_styles folder (.safetensors is added; a subfolder may be named). If the "
                "file exists, _2, _3, ... is added instead of overwriting it.")}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, name: Optional[str] = None):
        who = "StyleEncoderSave"
        if name is not None:
            try:
                _target(name, who)
            except ValueError as error:  # reported before anything runs; the runner names node and input
                return str(error).removeprefix(f"{who}: name ")
        return True

    def save(self, style, name):
        who = "StyleEncoderSave"
        path = save_style_new(style, _free_files(name, who))  # claimed exclusively: never overwrites a code
        log.info("%s: wrote %s", who, path)
        return (style,)


class StyleEncoderLoad:
    DESCRIPTION = (
        "Loads a style code saved by Style Encoder: Save (from ComfyUI's models/walk_styles folder; headless: the "
        "output folder's walk_styles) as a WALK_STYLE: the same statistics, encoder and spectrum, no reference "
        "pictures needed. A code made with a CLIP vision model needs that model on clip_vision; a vgg19 code needs "
        "the vgg19 weights file.")
    CATEGORY = f"{CATEGORY}/style"
    RETURN_TYPES = (WALK_STYLE,)
    RETURN_NAMES = ("style",)
    OUTPUT_TOOLTIPS = ("The saved style statistics.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "style_name": (style_names(), {"tooltip": "A style code file in the walk_styles folder."}),
        }, "optional": {
            "clip_vision": ("CLIP_VISION", {"tooltip": (
                "Only for codes made with a CLIP vision model: the same model (Load CLIP Vision); its settings "
                "must match those recorded in the file.")}),
        }}

    def load(self, style_name, clip_vision=None):
        who = "StyleEncoderLoad"
        if style_name == NONE_YET:
            raise FileNotFoundError(f"{who}: no style code in {style_dir()}; save one with Style Encoder: Save")
        try:
            path = resolve_inside(style_dir(), style_name, "style codes")
        except ValueError as error:
            raise ValueError(f"{who}: style_name {error}") from None
        if not path.is_file():
            found = [n for n in style_names() if n != NONE_YET]
            raise FileNotFoundError(f"{who}: style_name={style_name!r} is not a file in {style_dir()}; found: "
                                    f"{', '.join(found) or 'none'}")
        if clip_vision is not None:
            return (load_style(path, clip_vision=wrap_clip_vision(clip_vision, who)),)
        return (load_style(path, search_dirs=comfy_weight_dirs()),)
