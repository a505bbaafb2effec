"""Shared pieces of the fuzzing suite (tests/test_fuzz_*.py): Hypothesis settings, hostile values, and
mutations of JSON-like documents (workflows, safetensors headers).

Budget. CI runs a fixed, derandomized set of examples (``WALK_FUZZ_EXAMPLES`` per test, default below)
that keeps the whole suite under a minute on two cores. A longer, randomized run is

    WALK_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz_workflows.py tests/test_fuzz_files.py -q

(any value other than the default also turns derandomization off; pytest's ``--hypothesis-seed=<n>`` repeats a
long run).
Each test logs how its examples ended (``--log-cli-level=INFO`` shows the counts).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
from collections import Counter
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, settings, strategies as st

log = logging.getLogger("fuzz")

CI_EXAMPLES = 100
EXAMPLES = int(os.environ.get("WALK_FUZZ_EXAMPLES", CI_EXAMPLES))
LONG_RUN = EXAMPLES != CI_EXAMPLES


def fuzz_settings(scale: float = 1.0) -> settings:
    """Settings of one fuzz test: ``scale`` x the example budget; fixed examples in CI, fresh ones in a long run."""
    return settings(
        max_examples=max(1, int(EXAMPLES * scale)),
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


class Outcomes:
    """How the examples of one test ended, logged when the test is done."""

    def __init__(self, name: str):
        self.name = name
        self.counts: Counter = Counter()

    def add(self, kind: str) -> None:
        self.counts[kind] += 1

    def report(self) -> str:
        total = sum(self.counts.values())
        text = f"{self.name}: {total} examples: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        log.info(text)
        return text


# -------------------------------------------------------------------------------------- hostile values

def nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_CONSTANTS = [
    None, True, False, 0, -1, 1, 7, 2 ** 31, 2 ** 63, -(2 ** 63), 10 ** 30, 0.5, -0.0, 1e-320, 1e308, -1e308,
    math.nan, math.inf, -math.inf, "", "x", "fixed", "randomize", "image", "IMAGE", "*", "../../etc/passwd",
    "/tmp/abs", "a\x00b", "\ud800", "ü" * 3, "x" * 300, [], {}, [0], ["1", 0], ["1", -1], ["999", 0], [1, 0, 0],
    ["1", 1.5], ["1", "0"], {"__value__": [1, 2]}, {"a": 1}, [[[]]], {"class_type": "SaveImage"},
]

hostile_values = st.one_of(
    st.sampled_from(HOSTILE_CONSTANTS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from([2, 63, 64, 65, 300]).map(lambda d: nested(0, d)),
)


# ----------------------------------------------------------------------------------------- mutations

def locations(doc: Any) -> List[Tuple[Any, Any]]:
    """Every (container, key) in ``doc``, breadth first; ``(None, None)`` stands for the document itself."""
    found: List[Tuple[Any, Any]] = [(None, None)]
    queue = [doc]
    while queue:
        value = queue.pop(0)
        if isinstance(value, dict):
            for key in list(value):
                found.append((value, key))
                queue.append(value[key])
        elif isinstance(value, list):
            for index in range(len(value)):
                found.append((value, index))
                queue.append(value[index])
    return found


def _get(doc, where):
    parent, key = where
    return doc if parent is None else parent[key]


def _set(doc, where, value):
    parent, key = where
    if parent is None:
        return value
    parent[key] = value
    return doc


OPS = ("drop", "duplicate", "retype", "nest", "swap", "extreme", "rename", "wrap")


def mutate(data, doc: Any, label: str = "mutation") -> Tuple[Any, List[str]]:
    """A copy of ``doc`` with 1 to 4 random mutations (``data`` is Hypothesis' st.data()); returns what was done."""
    doc = copy.deepcopy(doc)
    done = []
    for _ in range(data.draw(st.integers(1, 4), label=f"{label} count")):
        op = data.draw(st.sampled_from(OPS), label=f"{label} op")
        places = locations(doc)
        where = places[data.draw(st.integers(0, len(places) - 1), label=f"{label} place")]
        parent, key = where
        value = _get(doc, where)
        if op == "drop" and parent is not None:
            del parent[key]
        elif op == "duplicate" and parent is not None:
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(value))
            else:
                other = data.draw(st.sampled_from(list(parent)), label=f"{label} other key")
                parent[other] = copy.deepcopy(value)
        elif op == "retype":
            doc = _set(doc, where, data.draw(hostile_values, label=f"{label} value"))
        elif op == "nest":
            depth = data.draw(st.sampled_from([1, 2, 70]), label=f"{label} depth")
            wrapped = nested(value, depth) if data.draw(st.booleans()) else {"value": value}
            doc = _set(doc, where, wrapped)
        elif op == "swap" and parent is not None:
            other = places[data.draw(st.integers(1, len(places) - 1), label=f"{label} swap with")]
            other_value = _get(doc, other)
            if other[0] is not value and parent is not other_value and _contains(value, other[0]) is False \
                    and _contains(other_value, parent) is False:
                parent[key], other[0][other[1]] = other_value, value
        elif op == "extreme":
            doc = _set(doc, where, data.draw(st.sampled_from(_extremes(value)), label=f"{label} extreme"))
        elif op == "rename" and isinstance(parent, dict):
            new_key = data.draw(st.sampled_from([str(key) + "_", str(key).upper(), "", "inputs", "class_type",
                                                 "nodes", "links", "prompt", "1"]), label=f"{label} key")
            parent[new_key] = parent.pop(key)
        elif op == "wrap":
            doc = {"prompt": doc, "extra_data": data.draw(st.sampled_from(
                [None, {}, {"extra_pnginfo": {"workflow": copy.deepcopy(doc)}}, {"extra_pnginfo": 5}, "x"]))}
        else:
            continue
        done.append(op)
    return doc, done


def _contains(container: Any, target: Any) -> bool:
    """Whether ``target`` (by identity) is ``container`` or inside it: swapping them would make a cycle."""
    stack = [container]
    while stack:
        value = stack.pop()
        if value is target:
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _extremes(value: Any) -> list:
    if isinstance(value, bool):
        return [not value, 0, 1, "true"]
    if isinstance(value, int):
        return [0, -1, value + 1, value - 1, -value, 2 ** 53 + 1, 10 ** 400, float(value) + 0.5, math.nan]
    if isinstance(value, float):
        return [0.0, -value, value * 1e6, 1e308, -1e308, math.nan, math.inf, -math.inf, 5e-324]
    if isinstance(value, str):
        return ["", value * 50, value + "\x00", "../" + value, value.upper(), " " + value]
    return [None, [], {}, 0]


def to_text(doc: Any) -> str:
    """JSON text of a (possibly hostile) document; non-finite floats as JSON's NaN/Infinity extensions."""
    try:
        return json.dumps(doc, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return "{"  # not serialisable: an invalid document


@pytest.fixture(scope="module")
def outcomes():
    """Per test, the outcomes of its examples by kind, logged when the module's tests are done."""
    found = {}
    yield lambda name: found.setdefault(name, Outcomes(name))
    for item in found.values():
        item.report()
