"""Which samplers did best on a metric: what the figures show besides the pack's walks."""
from __future__ import annotations

from typing import List, Optional

from .accuracy import Score, TargetAccuracy
from .scoring import METRICS


def distance_from_exact(key: str, value: float) -> float:
    """0 for an exact sampler: the error itself, |ratio - 1|, or 1 - fraction."""
    kind = METRICS[key].kind
    return value if kind == "error" else (abs(value - 1) if kind == "ratio" else 1 - value)


def best_rows(result: TargetAccuracy, key: str, budget: int, count: int, pack: Optional[bool] = None,
              schedule: Optional[str] = None) -> List[str]:
    """The ``count`` rows closest to exact on ``key`` at ``budget`` (default: the first schedule), optionally the
    pack's walks (pack=True) or the peers (pack=False) only."""
    schedule = schedule or (result.schedules[0] if result.schedules else "")
    scored = []
    for row in result.rows():
        if pack is not None and result.sampler_of(row).is_pack != pack:
            continue
        score = result.score(row, schedule, budget)
        if score is not None and score.ok:
            scored.append((distance_from_exact(key, score.get(key)), row))
    return [row for _, row in sorted(scored)[:count]]


def best_run(result: TargetAccuracy, key: str, budget: int, pack: bool) -> Optional[Score]:
    """The usable run closest to exact on ``key`` at ``budget`` over every schedule, of the pack's walks
    (pack=True) or of the peers."""
    best = None
    for score in result.scores:
        if score.budget != budget or not score.ok or result.sampler_of(score.row).is_pack != pack:
            continue
        if best is None or distance_from_exact(key, score.get(key)) < distance_from_exact(key, best.get(key)):
            best = score
    return best
