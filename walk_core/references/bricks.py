"""``bricks``: a weathered brick wall in running bond: per-brick colour (some burnt, some pale), grain and pits,
chipped bevelled edges lit from the upper left, recessed sandy mortar in their shadow, and moss stains."""
from __future__ import annotations

import math

import torch

from .fields import coords, fbm, hsv_to_rgb, lerp, rgb, rng, scalar, smoothstep, uniform
from .registry import register_reference


def _shift(x: torch.Tensor, step: int) -> torch.Tensor:
    """``x`` moved ``step`` pixels down and right (edges repeated): what lies up-left of each pixel."""
    if step <= 0:
        return x
    out = torch.cat([x[..., :1, :].expand(*x.shape[:-2], step, x.shape[-1]), x[..., :-step, :]], dim=-2)
    return torch.cat([out[..., :, :1].expand(*out.shape[:-1], step), out[..., :, :-step]], dim=-1)


@register_reference("bricks")
def bricks(width: int, height: int, seed: int) -> torch.Tensor:
    short = min(width, height)
    g = rng(seed, "bricks")
    course = short / scalar(g, 8.5, 11.0)  # brick height + mortar, pixels
    length = course * scalar(g, 2.0, 2.4)
    mortar = course * scalar(g, 0.12, 0.18)
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, -1) + 0.5
    rows = math.ceil(height / course) + 1
    cols = math.ceil(width / length) + 2
    row = (ys / course).floor().long()
    offset = (row % 2).float() * 0.5 * length + uniform(g, rows, low=-0.08, high=0.08)[row.clamp(max=rows - 1)] * length
    col = ((xs + offset) / length).floor().long()
    fx = xs + offset - col * length  # position inside the brick's slot, pixels
    fy = ys - row * course
    brick_id = (row.clamp(0, rows - 1) * cols + col.clamp(0, cols - 1))

    # distance (pixels) inside the brick's face, with chipped, uneven edges
    chips = fbm(rng(seed, "chips"), width, height, cells=short / course * 4, octaves=3)
    ex = torch.minimum(fx - mortar / 2, length - mortar / 2 - fx)
    ey = torch.minimum(fy - mortar / 2, course - mortar / 2 - fy)
    inside = torch.minimum(ex, ey) + 0.25 * mortar * (chips - 0.3).clamp(max=0.2)
    face = (inside + 0.5).clamp(0, 1)

    # per-brick colour: reds and oranges, a few burnt dark ones and a few pale ones
    n = rows * cols
    hue = uniform(g, n, low=0.0, high=0.065)
    sat = uniform(g, n, low=0.45, high=0.75)
    val = uniform(g, n, low=0.42, high=0.72)
    kind = torch.rand(n, generator=g)
    val = torch.where(kind < 0.1, val * 0.55, val)
    hue = torch.where(kind > 0.92, torch.full_like(hue, 0.09), hue)
    sat = torch.where(kind > 0.92, sat * 0.55, sat)
    tilt = uniform(g, 2, n, low=-0.12, high=0.12)
    shade = 1 + tilt[0][brick_id] * (fx / length - 0.5) * 2 + tilt[1][brick_id] * (fy / course - 0.5) * 2
    grain = fbm(rng(seed, "grain"), width, height, cells=short / course * 6, octaves=3)
    pits = smoothstep(1.5, 2.2, fbm(rng(seed, "pits"), width, height, cells=short / course * 14, octaves=2))
    speckle = torch.randn(height, width, generator=rng(seed, "speckle"))
    brick = hsv_to_rgb(hue[brick_id], sat[brick_id], (val[brick_id] * shade * (1 + 0.08 * grain)).clamp(0, 1))
    brick = brick * (1 - 0.35 * pits) * (1 + 0.05 * speckle)

    # mortar: sandy, recessed, in the shadow of the brick up-left of it
    sand = torch.randn(height, width, generator=rng(seed, "sand"))
    mortar_colour = rgb(0.66, 0.63, 0.57) * (1 + 0.06 * sand + 0.05 * grain)
    step = max(1, round(mortar * 0.4))
    shadow = _shift(face, step)
    mortar_colour = mortar_colour * (1 - 0.45 * shadow * (1 - face))

    # bevel: the face's rounded edges lit from the upper left
    height_field = smoothstep(0.0, max(1.5, mortar * 0.9), inside) + 0.03 * grain
    light = (height_field - _shift(height_field, 1)) * 0.8
    wall = lerp(mortar_colour, brick * (1 + light), face)

    # stains: soot and moss at large scale
    _, v = coords(width, height)
    moss = smoothstep(0.4, 1.2, fbm(rng(seed, "moss"), width, height, cells=1.5, octaves=5) + 0.6 * v - 0.3)
    soot = smoothstep(0.2, 1.2, fbm(rng(seed, "soot"), width, height, cells=1.2, octaves=4))
    wall = lerp(wall, wall * rgb(0.62, 0.72, 0.42), 0.6 * moss * (1 - 0.5 * face))
    wall = wall * (1 - 0.3 * soot)
    return wall.clamp(0, 1)
