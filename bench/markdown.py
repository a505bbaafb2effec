"""Small markdown helpers shared by the report's sections."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def fmt(value: Optional[float], digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}g}"


def details(summary: str, body: Sequence[str]) -> List[str]:
    """A collapsed block (GitHub renders <details>)."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]
