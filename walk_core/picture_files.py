"""User picture files as float arrays: every Pillow mode read with its true values, or refused by name.

One place decides what each mode means, so LoadImage and the training folders agree:

- ``1``, ``L``, ``P``, ``RGB``, ``RGBX``, ``CMYK``, ``YCbCr``: 8-bit colour, /255 (CMYK, YCbCr converted by Pillow);
- ``LA``, ``La``, ``PA``, ``RGBA``, ``RGBa``, and ``P``/``L``/``RGB``/``I;16`` with a transparency entry: the
  colour as above plus an alpha channel (premultiplied modes un-premultiplied);
- ``I;16``, ``I;16L``, ``I;16B``, ``I;16N``: 16-bit grey, /65535;
- ``I``: 32-bit integer grey holding 16-bit data (older Pillow's 16-bit PNG), /65535; values outside 0..65535
  are refused;
- ``F``: 32-bit float grey, as is; NaN, inf or values outside 0..1 are refused;
- anything else (``LAB``, ``HSV``, ...): refused, naming the file and the mode.

Multi-frame files (animated GIF/WEBP/APNG, multi-page TIFF): :func:`read_frames` gives every frame of the
first frame's size (ComfyUI's LoadImage does the same; frames of another size are skipped with a warning),
:func:`read_first_frame` the first frame only (training data).
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image, ImageOps, ImageSequence

from .limits import LimitError, check_picture_pixels, current_limits, how_to_raise

log = logging.getLogger(__name__)

EIGHT_BIT = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr")
WITH_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
SUPPORTED = EIGHT_BIT + WITH_ALPHA + SIXTEEN_BIT + ("I", "F")
_READ_ERRORS = (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError)


_PILLOW_LIMIT_LOCK = threading.RLock()


@contextmanager
def _pack_pixel_limit(path, who: str):
    """Within the block Pillow's decompression-bomb threshold is at least the pack's limit (WALK_MAX_INPUT_PIXELS,
    checked from the header before any pixel is decoded), so raising the pack's limit past Pillow's works; it is
    never switched off (other code in the process, ComfyUI's loader, keeps its protection). A picture Pillow still
    refuses is past twice that threshold, so past the pack's limit: the pack's message says so. Pillow's setting is
    restored on leaving; the lock keeps concurrent reads from restoring it early."""

    limit = current_limits().max_input_pixels
    with _PILLOW_LIMIT_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None if previous is None else max(int(previous), int(limit))
        try:
            yield
        except Image.DecompressionBombError:
            raise LimitError(f"{who}: {str(path)!r} holds more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels; the limit "
                             f"is {limit:,} (WALK_MAX_INPUT_PIXELS). Use a smaller picture, or "
                             f"{how_to_raise('max_input_pixels')}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous


class PictureFileError(ValueError):
    """A picture file that cannot be read with its true values; names the file, and the mode or values."""


#: (rgb [H, W, 3] float32 in 0..1, alpha [H, W] float32 in 0..1 or None when the picture is opaque)
Frame = Tuple[np.ndarray, Optional[np.ndarray]]


def check_mode(mode: str, path: Path | str, who: str) -> None:
    """Refuse a Pillow mode this module cannot read with its true values."""
    if mode not in SUPPORTED:
        raise PictureFileError(f"{who}: {path} has Pillow mode {mode!r}, which cannot be read as a picture; expected "
                               f"one of {', '.join(SUPPORTED)} (save it as 8- or 16-bit RGB, RGBA or greyscale)")


def check_picture_file(path: Path | str, who: str) -> None:
    """Open only the header: refuse a file that is not a picture, of a mode :func:`frame_arrays` refuses, or of
    more pixels than the input-picture limit (walk_core.limits)."""
    try:
        with _pack_pixel_limit(path, who), Image.open(path) as img:
            mode = img.mode
            check_pixels(img, path, who)
    except PictureFileError:
        raise
    except _READ_ERRORS as error:
        raise PictureFileError(f"{who}: {path} is not a readable picture ({error})") from None
    check_mode(mode, path, who)


def check_pixels(img: Image.Image, path: Path | str, who: str, all_frames: bool = True) -> None:
    """The input-picture pixel limit (``max_input_pixels``, env WALK_MAX_INPUT_PIXELS), from the header alone:
    the first frame's size, then (``all_frames``) times the frame count -- before any pixel is decoded."""
    width, height = img.size
    try:
        check_picture_pixels(width, height, 1, who, str(path))
        if all_frames and getattr(img, "is_animated", False):
            check_picture_pixels(width, height, int(getattr(img, "n_frames", 1)), who, str(path))
    except LimitError as error:
        raise PictureFileError(str(error)) from None


def _grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=-1)


def _transparency_alpha(frame: Image.Image, values: np.ndarray) -> Optional[np.ndarray]:
    """Alpha from a tRNS-style ``transparency`` entry (one grey value or one RGB triple), or None."""
    key = frame.info.get("transparency")
    if key is None or frame.mode == "P":
        return None
    if values.ndim == 3:
        if not (isinstance(key, tuple) and len(key) == values.shape[-1]):
            return None
        hidden = np.all(values == np.asarray(key, dtype=values.dtype), axis=-1)
    elif isinstance(key, (int, np.integer)):
        hidden = values == key
    else:
        return None
    return (~hidden).astype(np.float32)


def _integer_grey(frame: Image.Image, path: Path | str, who: str) -> Frame:
    values = np.asarray(frame)  # [H, W] uint16 (either byte order) or int32
    if frame.mode == "I":
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 65535:
            raise PictureFileError(f"{who}: {path} is a 32-bit integer picture (mode 'I') with values "
                                   f"{low}..{high}; expected 16-bit values 0..65535 (save it as a 16-bit PNG or TIFF)")
    grey = values.astype(np.float32) / 65535.0
    return _grey(grey), _transparency_alpha(frame, values)


def _float_grey(frame: Image.Image, path: Path | str, who: str) -> Frame:
    values = np.asarray(frame, dtype=np.float32)  # [H, W]
    if not np.isfinite(values).all():
        raise PictureFileError(f"{who}: {path} is a float picture (mode 'F') with NaN or inf values; expected "
                               "finite values in 0..1")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0.0 or high > 1.0:
        raise PictureFileError(f"{who}: {path} is a float picture (mode 'F') with values {low:.6g}..{high:.6g}; "
                               "expected values in 0..1 (rescale it, or save it as an 8- or 16-bit picture)")
    return _grey(values), None


def _premultiplied_grey(frame: Image.Image) -> Frame:
    values = np.asarray(frame, dtype=np.float32) / 255.0  # [H, W, 2]: L * a, a
    alpha = values[..., 1]
    grey = np.divide(values[..., 0], alpha, out=np.zeros_like(alpha), where=alpha > 0)
    return _grey(np.clip(grey, 0.0, 1.0)), alpha


def frame_arrays(frame: Image.Image, path: Path | str, who: str) -> Frame:
    """One frame as (rgb, alpha) with the values its mode means (table in the module docstring)."""
    check_mode(frame.mode, path, who)
    if frame.mode in SIXTEEN_BIT or frame.mode == "I":
        return _integer_grey(frame, path, who)
    if frame.mode == "F":
        return _float_grey(frame, path, who)
    if frame.mode == "La":
        return _premultiplied_grey(frame)
    if frame.mode in WITH_ALPHA or (frame.mode == "P" and "transparency" in frame.info):
        rgba = np.asarray(frame.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3]
    rgb = np.asarray(frame.convert("RGB"), dtype=np.float32) / 255.0
    alpha = None
    if frame.mode in ("L", "RGB"):
        alpha = _transparency_alpha(frame, np.asarray(frame))
    return rgb, alpha


def _open_frames(path: Path | str, who: str, first_only: bool) -> List[Frame]:
    frames: List[Frame] = []
    skipped: List[int] = []
    try:
        with _pack_pixel_limit(path, who), Image.open(path) as img:
            check_mode(img.mode, path, who)
            check_pixels(img, path, who, all_frames=not first_only)
            for index, frame in enumerate(ImageSequence.Iterator(img)):
                frame = ImageOps.exif_transpose(frame)
                if frames and frames[0][0].shape[:2] != (frame.size[1], frame.size[0]):
                    skipped.append(index)
                    continue
                frames.append(frame_arrays(frame, path, who))
                if first_only or img.format == "MPO":  # an MPO's further frames are other views, not a sequence
                    break
    except PictureFileError:
        raise
    except _READ_ERRORS as error:
        raise PictureFileError(f"{who}: {path} is not a readable picture ({error})") from None
    if skipped:
        log.warning("%s: %s: frames %s differ in size from the first frame and were skipped", who, path, skipped)
    return frames


def read_frames(path: Path | str, who: str) -> List[Frame]:
    """Every frame of the first frame's size, in order (one item for a still picture)."""
    return _open_frames(path, who, first_only=False)


def read_first_frame(path: Path | str, who: str) -> Frame:
    """The first frame (of an animated or multi-page file: the first one only)."""
    return _open_frames(path, who, first_only=True)[0]
