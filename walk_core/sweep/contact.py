"""The sweep's XY(Z) contact sheets: one labelled grid (walk_core/xy_grid.py) per Z value, beside the manifest.

The first axis is X (columns), the second Y (rows), the third Z (one sheet per value); the seeds are an axis
like any other when more than one is given. A cell shows the job's first picture, or is marked failed. A sweep
of one axis is a one-row strip. A sweep of more than three axes, or whose sheet would have more than
:data:`MAX_SHEET_SIDE` values along an axis or :data:`MAX_SHEET_PIXELS` pixels, gets no sheet (the manifest
lists every job).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from PIL import Image

from ..atomic_files import write_replace
from ..xy_grid import MIN_CELL, labelled_grid
from .plan import SweepPlan

log = logging.getLogger(__name__)

SHEET_STEM = "xy_plot"
MAX_SHEET_PIXELS = 64_000_000  # one sheet: about 3,900 cells of 128 px, or 240 of 512 px
MAX_SHEET_SIDE = 100  # values along X or along Y on one sheet
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _picture(folder: Path, entry: Optional[Mapping]) -> Optional[Image.Image]:
    """The job's first picture (None when it failed, is missing or cannot be read)."""
    if not entry or entry.get("status") != "done" or not entry.get("outputs"):
        return None
    try:
        with Image.open(folder / entry["outputs"][0]) as picture:
            picture.seek(0)
            return picture.convert("RGB")
    except (OSError, ValueError) as error:
        log.warning("contact sheet: cannot read %s (%s); its cell is marked failed", entry["outputs"][0], error)
        return None


def sheet_names(plan: SweepPlan) -> List[str]:
    """The contact sheets' file names: ``xy_plot.png``, or ``xy_plot_z01_<value>.png`` per Z value."""
    if len(plan.axes) < 3:
        return [f"{SHEET_STEM}.png"]
    labels = plan.axes[2].labels
    return [f"{SHEET_STEM}_z{i:02d}_{_UNSAFE.sub('_', label).strip('._')[:60] or 'value'}.png"
            for i, label in enumerate(labels, 1)]


def write_contact_sheets(plan: SweepPlan, records: Mapping[str, Mapping], folder: Path) -> List[Path]:
    """Draw and write the sheets (each replaced atomically: a resumed sweep redraws its own); their paths."""
    axes = plan.axes
    if not axes or len(axes) > 3:
        if axes:
            log.warning("the sweep has %d axes; a contact sheet shows at most three (X, Y, Z), so none is drawn",
                        len(axes))
        return []
    x = axes[0]
    y = axes[1] if len(axes) > 1 else None
    z_count = len(axes[2]) if len(axes) > 2 else 1
    cells: Dict[tuple, Optional[Image.Image]] = {}
    for job, where in zip(plan.jobs, plan.coordinates):
        cells[tuple(where)] = _picture(folder, records.get(job.job_id))
        if len(cells) == 1 and not _fits(x, y, cells[tuple(where)]):
            return []
    written = []
    for z, name in zip(range(z_count), sheet_names(plan)):
        grid = []
        for row in range(len(y) if y else 1):
            grid.append([cells.get(_key(column, row if y else None, z if len(axes) > 2 else None))
                         for column in range(len(x))])
        title = f"{axes[2].title} = {axes[2].labels[z]}" if len(axes) > 2 else None
        sheet = labelled_grid(grid, x_title=x.title, x_values=list(x.labels), y_title=y.title if y else "",
                              y_values=list(y.labels) if y else [""], title=title)
        path = folder / name
        write_replace(path, lambda temp, sheet=sheet: sheet.save(temp, format="PNG"))
        written.append(path)
    return written


def _fits(x, y, first: Optional[Image.Image]) -> bool:
    """Whether one sheet of these axes stays a picture one can look at: at most :data:`MAX_SHEET_SIDE` values
    along an axis and :data:`MAX_SHEET_PIXELS` pixels."""
    longest = max(len(x), len(y) if y else 1)
    if longest > MAX_SHEET_SIDE:
        log.warning("an axis of the contact sheet would have %d values (at most %d): none is drawn, sweep.jsonl "
                    "lists every picture", longest, MAX_SHEET_SIDE)
        return False
    width, height = first.size if first is not None else (MIN_CELL, MIN_CELL)
    scale = max(1, MIN_CELL // max(1, max(width, height)))  # xy_grid enlarges small pictures to MIN_CELL
    pixels = len(x) * (len(y) if y else 1) * width * height * scale * scale
    if pixels <= MAX_SHEET_PIXELS:
        return True
    log.warning("the contact sheet would have %d cells of %dx%d px (%.0f megapixels; at most %.0f): none is drawn, "
                "sweep.jsonl lists every picture", len(x) * (len(y) if y else 1), width * scale, height * scale,
                pixels / 1e6, MAX_SHEET_PIXELS / 1e6)
    return False


def _key(column: int, row: Optional[int], z: Optional[int]) -> tuple:
    return tuple(i for i in (column, row, z) if i is not None)


def axis_summary(axes: Sequence) -> str:
    """``WalkSampler.steps (3) x seed (4)``."""
    return " x ".join(f"{axis.title} ({len(axis)})" for axis in axes)
