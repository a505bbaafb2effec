"""Progress reporting without globals in the walks: a context-local hook ``(done, total)``.

The headless runner installs a reporter with :func:`use_progress` (a bar on a terminal, log lines elsewhere:
walk_core/runner/terminal.py); nodes fetch the current hook with :func:`current_progress` (inside ComfyUI they
use ComfyUI's own progress bar instead).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional

ProgressHook = Callable[[int, int], None]

_hook: ContextVar[Optional[ProgressHook]] = ContextVar("walk_progress_hook", default=None)


class ProgressReporter:
    """A hook ``(done, total, detail=None)`` that also shows a short ``detail`` text (training: its step and loss).

    Plain ``(done, total)`` callables are hooks too; :func:`report` passes a detail only to reporters.
    """

    def __call__(self, done: int, total: int, detail: Optional[str] = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """End the report (a bar ends its line; a log reports where an unfinished run stopped)."""

    def __enter__(self) -> "ProgressReporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def report(hook: Optional[ProgressHook], done: int, total: int, detail: Optional[str] = None) -> None:
    """Call ``hook(done, total)``, with ``detail`` when the hook is a :class:`ProgressReporter`."""
    if hook is None:
        return
    if detail is not None and isinstance(hook, ProgressReporter):
        hook(done, total, detail)
    else:
        hook(done, total)


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
