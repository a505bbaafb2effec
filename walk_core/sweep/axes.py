"""The axes of a sweep from the command line: ``--vary NODE.INPUT=v1,v2,a:b:step`` and ``--seeds 0-15|3,7,9``.

Values stay text until each job's overrides are applied, so they get exactly ``--set``'s parsing and checks
(runner/overrides.py). A range ``a:b:step`` (or ``a:b``, step 1) counts from ``a`` to ``b`` inclusive
(``10:50:10`` is 10, 20, 30, 40, 50), as the XY plot's axes do (walk_core/value_ranges.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..runner.errors import WorkflowError
from ..runner.overrides import parse_override
from ..value_ranges import is_range, range_texts

MAX_RANGE_VALUES = 10_000  # one range may give at most this many values
_SEED_SPAN = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
MAX_SEED = 2 ** 64 - 1


@dataclass(frozen=True)
class Vary:
    """One ``--vary``: the node as given, the input and the values (text) in order."""

    node_ref: str
    input_name: str
    values: Tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.node_ref}.{self.input_name}"


def split_values(text: str) -> List[str]:
    """``"euler, adams"`` -> ["euler", "adams"]; ``"10:30:10"`` -> ["10", "20", "30"] (ranges expanded)."""
    values: List[str] = []
    for item in text.split(","):
        values.extend(range_texts(item, MAX_RANGE_VALUES) if is_range(item) else [item.strip()])
    return values


def parse_vary(text: str) -> Vary:
    """A ``--vary`` text; a WorkflowError (exit 2) says what is wrong and what is expected."""
    try:
        node_ref, name, raw = parse_override(text)
    except WorkflowError:
        raise WorkflowError(None, None, None, f"--vary {text!r}: expected NODE.INPUT=v1,v2,... (values separated by "
                            "commas; a range a:b:step counts from a to b), e.g. --vary WalkSampler.steps=10:50:10"
                            ) from None
    try:
        values = split_values(raw)
    except ValueError as error:
        raise WorkflowError(None, None, None, f"--vary {text!r}: {error}") from None
    if any(v == "" for v in values):
        raise WorkflowError(None, None, None, f"--vary {text!r} has an empty value; expected values separated by "
                            "single commas")
    if len(set(values)) != len(values):
        twice = sorted({v for v in values if values.count(v) > 1})
        raise WorkflowError(None, None, None, f"--vary {text!r} gives {', '.join(twice)} more than once; each value "
                            "of an axis must be different")
    return Vary(node_ref, name, tuple(values))


def parse_seeds(text: str) -> Tuple[int, ...]:
    """``"0-15"`` -> 0..15, ``"3,7,9"`` -> (3, 7, 9); both may mix (``"0-3,10"``)."""
    seeds: List[int] = []
    for item in text.split(","):
        span = _SEED_SPAN.match(item)
        try:
            if span:
                first, last = int(span.group(1)), int(span.group(2))
                if last < first:
                    raise ValueError
                if last - first >= MAX_RANGE_VALUES:
                    raise WorkflowError(None, None, None, f"--seeds {text!r}: {item.strip()!r} gives "
                                        f"{last - first + 1} seeds; at most {MAX_RANGE_VALUES} per range")
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(item.strip()))
                if seeds[-1] < 0:
                    raise ValueError
        except ValueError:
            raise WorkflowError(None, None, None, f"--seeds {text!r}: {item.strip()!r} is not a seed; expected a "
                                "range such as 0-15 or seeds separated by commas such as 3,7,9") from None
    if any(s > MAX_SEED for s in seeds):
        raise WorkflowError(None, None, None, f"--seeds {text!r}: seeds go up to {MAX_SEED}")
    if len(set(seeds)) != len(seeds):
        raise WorkflowError(None, None, None, f"--seeds {text!r} names a seed more than once")
    return tuple(seeds)


@dataclass(frozen=True)
class Axis:
    """One axis of the sweep (and of its contact sheet): a title, and per value its label and overrides."""

    title: str
    labels: Tuple[str, ...]
    overrides: Tuple[Tuple[Tuple[str, str, str], ...], ...]  # per value: ((node_ref, input, value), ...)
    seeds: Optional[Tuple[int, ...]] = None  # the seed axis: per value the seed (its overrides are empty)

    def __len__(self) -> int:
        return len(self.labels)


def make_axes(varies: Sequence[Vary], seeds: Optional[Sequence[int]], zipped: bool) -> List[Axis]:
    """The axes in order: one per ``--vary`` (or one for all of them with ``--zip``), then the seeds when more
    than one is given (a single seed is set on every job, not an axis)."""
    axes: List[Axis] = []
    if zipped and len(varies) > 1:
        lengths = {v.title: len(v.values) for v in varies}
        if len(set(lengths.values())) != 1:
            shown = ", ".join(f"{title} has {n}" for title, n in lengths.items())
            raise WorkflowError(None, None, None, f"--zip pairs the --vary values one to one, so every --vary needs "
                                f"as many values; {shown}")
        rows = list(zip(*(v.values for v in varies)))
        axes.append(Axis(" / ".join(v.title for v in varies), tuple(", ".join(row) for row in rows),
                         tuple(tuple((v.node_ref, v.input_name, x) for v, x in zip(varies, row)) for row in rows)))
    else:
        for vary in varies:
            axes.append(Axis(vary.title, vary.values,
                             tuple(((vary.node_ref, vary.input_name, x),) for x in vary.values)))
    if seeds is not None and len(seeds) > 1:
        axes.append(Axis("seed", tuple(str(s) for s in seeds), tuple(() for _ in seeds), tuple(seeds)))
    return axes
