"""The few ComfyUI services a node uses, imported lazily so the pack runs without ComfyUI.

Inside ComfyUI: its progress bar and its interrupt flag. Headless: the runner's progress hook.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional

from ..walk_core.progress import current_progress, report

log = logging.getLogger(__name__)


def _comfy_utils():
    try:
        import comfy.utils  # noqa: PLC0415  (only present inside ComfyUI)
        import comfy.model_management  # noqa: PLC0415
    except ImportError:
        return None
    return comfy


class OneBar:
    """One progress bar over several walks (an XY plot's cells): inside ``with bar.part(steps):`` a walk's own
    ``(done, steps)`` shows as ``offset + done`` of the whole, in ComfyUI's bar or the runner's hook."""

    def __init__(self, total: int):
        self.total, self.offset = max(1, int(total)), 0
        comfy = _comfy_utils()
        self._bar = comfy.utils.ProgressBar(self.total) if comfy is not None else None
        self._hook = current_progress() if comfy is None else None

    def show(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update_absolute(done, self.total)
        elif self._hook is not None:
            self._hook(done, self.total)

    @contextmanager
    def part(self, steps: int) -> Iterator[None]:
        """The walks run inside report to this bar as its next ``steps`` steps."""
        token = _part.set((self, int(steps)))
        try:
            yield
        finally:
            _part.reset(token)
        self.offset += int(steps)  # only when the walks finished: a Cancel leaves the bar where it stopped
        self.show(self.offset)


_part: ContextVar[Optional[tuple]] = ContextVar("walk_one_bar_part", default=None)  # (OneBar, steps)


def progress_hook(total: int) -> Optional[Callable[[int, int], None]]:
    """A ``(done, total)`` callable: ComfyUI's progress bar in the editor, else the runner's hook; inside a
    :class:`OneBar` part, that bar."""
    part = _part.get()
    if part is not None:
        bar, steps = part
        return lambda done, _total: bar.show(bar.offset + min(int(done), steps))
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


def model_preview(latent_preview, model, steps: int) -> Callable:
    """ComfyUI's ``(step, x0, x, total)`` preview callback for a walk on a MODEL (its bar with x-hat-0 previews);
    inside a :class:`OneBar` part, the same previews on that bar."""
    part = _part.get()
    if part is None:
        return latent_preview.prepare_callback(model, steps)
    bar, _ = part
    offset, total = bar.offset, bar.total
    callback = latent_preview.prepare_callback(model, total)
    return lambda step, x0, x, _steps: callback(offset + step, x0, x, total)
