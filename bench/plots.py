"""Figures for the report, drawn with PIL only (no plotting library on the target machines).

* ``scatter_grid``: 2-D samples of the exact target and of every sampler, coloured by assigned component.
* ``convergence_chart``: a metric against NFE (log-log) for chosen rows (the pack's walks and the best peers),
  with the exact-sample floor as a band.
* ``image_grid``: a few samples of the image-like targets for chosen rows, upscaled.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from PIL import Image, ImageDraw, ImageFont

from .accuracy import TargetAccuracy
from .scoring import METRICS

Color = Tuple[int, int, int]
WALK_COLORS: Dict[str, Color] = {
    "euler": (31, 119, 180), "heun": (255, 127, 14), "euler_ancestral": (44, 160, 44),
    "edm": (214, 39, 40), "langevin": (148, 103, 189), "pc": (140, 86, 75),
}
COMPONENT_COLORS: List[Color] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (120, 60, 200),
]
BACKGROUND, INK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def walk_color(walk: str, index: int) -> Color:
    return WALK_COLORS.get(walk, COMPONENT_COLORS[index % len(COMPONENT_COLORS)])


def scatter_grid(result: TargetAccuracy, columns: int = 6, panel: int = 220, extent: float = 6.5) -> Image.Image:
    """One panel per sample set ([n, 2]): exact first, then each sampler at the plot budget."""
    mixture = result.target.mixture
    sets = [("exact samples", result.reference)]
    budget = result.config.plot_nfe
    schedule = result.config.schedules[0]
    for row, samples in result.plot_samples.items():
        score = result.score(row, schedule, budget)
        sets.append((f"{row}  NFE {score.nfe}" if score else row, samples))
    rows = math.ceil(len(sets) / columns)
    image = Image.new("RGB", (columns * panel, rows * panel), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(12)
    scale = (panel - 20) / (2 * extent)
    for i, (title, samples) in enumerate(sets):
        ox, oy = (i % columns) * panel, (i // columns) * panel
        cx, cy = ox + panel / 2, oy + 10 + (panel - 20) / 2
        draw.rectangle([ox + 2, oy + 2, ox + panel - 3, oy + panel - 3], outline=GRID)
        for mean in mixture.means:
            mx, my = cx + float(mean[0]) * scale, cy - float(mean[1]) * scale
            draw.ellipse([mx - 3, my - 3, mx + 3, my + 3], outline=(160, 160, 160))
        components = result.target.exact.assign(samples).tolist()
        outside = 0
        for (x, y), k in zip(samples.reshape(-1, 2).tolist(), components):
            px, py = cx + x * scale, cy - y * scale
            if not (ox <= px < ox + panel and oy <= py < oy + panel):
                outside += 1
                continue
            draw.point((px, py), fill=COMPONENT_COLORS[k % len(COMPONENT_COLORS)])
        draw.text((ox + 6, oy + 4), title, fill=INK, font=font)
        if outside:
            draw.text((ox + 6, oy + panel - 18), f"{outside} outside the view", fill=INK, font=font)
    return image


def _log_ticks(lo: float, hi: float) -> List[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(value)
    return ticks


def convergence_chart(result: TargetAccuracy, metric: str, rows: Optional[Sequence[str]] = None,
                      schedule: Optional[str] = None, size: Tuple[int, int] = (520, 340)) -> Image.Image:
    """``metric`` (a key of ``result.floors``) against NFE on log-log axes, one line per row (default: every
    row; runs that diverged or went off the target are left out), floor mean +- sd as a band."""
    schedule = schedule or result.config.schedules[0]
    floor = result.floors[metric]
    keep = set(result.rows() if rows is None else rows)
    lines: Dict[str, List[Tuple[int, float]]] = {}
    for s in result.scores:
        value = s.get(metric)
        if s.ok and s.schedule == schedule and s.row in keep and math.isfinite(value) and value > 0:
            lines.setdefault(s.row, []).append((s.nfe, value))
    values = [v for pts in lines.values() for _, v in pts] + [max(floor.mean - floor.sd, floor.mean / 3)]
    values = [v for v in values if math.isfinite(v) and v > 0] or [0.1, 1.0]  # log axis: positive values only
    nfes = [n for pts in lines.values() for n, _ in pts] or [1, 10]
    y_lo, y_hi = min(values) / 1.3, max(values) * 1.3
    x_lo, x_hi = min(nfes) / 1.15, max(nfes) * 1.15
    width, height = size[0], max(size[1], 40 + 16 * len(lines))  # room for the legend
    left, right, top, bottom = 52, 180, 26, 34
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(11)

    def to_px(nfe: float, value: float) -> Tuple[float, float]:
        fx = (math.log(nfe) - math.log(x_lo)) / (math.log(x_hi) - math.log(x_lo))
        fy = (math.log(max(value, y_lo)) - math.log(y_lo)) / (math.log(y_hi) - math.log(y_lo))
        return left + fx * (width - left - right), height - bottom - fy * (height - top - bottom)

    if math.isfinite(floor.mean) and math.isfinite(floor.sd):
        band_lo, band_hi = max(floor.mean - floor.sd, y_lo), min(floor.mean + floor.sd, y_hi)
        if band_hi > band_lo:
            _, py_hi = to_px(x_lo, band_hi)
            _, py_lo = to_px(x_lo, band_lo)
            draw.rectangle([left, py_hi, width - right, py_lo], fill=(235, 235, 235))
    for tick in _log_ticks(y_lo, y_hi):
        _, py = to_px(x_lo, tick)
        draw.line([left, py, width - right, py], fill=GRID)
        draw.text((4, py - 6), f"{tick:g}", fill=INK, font=font)
    for tick in _log_ticks(x_lo, x_hi):
        px, _ = to_px(tick, y_lo)
        draw.line([px, top, px, height - bottom], fill=GRID)
        draw.text((px - 8, height - bottom + 4), f"{tick:g}", fill=INK, font=font)
    draw.rectangle([left, top, width - right, height - bottom], outline=INK)
    label = METRICS[metric].label
    draw.text((left, 6), f"{result.target.key}: {label} vs NFE ({schedule}); grey = floor ± sd",
              fill=INK, font=font)
    draw.text((width - right - 30, height - 16), "NFE", fill=INK, font=font)
    for i, (walk, points) in enumerate(lines.items()):
        color = walk_color(walk, i)
        pixels = [to_px(n, v) for n, v in sorted(points)]
        if len(pixels) > 1:
            draw.line(pixels, fill=color, width=2)
        for px, py in pixels:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
        ly = top + 4 + 16 * i
        draw.line([width - right + 8, ly + 6, width - right + 24, ly + 6], fill=color, width=3)
        draw.text((width - right + 28, ly), walk, fill=INK, font=font)
    return image


def side_by_side(images: Sequence[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), BACKGROUND)
    x = 0
    for image in images:
        out.paste(image, (x, 0))
        x += image.width
    return out


def _to_rgb(picture: torch.Tensor, zoom: int) -> Image.Image:
    """[3, H, W] in [-1, 1] -> a PIL image upscaled ``zoom`` times (nearest)."""
    pixels = ((picture.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    image = Image.fromarray(pixels.numpy(), "RGB")
    return image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)


def image_grid(result: TargetAccuracy, rows_shown: Optional[Sequence[str]] = None, count: int = 8, zoom: int = 4,
               label_width: int = 230) -> Image.Image:
    """Rows: exact samples, then each chosen row at the plot budget (items 0..count-1, the same noise for all)."""
    schedule, budget = result.config.schedules[0], result.config.plot_nfe
    rows = [("exact", result.reference)]
    for row, samples in result.plot_samples.items():
        if rows_shown is not None and row not in rows_shown:
            continue
        score = result.score(row, schedule, budget)
        rows.append((f"{row} NFE {score.nfe}" if score else row, samples))
    count = min(count, result.reference.shape[0])
    h, w = result.target.shape[1] * zoom, result.target.shape[2] * zoom
    image = Image.new("RGB", (label_width + count * (w + 2), len(rows) * (h + 2)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(12)
    for r, (label, samples) in enumerate(rows):
        y = r * (h + 2)
        draw.text((4, y + h / 2 - 7), label, fill=INK, font=font)
        for c in range(count):
            image.paste(_to_rgb(samples[c].float(), zoom), (label_width + c * (w + 2), y))
    return image
