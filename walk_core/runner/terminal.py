"""Progress of the headless runner and trainer: a bar on a terminal, log lines everywhere else.

On a terminal (stderr is a TTY) :class:`TerminalProgress` redraws one line in place. In a CI log, a pipe or a
service, a redrawn line is either invisible or one endless line, so :class:`LogProgress` writes ordinary log
records instead -- at the first update, every ``interval`` seconds and at the end -- each with the count, the
elapsed time and the ETA. :func:`progress_reporter` picks one. No tqdm: its bar needs a terminal too, and the
engine keeps to torch/numpy/pillow/safetensors.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import IO, Optional, Tuple

from ..progress import ProgressReporter

log = logging.getLogger(__name__)

LOG_INTERVAL = 10.0  # seconds between two progress log lines


def format_seconds(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` from an hour on."""
    seconds = max(0, int(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


class _Clock:
    """Elapsed time, rate and ETA of a run that may start part-way (a resumed training reports 50 % at once).

    The rate is measured from the start while the first update is at most one unit (or 1 %) in, else from the
    first update on, so a resumed run's earlier part does not count as done in no time.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self._base: Optional[Tuple[float, int]] = None  # (time, done) the rate is measured from

    def update(self, done: int, total: int) -> Tuple[float, float, Optional[float]]:
        """(elapsed seconds, units per second, seconds left or None while unknown)."""
        now = time.perf_counter()
        if self._base is None:
            self._base = (self.start, 0) if done <= max(1, total / 100) else (now, done)
        t0, d0 = self._base
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else 0.0
        eta = (total - done) / rate if rate > 0 else (0.0 if done >= total else None)
        return now - self.start, rate, eta


def _fraction(done: int, total: int) -> float:
    return min(max(done / total, 0.0), 1.0) if total > 0 else 0.0


class TerminalProgress(ProgressReporter):
    """A ``(done, total, detail=None)`` hook drawing ``label [#####-----] 5/10 00:01<00:01 4.20it/s``.

    Draws only when ``stream`` is a terminal (or ``force``), at most every ``min_interval`` seconds except for
    the last step; :meth:`close` ends the line. A ``detail`` (training: step and loss) replaces the raw count.
    """

    def __init__(self, label: str, stream: Optional[IO[str]] = None, *, enabled: bool = True,
                 force: bool = False, width: int = 28, min_interval: float = 0.1):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and (force or is_terminal(self.stream))
        self.width = width
        self.min_interval = min_interval
        self._clock = _Clock()
        self._last_draw = float("-inf")
        self._drawn = False
        self._width_drawn = 0

    def __call__(self, done: int, total: int, detail: Optional[str] = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.min_interval and done < total:
            return
        self._last_draw = now
        elapsed, rate, eta = self._clock.update(done, total)
        frac = _fraction(done, total)
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        left = "?" if eta is None else format_seconds(eta)
        if detail is None:
            line = f"{self.label} [{bar}] {done}/{total} {format_seconds(elapsed)}<{left} {rate:.2f}it/s"
        else:
            line = f"{self.label} [{bar}] {frac:4.0%} {detail} {format_seconds(elapsed)}<{left}"
        self.stream.write("\r" + line.ljust(self._width_drawn))
        self._width_drawn = len(line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class LogProgress(ProgressReporter):
    """A ``(done, total, detail=None)`` hook writing INFO log records, for output that is not a terminal:

    ``node 5 (WalkSampler): 12/40 steps (30%), elapsed 00:06, ETA 00:14, 2.00 steps/s``, or with a detail
    ``train: 42%, step 120, loss 0.0831, elapsed 01:00, ETA 01:23``. One at the first update, then at most one
    every ``interval`` seconds, and one at the end; :meth:`close` logs the last update if it was not logged
    (where an interrupted run stopped).
    """

    def __init__(self, label: str, *, enabled: bool = True, interval: float = LOG_INTERVAL,
                 unit: str = "steps", logger: Optional[logging.Logger] = None):
        if not interval >= 0:
            raise ValueError(f"LogProgress: interval={interval!r} is not allowed; expected seconds >= 0")
        self.label, self.enabled, self.interval, self.unit = label, enabled, interval, unit
        self.logger = logger or log
        self._clock = _Clock()
        self._logged_at: Optional[float] = None
        self._pending: Optional[Tuple[int, int, Optional[str], float, float, Optional[float]]] = None

    def __call__(self, done: int, total: int, detail: Optional[str] = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        self._pending = (done, total, detail, *self._clock.update(done, total))
        if self._logged_at is None or done >= total or now - self._logged_at >= self.interval:
            self._logged_at = now
            self._emit()

    def _emit(self) -> None:
        done, total, detail, elapsed, rate, eta = self._pending
        self._pending = None
        left = "?" if eta is None else format_seconds(eta)
        frac = _fraction(done, total)
        if detail is None:
            head = f"{done}/{total} {self.unit} ({frac:.0%})"
            speed = f", {rate:.2f} {self.unit}/s" if rate > 0 else ""
        else:
            head, speed = f"{frac:.0%}, {detail}", ""
        self.logger.info("%s: %s, elapsed %s, ETA %s%s", self.label, head, format_seconds(elapsed), left, speed)

    def close(self) -> None:
        if self.enabled and self._pending is not None:
            self._emit()


def progress_reporter(label: str, *, enabled: bool = True, stream: Optional[IO[str]] = None,
                      interval: Optional[float] = None, unit: str = "steps") -> ProgressReporter:
    """A bar when ``stream`` (default stderr) is a terminal, else progress log lines every ``interval`` seconds
    (default :data:`LOG_INTERVAL`)."""
    stream = stream if stream is not None else sys.stderr
    if is_terminal(stream):
        return TerminalProgress(label, stream, enabled=enabled)
    return LogProgress(label, enabled=enabled, interval=LOG_INTERVAL if interval is None else interval, unit=unit)
