"""Number ranges written as text, shared by the sweep's ``--vary`` (walk_core/sweep/axes.py) and the XY plot's
axes (walk_core/axis_values.py): ``start:stop:step`` counts from start to stop inclusive (when the steps land on
it), ``start:stop`` steps by 1. Values are computed in decimal and written with no more decimals than needed, so
``0.1:0.3:0.1`` is 0.1, 0.2, 0.3 and never 0.30000000000000004.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import List, Optional

_NUMBER = r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"
_RANGE = re.compile(rf"^({_NUMBER}):({_NUMBER})(?::({_NUMBER}))?$")


def is_range(item: str) -> bool:
    """Whether ``item`` is written as a number range (two or three numbers joined by ':')."""
    return _RANGE.match(str(item)) is not None


def range_texts(item: str, most: int) -> List[str]:
    """The values of the range ``item`` as text ("10", "0.75"); ValueError naming the range when it never reaches
    its end or gives more than ``most`` values."""
    match = _RANGE.match(str(item))
    if match is None:
        raise ValueError(f"{item!r} is not a range; write start:stop:step with numbers, e.g. 10:50:10")
    start, stop, step = match.groups()
    try:
        a, b = Decimal(start.strip()), Decimal(stop.strip())
        s = Decimal(step.strip()) if step is not None else Decimal(1)
    except InvalidOperation:  # pragma: no cover - the pattern admits numbers only
        raise ValueError(f"{item!r} is not a range") from None
    if not all(v.is_finite() for v in (a, b, s)):  # pragma: no cover - the pattern admits finite numbers only
        raise ValueError(f"range {item!r} has a number that is not finite")
    if s == 0:
        raise ValueError(f"{item!r}: the step is 0; expected a range start:stop:step with a step that is not 0")
    if (b - a) * s < 0:
        raise ValueError(f"{item!r} never reaches {stop.strip()} from {start.strip()} in steps of "
                         f"{(step or '1').strip()}; expected a step with the sign of stop - start")
    count = int((b - a) / s) + 1
    if count > most:
        raise ValueError(f"{item!r} gives {count:,} values; a range may give at most {most:,}")
    return [decimal_text(a + i * s) for i in range(count)]


def decimal_text(value: Decimal) -> str:
    """``Decimal('10')`` -> "10", ``Decimal('0.750')`` -> "0.75"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def optional_range(item: str, most: int) -> Optional[List[str]]:
    """``range_texts(item)`` when ``item`` is a range, else None."""
    return range_texts(item, most) if is_range(item) else None
