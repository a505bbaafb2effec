"""The few ComfyUI services a node uses, imported lazily so the pack runs without ComfyUI.

Inside ComfyUI: its progress bar and its interrupt flag. Headless: the runner's progress hook.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from ..walk_core.progress import current_progress, report

log = logging.getLogger(__name__)


def _comfy_utils():
    try:
        import comfy.utils  # noqa: PLC0415  (only present inside ComfyUI)
        import comfy.model_management  # noqa: PLC0415
    except ImportError:
        return None
    return comfy


def progress_hook(total: int) -> Optional[Callable[[int, int], None]]:
    """A ``(done, total)`` callable: ComfyUI's progress bar in the editor, else the runner's hook."""
    comfy = _comfy_utils()
    if comfy is None:
        return current_progress()
    bar = comfy.utils.ProgressBar(total)
    return lambda done, _total: bar.update_absolute(done, total)


def interrupt_check() -> Optional[Callable[[dict], None]]:
    """A step hook raising ComfyUI's interrupt exception when the user pressed Cancel (None headless)."""
    comfy = _comfy_utils()
    if comfy is None:
        return None
    return lambda _info: comfy.model_management.throw_exception_if_processing_interrupted()


def progress_with_preview(total: int) -> Optional[Callable[..., None]]:
    """A ``(done, image=None, detail=None)`` callable: ComfyUI's progress bar showing ``image`` (a PIL image) on
    the node when given; headless the runner's hook, which logs ``detail`` (e.g. step and loss) and shows no
    image."""
    comfy = _comfy_utils()
    if comfy is None:
        hook = current_progress()
        return None if hook is None else (lambda done, image=None, detail=None: report(hook, done, total, detail))
    bar = comfy.utils.ProgressBar(total)
    return lambda done, image=None, detail=None: bar.update_absolute(
        done, total, None if image is None else ("PNG", image, 512))
