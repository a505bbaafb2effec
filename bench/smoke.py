"""A seconds-long run of the whole benchmark on tiny sizes, for the test suite.

    from rwalk.bench.smoke import smoke
    text = smoke()  # the markdown report; nothing is written
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .config import smoke_config
from .pipeline import run_bench


def smoke(out: Optional[Path] = None) -> str:
    """Overhead and accuracy of every walk on tiny tensors and sample sets; returns the report's markdown
    (and writes it, with figures, when ``out`` is given)."""
    return run_bench(smoke_config(), "rwalk.bench.smoke.smoke()", out)
