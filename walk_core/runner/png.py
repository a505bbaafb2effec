"""PNG files that carry their workflow, as ComfyUI writes them (tEXt chunks ``prompt``, ``workflow``).

The editor reads these chunks back when an image is dropped onto it, so a picture brings its
graph with it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .errors import WorkflowError
from .png_text import read_text_chunks
from .shape import parse_json

PathLike = Union[str, Path]


def save_png(
    path: Union[PathLike, BinaryIO],
    pixels: np.ndarray,
    *,
    prompt: Optional[Mapping[str, Any]] = None,
    extra_pnginfo: Optional[Mapping[str, Any]] = None,
    seeds: Optional[Sequence[int]] = None,
    compress_level: int = 4,
) -> Union[Path, BinaryIO]:
    """Write ``pixels`` (uint8 ``[H, W]`` or ``[H, W, C]``, C in 1/3/4) with the workflow chunks to ``path`` (a file
    name, or a binary stream).

    ``prompt`` -> chunk "prompt"; each ``extra_pnginfo`` key (ComfyUI passes ``{"workflow": ...}``)
    -> a chunk of that name; ``seeds`` (per-item seeds) -> chunk "seeds". Values are JSON.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"save_png: pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ValueError(f"save_png: pixels must be [H, W] or [H, W, C] with C in 1, 3, 4; got shape {tuple(pixels.shape)}")
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(str(key), json.dumps(value))
    if seeds is not None:
        info.add_text("seeds", json.dumps([int(s) for s in seeds]))
    target = path if hasattr(path, "write") else Path(path)  # a file name, or a binary stream (sweep jobs)
    Image.fromarray(pixels).save(target, format="PNG", pnginfo=info, compress_level=compress_level)
    return target


def read_png_text(path: PathLike) -> Dict[str, str]:
    """All text chunks of a PNG, read without decoding its pixels (png_text.read_text_chunks)."""
    return read_text_chunks(path)


def read_png_workflow(path: PathLike) -> Tuple[Optional[dict], Optional[dict]]:
    """``(prompt, workflow)`` embedded in a PNG (either may be None, not both).

    Each chunk is parsed and depth-checked like a workflow file (shape.parse_json); an embedded value
    that is not a JSON object is ignored, as ComfyUI's editor does.
    """
    text = read_text_chunks(path, ("prompt", "workflow"))
    found = []
    for chunk in ("prompt", "workflow"):
        found.append(parse_json(text[chunk], f"{path}: the PNG's {chunk!r} chunk") if chunk in text else None)
    prompt, workflow = found
    if not isinstance(prompt, dict) and not isinstance(workflow, dict):
        present = [c for c, v in zip(("prompt", "workflow"), found) if c in text]
        if present:
            said = " and ".join(f"its {c!r} chunk is {'null' if v is None else type(v).__name__ + ', not an object'}"
                                for c, v in zip(("prompt", "workflow"), found) if c in text)
            raise WorkflowError(None, None, None, f"{path}: this PNG carries no workflow: {said}; expected a JSON "
                                "object (a workflow saved by ComfyUI)")
        raise WorkflowError(None, None, None,
                            f"{path}: this PNG carries no workflow (no 'prompt' or 'workflow' text chunk)")
    return (prompt if isinstance(prompt, dict) else None, workflow if isinstance(workflow, dict) else None)
