"""Values of one input written as text, for a comparison axis: ``euler, adams, er_sde`` or ``10, 20, 40``.

Items are separated by commas or new lines; a number input also takes ranges ``start:stop:step`` (both ends
included when the steps land on them; ``start:stop`` steps by 1), e.g. ``10:50:10`` = 10, 20, 30, 40, 50 -- the
same ranges as the sweep's ``--vary`` (walk_core/value_ranges.py). Every
value is checked with the input's own declaration (its choices, type and range: walk_core.runner.validate), so
an axis takes exactly what the input takes. A problem is a message naming the item and what is allowed.
"""
from __future__ import annotations

import re
from typing import Any, List, Tuple

from .runner.spec import InputSpec
from .runner.validate import check_value
from .value_ranges import range_texts

MAX_VALUES = 32  # per axis: a 32 x 32 grid is already 1,024 walks
_SEPARATORS = re.compile(r"[,\n]")


class AxisValuesError(ValueError):
    """A value of an axis that its input does not take; the message names the item and what is allowed."""


def split_items(text: str) -> List[str]:
    """The non-empty items of ``text`` (commas or new lines between them), stripped."""
    return [item.strip() for item in _SEPARATORS.split(str(text)) if item.strip()]


def number(spec: InputSpec, text: str) -> Any:
    """``text`` as the input's number type, or ``text`` unchanged when it is not one (check_value says why)."""
    if spec.type == "INT":
        try:
            return int(text)  # exact, also for seeds beyond a float's 53 bits
        except ValueError:
            pass  # 1e3, 20.0: read as a float below
    try:
        value = float(text)
    except ValueError:
        return text
    if spec.type == "INT":
        return int(value) if value.is_integer() else value
    return value


def expand_range(spec: InputSpec, item: str) -> List[Any]:
    """``start:stop[:step]`` as the input's numbers; raises AxisValuesError for a range that is not one."""
    try:
        return [number(spec, text) for text in range_texts(item, MAX_VALUES)]
    except ValueError as error:
        raise AxisValuesError(str(error).replace("a range may give", "an axis takes")) from None


def parse_values(spec: InputSpec, text: str) -> Tuple[Any, ...]:
    """The values ``text`` lists for the input ``spec``, each checked against its declaration.

    Raises AxisValuesError naming the first bad item (its text and what the input takes)."""
    items = split_items(text)
    if not items:
        raise AxisValuesError(f"no values given; list what {spec.name} should take, separated by commas "
                              f"({spec.allowed()})")
    values: List[Any] = []
    for item in items:
        is_range = spec.type in ("INT", "FLOAT") and not spec.is_combo and ":" in item
        for value in expand_range(spec, item) if is_range else [item if spec.is_combo else number(spec, item)]:
            problem = check_value(spec, value)
            if problem:
                raise AxisValuesError(f"{spec.name}: {problem}" + (f" (in the range {item!r})" if is_range else ""))
            values.append(value)
    if len(values) > MAX_VALUES:
        raise AxisValuesError(f"{len(values)} values; an axis takes at most {MAX_VALUES}")
    return tuple(values)


def value_label(value: Any) -> str:
    """How a value is written on a grid: numbers short (0.5, 1e-05), names as they are."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
