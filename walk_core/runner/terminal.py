"""A terminal progress bar on stderr for the headless runner (no tqdm)."""
from __future__ import annotations

import sys
import time
from typing import IO, Optional


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TerminalProgress:
    """A ``(done, total)`` hook drawing ``label [#####-----] 5/10 00:01<00:01 4.20it/s``.

    Draws only when ``stream`` is a terminal (or ``force``), at most every ``min_interval``
    seconds except for the last step; :meth:`close` ends the line.
    """

    def __init__(self, label: str, stream: Optional[IO[str]] = None, *, enabled: bool = True,
                 force: bool = False, width: int = 28, min_interval: float = 0.1):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = enabled and (force or bool(isatty and isatty()))
        self.width = width
        self.min_interval = min_interval
        self.start = time.perf_counter()
        self._last_draw = float("-inf")
        self._drawn = False
        self._width_drawn = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.min_interval and done < total:
            return
        self._last_draw = now
        elapsed = now - self.start
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        line = f"{self.label} [{bar}] {done}/{total} {_fmt_time(elapsed)}<{_fmt_time(eta)} {rate:.2f}it/s"
        self.stream.write("\r" + line.ljust(self._width_drawn))
        self._width_drawn = len(line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> "TerminalProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
