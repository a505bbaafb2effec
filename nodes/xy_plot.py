"""XY plots in the editor: XY Plot Axis names a WalkSampler input and its values; XY Plot Walk walks every cell of
the grid inside one execution and draws them as a labelled grid (walk_core.xy_grid), output as an IMAGE.

Every axis value is checked up front with WalkSampler's own declarations (walk_core.axis_values), and every
cell's settings with WalkSampler's checks (sigma order, pixels and memory), before the first walk starts. The
walks report to one progress bar over all cells (comfy_hooks.OneBar) and ComfyUI's Cancel is honoured between
cells and at every step inside one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..walk_core.axis_values import MAX_VALUES, AxisValuesError, parse_values, value_label
from ..walk_core.errors import WalkDivergedError
from ..walk_core.runner.spec import InputSpec, input_specs
from ..walk_core.runner.validate import check_value
from ..walk_core.xy_grid import labelled_grid
from .comfy_hooks import OneBar, interrupt_check
from .inputs import pick
from .layout import image_to_pil, pil_to_image
from .sampler import WalkSampler
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET, WALK_XY_AXIS
from .walk_limits import check_before_walk, declared_problem, walk_problem

log = logging.getLogger(__name__)

# WalkSampler inputs an axis may vary: those that change one picture (batch and trajectory settings do not)
AXIS_INPUTS = ("walk", "schedule", "steps", "seed", "width", "height", "sigma_max", "sigma_min", "eta", "s_noise",
               "churn", "snr", "corrector_steps", "order")
AXES = ("x_axis", "y_axis")


@dataclass(frozen=True)
class XYAxis:
    """One axis of an XY plot: the WalkSampler input it varies and its values, in order."""

    input: str
    values: Tuple[Any, ...]

    @property
    def labels(self) -> List[str]:
        return [value_label(v) for v in self.values]


def sampler_spec(name: str) -> InputSpec:
    """WalkSampler's declaration of input ``name`` (what an axis over it may take)."""
    return input_specs(WalkSampler)[name]


def axis_values(name: str, text: str, who: str) -> Tuple[Any, ...]:
    """The values ``text`` lists for WalkSampler's input ``name``; ValueError naming the bad one."""
    if name not in AXIS_INPUTS:
        raise ValueError(f"{who}: input={name!r} cannot be an axis; expected one of {', '.join(AXIS_INPUTS)}")
    try:
        return parse_values(sampler_spec(name), text)
    except AxisValuesError as error:
        raise ValueError(f"{who}: values={text!r}: {error}") from None


class XYPlotAxis:
    DESCRIPTION = (
        "One axis of an XY plot: a Walk Sampler input and the values to compare, as text (walk = euler, adams, "
        "er_sde; steps = 10, 20, 40 or the range 10:40:10). Connect it to XY Plot Walk's x_axis or y_axis. Every "
        "value is checked with the Walk Sampler input's own choices and limits before anything runs.")
    CATEGORY = f"{CATEGORY}/xy plot"
    RETURN_TYPES = (WALK_XY_AXIS,)
    RETURN_NAMES = ("axis",)
    OUTPUT_TOOLTIPS = ("The axis (input and values) for XY Plot Walk.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "input": (list(AXIS_INPUTS), {"default": "walk", "tooltip": (
                "The Walk Sampler input this axis varies; the XY Plot Walk widget of the same name is then "
                "ignored.")}),
            "values": ("STRING", {"default": "euler, adams, er_sde", "tooltip": (
                "The values, separated by commas, in the order they are drawn: walk or schedule names, or numbers; "
                f"a number input also takes start:stop:step ranges (10:40:10 = 10, 20, 30, 40). At most "
                f"{MAX_VALUES} values.")}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, input=None, values=None):  # noqa: A002  (the input's name is public API)
        """Every value, with the Walk Sampler input's own declaration (a linked input is checked when run)."""
        problem = declared_problem(cls, input=input)
        if problem or input is None or values is None:
            return problem or True
        try:
            axis_values(input, values, "XYPlotAxis")
        except ValueError as error:
            return str(error)
        return True

    def make(self, input, values):  # noqa: A002
        return (XYAxis(input, axis_values(input, values, "XYPlotAxis")),)


class XYPlotWalk:
    DESCRIPTION = (
        "An XY plot of walks: one Walk Sampler picture per cell, each with the settings below and the cell's x "
        "and y values (from two XY Plot Axis nodes; y is optional), walked in one run with one progress bar, "
        "then drawn as a grid with the axis names and values written on it, like the XY plots of other "
        "samplers. All cells share the seed unless an axis varies it. A cell whose walk goes non-finite is drawn "
        "crossed out; every other problem stops the plot before the first walk.")
    CATEGORY = f"{CATEGORY}/xy plot"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("grid",)
    OUTPUT_TOOLTIPS = ("The labelled grid: x values across, y values down.",)
    FUNCTION = "plot"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The distribution every cell walks towards."}),
                "x_axis": (WALK_XY_AXIS, {"tooltip": "The columns: an XY Plot Axis (a Walk Sampler input and values)."}),
                **pick(*AXIS_INPUTS),
            },
            "optional": {
                "y_axis": (WALK_XY_AXIS, {"tooltip": (
                    "The rows: another XY Plot Axis, on a different input; none = one row.")}),
                "guidance": (WALK_GUIDANCE, {"tooltip": "A guidance chain used by every cell; none = unguided."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, sigma_min=None, sigma_max=None):
        """The sigma range's order (Walk Sampler's check) from the literal inputs."""
        return WalkSampler.VALIDATE_INPUTS(sigma_min=sigma_min, sigma_max=sigma_max)

    @classmethod
    def VALIDATE_LITERALS(cls, width=None, height=None, steps=None, **_others):
        """Headless only: pixels and memory of one cell from the literal inputs (each cell is checked when run)."""
        return walk_problem(cls, "XYPlotWalk", width=width, height=height, batch=1, steps=steps, trajectory_every=0)

    def plot(self, target, x_axis, walk, schedule, steps, seed, width, height, sigma_max, sigma_min, eta, s_noise,
             churn, snr, corrector_steps, order, y_axis=None, guidance=None):
        base = dict(walk=walk, schedule=schedule, steps=steps, seed=seed, width=width, height=height,
                    sigma_max=sigma_max, sigma_min=sigma_min, eta=eta, s_noise=s_noise, churn=churn, snr=snr,
                    corrector_steps=corrector_steps, order=order)
        axes = checked_axes(x_axis, y_axis)
        cells = plan_cells(base, axes, target)
        bar = OneBar(sum(settings["steps"] for row in cells for settings, _ in row))
        stop = interrupt_check()
        pictures = []
        for row in cells:
            pictures.append([])
            for settings, where in row:
                if stop is not None:  # Cancel between cells
                    stop({})
                with bar.part(settings["steps"]):
                    pictures[-1].append(walk_cell(target, guidance, settings, where))
        x, y = axes
        grid = labelled_grid(pictures, x_title=x.input, x_values=x.labels, y_title=y.input if y else "",
                             y_values=y.labels if y else [""])
        return (pil_to_image(grid),)


def checked_axes(x_axis, y_axis) -> Tuple[XYAxis, Optional[XYAxis]]:
    """The axes, each value checked again with Walk Sampler's declarations; ValueError naming axis and value."""
    for name, axis in zip(AXES, (x_axis, y_axis)):
        if axis is None and name == "y_axis":
            continue
        if not isinstance(axis, XYAxis):
            raise ValueError(f"XYPlotWalk: {name} must be linked to an XY Plot Axis output; got "
                             f"{type(axis).__name__}")
        if axis.input not in AXIS_INPUTS:
            raise ValueError(f"XYPlotWalk: {name} varies {axis.input!r}, which cannot be an axis; expected one of "
                             f"{', '.join(AXIS_INPUTS)}")
        if not axis.values or len(axis.values) > MAX_VALUES:
            raise ValueError(f"XYPlotWalk: {name} ({axis.input}) has {len(axis.values)} values; expected 1.."
                             f"{MAX_VALUES}")
        for value in axis.values:
            problem = check_value(sampler_spec(axis.input), value)
            if problem:
                raise ValueError(f"XYPlotWalk: {name} ({axis.input}): {problem}")
    if y_axis is not None and y_axis.input == x_axis.input:
        raise ValueError(f"XYPlotWalk: x_axis and y_axis both vary {x_axis.input!r}; vary two different inputs "
                         "(or leave y_axis unconnected)")
    return x_axis, y_axis


def plan_cells(base: Dict[str, Any], axes: Tuple[XYAxis, Optional[XYAxis]], target) -> list:
    """Rows (y) of columns (x) of (settings, description) -- each cell checked the way Walk Sampler checks its
    inputs, so a bad combination stops the plot before any walk."""
    x, y = axes
    rows = []
    for y_value in (y.values if y else (None,)):
        row = []
        for x_value in x.values:
            settings = {**base, x.input: x_value}
            where = f"{x.input}={value_label(x_value)}"
            if y is not None:
                settings[y.input] = y_value
                where += f", {y.input}={value_label(y_value)}"
            check_cell(settings, where, target)
            row.append((settings, where))
        rows.append(row)
    return rows


def check_cell(settings: Dict[str, Any], where: str, target) -> None:
    problem = WalkSampler.VALIDATE_INPUTS(sigma_min=settings["sigma_min"], sigma_max=settings["sigma_max"])
    if problem is True:
        problem = walk_problem(WalkSampler, "XYPlotWalk", width=settings["width"], height=settings["height"],
                               batch=1, steps=settings["steps"], trajectory_every=0)
    if problem is not True:
        raise ValueError(f"XYPlotWalk: the cell {where}: {str(problem).removeprefix('XYPlotWalk: ')}")
    try:
        check_before_walk("XYPlotWalk", target, settings["width"], settings["height"], 1, settings["steps"], 0)
    except ValueError as error:
        raise ValueError(f"XYPlotWalk: the cell {where}: {str(error).removeprefix('XYPlotWalk: ')}") from None


def walk_cell(target, guidance, settings: Dict[str, Any], where: str):
    """One cell's picture (PIL), or None when its walk went non-finite (drawn as a failed cell)."""
    log.debug("XYPlotWalk: walking the cell %s", where)
    try:
        image = WalkSampler().sample(target, guidance=guidance, batch_size=1, denoise=1.0, trajectory_every=0,
                                     **settings)[0]
    except WalkDivergedError as error:
        log.warning("XYPlotWalk: the cell %s failed and is drawn crossed out: %s", where, error)
        return None
    return image_to_pil(image)
