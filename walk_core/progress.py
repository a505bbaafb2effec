"""Progress reporting without globals in the walks: a context-local hook ``(done, total)``.

The headless runner installs a terminal bar with :func:`use_progress`; nodes fetch the current
hook with :func:`current_progress` (inside ComfyUI they use ComfyUI's own progress bar instead).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional

ProgressHook = Callable[[int, int], None]

_hook: ContextVar[Optional[ProgressHook]] = ContextVar("walk_progress_hook", default=None)


def current_progress() -> Optional[ProgressHook]:
    """The progress hook installed by the caller, or None."""
    return _hook.get()


@contextmanager
def use_progress(hook: Optional[ProgressHook]) -> Iterator[None]:
    """Install ``hook`` for the code run inside the ``with`` block."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)
