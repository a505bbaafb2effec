"""The walking nodes' resource checks (walk_core.limits), shared by their VALIDATE_INPUTS and their bodies.

At validation (ComfyUI's and the headless runner's) only literal inputs are known, not the target: the
check counts the pixels and the walk's own memory (states and trajectory), a lower bound. When the node
runs, before the target is sized or anything is allocated, the same check adds the target's factor.

ComfyUI leaves the range of an input that VALIDATE_INPUTS takes to the node, so :func:`declared_problem`
checks those inputs against their declarations first: a node may then take them safely.
"""
from __future__ import annotations

from typing import Any, Optional

from ..walk_core.limits import LimitError, check_walk, target_factor
from ..walk_core.runner.spec import input_specs
from ..walk_core.runner.validate import check_value


def declared_problem(cls: type, **values: Any) -> Optional[str]:
    """The first input of ``values`` (name -> literal; None = linked or absent) outside its declaration."""
    specs = input_specs(cls)
    for name, value in values.items():
        if value is None or name not in specs:
            continue
        problem = check_value(specs[name], value)
        if problem:  # "width=5000 is above the maximum 4096; ..." (the runner names the input from "width=")
            return f"{name}={problem}" if problem.startswith(repr(value)) else f"{name}={value!r}: {problem}"
    return None


def walk_problem(cls: type, who: str, *, width=None, height=None, batch=None, steps=None, trajectory_every=None,
                 batch_name: str = "batch_size") -> Any:
    """VALIDATE_INPUTS' answer for a walk of these literal inputs: True, or what is wrong.

    A size or batch that is linked (None) is checked when the node runs; missing steps count as 1 and a missing
    trajectory_every as 0 (the least the walk can keep).
    """
    problem = declared_problem(cls, **{"width": width, "height": height, batch_name: batch, "steps": steps,
                                       "trajectory_every": trajectory_every})
    if problem:
        return problem
    if width is None or height is None or batch is None:
        return True
    try:
        check_walk(who, int(width), int(height), int(batch), int(steps or 1), int(trajectory_every or 0))
    except LimitError as error:
        return str(error)
    return True


def check_before_walk(who: str, target, width: int, height: int, batch: int, steps: int,
                      trajectory_every: int) -> None:
    """The run-time check, with the target's own memory factor; raises LimitError (a ValueError)."""
    space = getattr(target, "space", "pixels")
    if space == "vector":  # abstract targets take no size; run_walk checks their shape
        return
    shape = tuple(getattr(target, "shape", (3,)))
    info = getattr(target, "info", {}) or {}
    cells = 1.0
    if space == "latent":
        factor = info.get("pixels_per_latent", 8) if isinstance(info, dict) else 8
        cells = 1.0 / float(factor) ** 2
    check_walk(who, int(width), int(height), int(batch), int(steps), int(trajectory_every),
               channels=int(shape[0]) if shape else 3, cells_per_pixel=cells,
               target_factor=target_factor(info, space), target=getattr(target, "name", ""))
