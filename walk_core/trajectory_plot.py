"""A picture of one walk: sigma per step, each guidance term's change per evaluation, an x-hat-0 filmstrip.

Drawn with Pillow alone: two plots side by side (sigma against the step, log scale, the kept steps marked;
the RMS change each guidance term made to the denoised estimate against the evaluation, log scale, one line
and one legend entry per term) above a filmstrip of the x-hat-0 frames the walk kept. Axes, ticks, labels and
the legend are text in Pillow's default font. :func:`draw_walk` returns the picture and a
:class:`WalkPictureLayout` saying where everything went, which is what the tests check.
"""
from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .atomic_files import write_new
from .trajectory import COLUMN_LIMITS, TILE_LIMITS, WalkTrajectory

log = logging.getLogger(__name__)

Box = Tuple[int, int, int, int]  # left, top, right, bottom (pixels; right and bottom exclusive)
Point = Tuple[int, float, float, float]  # (step or evaluation, value, x pixel, y pixel)

MIN_WIDTH = 760  # the two plots need this much
MARGIN = 16
HEADER = 30  # the summary line
PANEL = 270  # height of a plot with its title and tick labels
GAP = 8  # between plots, tiles and rows
CAPTION = 32  # two lines of text under a tile
GUIDANCE_DECADES = 6  # the guidance plot shows this many decades below its largest change
# plot area inside a panel: room for the title above, tick labels left and below
INSET_LEFT, INSET_TOP, INSET_RIGHT, INSET_BOTTOM = 58, 26, 12, 40

BACKGROUND, INK, FAINT, GRID = (255, 255, 255), (20, 20, 24), (110, 110, 120), (228, 228, 234)
SIGMA_COLOUR = (40, 90, 170)
TERM_COLOURS = [(214, 96, 20), (40, 150, 60), (200, 40, 60), (130, 80, 180), (20, 150, 170), (150, 110, 30),
                (220, 80, 170), (90, 90, 90)]


@dataclass(frozen=True)
class WalkPictureLayout:
    """Where :func:`draw_walk` put things. Boxes are (left, top, right, bottom) in the picture's pixels."""

    size: Tuple[int, int]  # (width, height)
    sigma_plot: Box  # the plot area of sigma per step
    sigma_points: Tuple[Point, ...]  # (step, sigma, x, y) of each step's sigma
    guidance_plot: Box  # the plot area of the guidance changes
    guidance_lines: Dict[str, Tuple[Point, ...]]  # term label -> (evaluation, change, x, y) where it was on
    legend: Tuple[Tuple[str, Box], ...]  # term label and the box of its legend text
    tiles: Tuple[Tuple[int, Box], ...]  # (step, box) of each filmstrip frame, in time order
    item: int  # the batch item the filmstrip shows


def font(size: int = 13) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` px (its scalable one, Pillow >= 10.1 with FreeType; else its bitmap)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # old Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def tile_picture(frame: torch.Tensor, size: Tuple[int, int]) -> Image.Image:
    """One [3, H, W] picture in [-1, 1] as a ``size`` (width, height) tile: nearest neighbour when it grows by
    2x or more (a small walk's pixels stay visible as pixels), Lanczos otherwise."""
    pixels = ((frame.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    if img.size == tuple(size):
        return img
    grows = size[0] >= 2 * img.width and size[1] >= 2 * img.height
    return img.resize(tuple(size), Image.NEAREST if grows else Image.LANCZOS)


def tile_size(height: int, width: int, tile: int) -> Tuple[int, int]:
    """(width, height) of a frame's tile: its longer side ``tile`` px, its aspect kept."""
    scale = tile / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


# ---------------------------------------------------------------- axes


@dataclass(frozen=True)
class _Axis:
    lo: float
    hi: float
    log: bool
    start: float  # pixel of lo
    end: float  # pixel of hi

    def __call__(self, value: float) -> float:
        f = math.log10 if self.log else float
        return self.start + (f(value) - f(self.lo)) / (f(self.hi) - f(self.lo)) * (self.end - self.start)


def _log_range(values: Sequence[float]) -> Tuple[float, float]:
    """Whole decades around the positive ``values``."""
    lo = 10.0 ** math.floor(math.log10(min(values)))
    hi = 10.0 ** math.ceil(math.log10(max(values)))
    return (lo, hi * 10) if hi <= lo else (lo, hi)


def _log_ticks(lo: float, hi: float) -> List[float]:
    """Decades in [lo, hi]; with 2 and 5 between them when the range spans fewer than 3 decades."""
    first, last = round(math.log10(lo)), round(math.log10(hi))
    steps = (1,) if last - first >= 3 else (1, 2, 5)
    return [m * 10.0 ** k for k in range(first, last + 1) for m in steps if lo <= m * 10.0 ** k <= hi * 1.0001]


def _integer_ticks(lo: int, hi: int, most: int = 7) -> List[int]:
    """Round numbers (1, 2 or 5 x 10^k apart) in [lo, hi], at most ``most`` of them."""
    span = max(hi - lo, 1)
    step = next(m * 10 ** k for k in range(12) for m in (1, 2, 5) if span / (m * 10 ** k) <= most - 1)
    return list(range(-(-lo // step) * step, hi + 1, step))


def _label(value: float) -> str:
    return f"{value:g}"


def _panel(draw: ImageDraw.ImageDraw, area: Box, title: str, x_axis: _Axis, y_axis: _Axis, x_ticks, y_ticks,
           x_label: str, small, normal) -> None:
    """Frame, grid, ticks and tick labels of one plot; ``area`` is the plot area."""
    left, top, right, bottom = area
    draw.text((left, top - 8), title, fill=INK, font=normal, anchor="ls")
    for value in y_ticks:
        y = round(y_axis(value))
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.line([(left - 5, y), (left, y)], fill=INK)
        draw.text((left - 8, y), _label(value), fill=INK, font=small, anchor="rm")
    for value in x_ticks:
        x = round(x_axis(value))
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.line([(x, bottom), (x, bottom + 5)], fill=INK)
        draw.text((x, bottom + 8), _label(value), fill=INK, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text((right, bottom + 24), x_label, fill=FAINT, font=small, anchor="rt")


def _x_axis(count: int, area: Box, first: int) -> _Axis:
    """Integer positions ``first`` .. ``first + count - 1`` across ``area`` with half a step of room each side."""
    return _Axis(first - 0.5, first + count - 0.5, False, area[0], area[2])


# ---------------------------------------------------------------- the two plots


def _sigma_plot(draw, area: Box, trace: WalkTrajectory, small, normal) -> Tuple[Point, ...]:
    """sigma_i against step i (the final step's 0 is off a log scale), the kept steps ringed."""
    sigmas = list(trace.sigmas[:-1])
    positive = [s for s in sigmas if s > 0] or [1.0]
    lo, hi = _log_range(positive)
    x_axis = _x_axis(len(sigmas), area, 0)
    y_axis = _Axis(lo, hi, True, area[3], area[1])
    _panel(draw, area, "sigma per step (log scale)", x_axis, y_axis, _integer_ticks(0, len(sigmas) - 1),
           _log_ticks(lo, hi), "step", small, normal)
    points = tuple((i, s, x_axis(i), y_axis(s)) for i, s in enumerate(sigmas) if s > 0)
    if len(points) > 1:
        draw.line([(x, y) for _, _, x, y in points], fill=SIGMA_COLOUR, width=2)
    kept = set(trace.steps)
    for i, _, x, y in points:
        r, fill = (4, BACKGROUND) if i in kept else (2, SIGMA_COLOUR)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=SIGMA_COLOUR, fill=fill, width=2)
    return points


def _guidance_plot(draw, area: Box, trace: WalkTrajectory, small, normal):
    """Each term's RMS change of the estimate against the evaluation (1-based), one colour per term."""
    labels = trace.term_labels()
    values = [v for record in trace.guidance for v in record.norms.values() if v > 0]
    if not labels or not values:
        left, top, right, bottom = area
        draw.text((left, top - 8), "guidance change per evaluation", fill=INK, font=normal, anchor="ls")
        draw.rectangle([left, top, right, bottom], outline=FAINT)
        why = "no guidance terms" if not labels else "the guidance terms changed nothing"
        draw.text(((left + right) / 2, (top + bottom) / 2), why, fill=FAINT, font=normal, anchor="mm")
        return {}, ()
    lo, hi = _log_range(values)
    lo = max(lo, hi * 10.0 ** -GUIDANCE_DECADES)  # changes below this are rounding noise: drawn on the floor
    count = len(trace.guidance)
    x_axis = _x_axis(count, area, 1)
    y_axis = _Axis(lo, hi, True, area[3], area[1])
    _panel(draw, area, "guidance change per evaluation (RMS, log scale)", x_axis, y_axis,
           _integer_ticks(1, count), _log_ticks(lo, hi), "evaluation", small, normal)
    lines: Dict[str, Tuple[Point, ...]] = {}
    for k, label in enumerate(labels):
        colour = TERM_COLOURS[k % len(TERM_COLOURS)]
        points, run = [], []
        for e, record in enumerate(trace.guidance, start=1):
            value = record.norms.get(label, 0.0)
            if value > 0:
                point = (e, value, x_axis(e), y_axis(max(value, lo)))
                points.append(point)
                run.append(point[2:])
            else:  # the term was off here: the line breaks
                _polyline(draw, run, colour)
                run = []
        _polyline(draw, run, colour)
        lines[label] = tuple(points)
    return lines, _legend(draw, area, labels, small)


def _polyline(draw, run: List[Tuple[float, float]], colour) -> None:
    if len(run) > 1:
        draw.line(run, fill=colour, width=2)
    elif run:
        x, y = run[0]
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)


def _legend(draw, area: Box, labels: Sequence[str], small) -> Tuple[Tuple[str, Box], ...]:
    """One entry per term (a colour swatch and its label) in the plot's top right corner."""
    row = 16
    width = 30 + max(round(draw.textlength(label, font=small)) for label in labels)
    right, top = area[2] - 6, area[1] + 6
    left = right - width - 8
    draw.rectangle([left, top, right, top + 6 + row * len(labels)], fill=BACKGROUND, outline=FAINT)
    entries = []
    for k, label in enumerate(labels):
        y = top + 4 + row * k + row // 2
        draw.line([(left + 6, y), (left + 24, y)], fill=TERM_COLOURS[k % len(TERM_COLOURS)], width=3)
        box = draw.textbbox((left + 30, y), label, font=small, anchor="lm")
        draw.text((left + 30, y), label, fill=INK, font=small, anchor="lm")
        entries.append((label, tuple(int(v) for v in box)))
    return tuple(entries)


# ---------------------------------------------------------------- the picture


def _check(trace: Optional[WalkTrajectory], item: int, tile: int, columns: int, who: str) -> None:
    if trace is None or not trace.steps or trace.frames.numel() == 0:
        raise ValueError(f"{who}: trajectory is empty (no kept steps); expected a walk's trajectory -- connect "
                         "WalkSampler's walk_trajectory output")
    if not 0 <= item < trace.batch_size:
        raise ValueError(f"{who}: item={item} is not allowed; expected 0..{trace.batch_size - 1} (the walk made "
                         f"{trace.batch_size} picture(s))")
    if not TILE_LIMITS[0] <= tile <= TILE_LIMITS[1]:
        raise ValueError(f"{who}: tile={tile} is not allowed; expected {TILE_LIMITS[0]}..{TILE_LIMITS[1]} px")
    if not COLUMN_LIMITS[0] <= columns <= COLUMN_LIMITS[1]:
        raise ValueError(f"{who}: columns={columns} is not allowed; expected {COLUMN_LIMITS[0]}..{COLUMN_LIMITS[1]}")


def picture_size(frames: int, frame_height: int, frame_width: int, tile: int = 128, columns: int = 8):
    """(width, height) of :func:`draw_walk`'s picture for ``frames`` kept frames of that size."""
    tw, th = tile_size(frame_height, frame_width, tile)
    across = min(frames, columns)
    rows = -(-frames // across)
    width = max(MIN_WIDTH, across * tw + (across - 1) * GAP + 2 * MARGIN)
    return width, HEADER + PANEL + GAP + 24 + rows * (th + CAPTION + GAP) - GAP + MARGIN


def _captions(draw, steps: Sequence[int], sigmas: Sequence[float], width: int, small) -> List[List[str]]:
    """The lines under each tile, the same kind for all: "step i" and "sigma s" where every one fits the tile's
    width, else "step i" alone, else the step number."""
    captions = [[f"step {i}", f"sigma {sigmas[i]:.3g}"] for i in steps]
    for keep in (2, 1):
        if all(draw.textlength(line, font=small) <= width for lines in captions for line in lines[:keep]):
            return [lines[:keep] for lines in captions]
    return [[str(i)] for i in steps]


def _summary(trace: WalkTrajectory, item: int) -> str:
    n = len(trace.sigmas) - 1
    text = f"walk of {n} step{'s' * (n != 1)}: sigma {trace.sigmas[0]:.4g} -> {trace.sigmas[-2]:.4g} -> 0"
    if trace.guidance:
        text += f", {len(trace.guidance)} guided evaluations"
    return text + f"; x0 frames of picture {item + 1} of {trace.batch_size}"


def draw_walk(trace: Optional[WalkTrajectory], item: int = 0, tile: int = 128, columns: int = 8,
              who: str = "draw_walk") -> Tuple[Image.Image, WalkPictureLayout]:
    """The picture of ``trace`` (its batch item ``item``): plots above, the filmstrip of kept x-hat-0 below.

    ``tile``: the longer side of a filmstrip frame in px; ``columns``: frames per filmstrip row. Returns the RGB
    picture and where everything in it went.
    """
    _check(trace, item, tile, columns, who)
    frames = trace.frames[:, item]  # [T, 3, H, W]
    count, (height, width) = frames.shape[0], frames.shape[-2:]
    size = picture_size(count, height, width, tile, columns)
    img = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(img)
    small, normal = font(12), font(14)
    draw.text((MARGIN, HEADER // 2 + 2), _summary(trace, item), fill=INK, font=normal, anchor="lm")

    half = (size[0] - 2 * MARGIN - GAP) // 2
    top, bottom = HEADER + INSET_TOP, HEADER + PANEL - INSET_BOTTOM
    sigma_area = (MARGIN + INSET_LEFT, top, MARGIN + half - INSET_RIGHT, bottom)
    guidance_left = MARGIN + half + GAP
    guidance_area = (guidance_left + INSET_LEFT, top, guidance_left + half - INSET_RIGHT, bottom)
    sigma_points = _sigma_plot(draw, sigma_area, trace, small, normal)
    lines, legend = _guidance_plot(draw, guidance_area, trace, small, normal)

    strip_top = HEADER + PANEL + GAP
    draw.text((MARGIN, strip_top + 10), "x0 (denoised estimate) at the kept steps", fill=INK, font=normal,
              anchor="lm")
    tw, th = tile_size(height, width, tile)
    across = min(count, columns)
    left0 = (size[0] - (across * tw + (across - 1) * GAP)) // 2
    tiles = []
    captions = _captions(draw, trace.steps, trace.sigmas, tw, small)
    for t, step in enumerate(trace.steps):
        row, column = divmod(t, across)
        x, y = left0 + column * (tw + GAP), strip_top + 24 + row * (th + CAPTION + GAP)
        img.paste(tile_picture(frames[t], (tw, th)), (x, y))
        tiles.append((step, (x, y, x + tw, y + th)))
        for line, text in enumerate(captions[t]):
            draw.text((x + tw / 2, y + th + 3 + 14 * line), text, fill=INK, font=small, anchor="mt")
    layout = WalkPictureLayout(size=size, sigma_plot=sigma_area, sigma_points=sigma_points,
                               guidance_plot=guidance_area, guidance_lines=lines, legend=legend,
                               tiles=tuple(tiles), item=item)
    return img, layout


def write_walk_pictures(outputs: Mapping[str, tuple], folder: Path | str, prefix: str = "walk") -> List[Path]:
    """Draw every :class:`WalkTrajectory` among a run's node outputs (node id -> outputs) into ``folder`` as
    ``<prefix>_<node id>_<NNNNN>_.png``: written atomically, each under a new name (never over another run's)."""
    written = []
    for node_id, values in outputs.items():
        for trace in (v for v in values if isinstance(v, WalkTrajectory)):
            img, _ = draw_walk(trace, who=f"walk picture of node {node_id}")
            stem = f"{prefix}_{re.sub(r'[^A-Za-z0-9_-]', '_', str(node_id))}"
            names = (Path(folder) / f"{stem}_{n:05}_.png" for n in itertools.count(1))
            written.append(write_new(names, lambda temp, img=img: img.save(temp, format="PNG")))
            log.info("walk picture of node %s: %s", node_id, written[-1])
    return written
