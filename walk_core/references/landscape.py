"""The scene under the painting: sky, sun, clouds, mountains, lake, hill, trees and a flowery field.

Everything is placed in picture coordinates (u across, v down, both 0..1; round things in height units),
so a seed composes the same scene at every size. The brush strokes go on afterwards (brushwork.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .fields import coords, fbm, lerp, rgb, rng, scalar, smoothstep, uniform, value_noise
from .palettes import LANDSCAPE_PALETTES
from .splat import ellipse, gather, jittered_grid, splat


@dataclass
class Scene:
    image: torch.Tensor  # [3, H, W] in [0, 1]
    angle: torch.Tensor  # [H, W] default stroke direction (radians, 0 = horizontal)
    firmness: torch.Tensor  # [H, W] how strongly strokes keep the default direction (0 = follow edges)


def _line(gen: torch.Generator, width: int, cells: float, octaves: int, ridged: bool) -> torch.Tensor:
    """A 1-D fractal profile [W] in about [-1, 1]: ridged (sharp peaks) or smooth."""
    total, norm, amp = torch.zeros(width), 0.0, 1.0
    for octave in range(octaves):
        c = cells * 2 ** octave
        if c > width / 2:
            break
        n = value_noise(gen, width, 1, max(1, round(c)), 1)[0]
        total += amp * ((0.9 - n.abs()) if ridged else n)
        norm += amp
        amp *= 0.5 if not ridged else 0.55
    return total / max(norm, 1e-6)


def _edge(distance_v: torch.Tensor, height: int) -> torch.Tensor:
    """Antialiased step: 1 where ``distance_v`` (in v units) > 0, over about one pixel."""
    return (distance_v * height + 0.5).clamp(0, 1)


def _palette(seed: int):
    pal = LANDSCAPE_PALETTES[int(seed) % len(LANDSCAPE_PALETTES)]
    return {k: (rgb(*c) if isinstance(c, tuple) else [rgb(*f) for f in c]) for k, c in pal.items()}


def _sky(p, u, v, aspect, vh, sun, seed, width, height):
    t = (v / vh).clamp(0, 1)
    sky = lerp(p["sky_top"], p["sky_mid"], smoothstep(0.0, 0.65, t))
    sky = lerp(sky, p["horizon"], smoothstep(0.4, 1.0, t) ** 1.4)
    su, sv, sr = sun
    dist = ((u * aspect - su * aspect) ** 2 + (v - sv) ** 2).sqrt()
    glow = torch.exp(-dist / 0.2)
    sky = lerp(sky, p["horizon"], 0.6 * glow)
    sky = lerp(sky, p["sun"], 0.5 * torch.exp(-dist / 0.07))
    # clouds: horizontally stretched fractal noise, thinning towards the horizon, lit from the sun's side
    g = rng(seed, "clouds")
    cover = scalar(g, -0.4, 0.15)
    n = fbm(g, width, height, cells=1.5, octaves=7, stretch=3.0)
    density = smoothstep(0.15, 0.85, n + cover - 0.9 * smoothstep(0.55, 1.0, t))
    shift = max(1, round(0.025 * height))
    toward_sun = torch.roll(density, shifts=shift, dims=0)  # the density a little above (the sun is high)
    toward_sun[:shift] = density[:shift]
    light = (0.5 + 1.4 * (density - toward_sun) + 0.5 * glow - 0.25 * density).clamp(0, 1)
    cloud = lerp(p["cloud_shadow"], p["cloud_lit"], light)
    sky = lerp(sky, cloud, density * 0.92)
    disc = ((sr - dist) * height + 0.5).clamp(0, 1) * (1 - 0.7 * density)
    return lerp(sky, p["sun"], disc)


def _mountains(p, img, v, vh, sun, seed, width, height):
    g = rng(seed, "mountains")
    base, amp = scalar(g, 0.06, 0.11), scalar(g, 0.10, 0.16)
    far_line = vh - base - amp * (_line(g, width, 1.5, 7, ridged=True) * 0.6 + 0.4)
    # rocky faces: a ridged fractal relief lit from the sun's side
    relief = 1 - fbm(rng(seed, "mountain-relief"), width, height, cells=3, octaves=6, stretch=0.7).abs()
    step = max(1, round(0.01 * width))
    toward = 1 if sun[0] > 0.5 else -1
    shade = (relief - torch.roll(relief, shifts=-toward * step, dims=1)) * 2.5
    depth = ((v - far_line) / (vh - far_line).clamp_min(1e-3)).clamp(0, 1)
    far = lerp(p["far"] * (0.92 + 0.25 * shade.clamp(-1, 1)), p["horizon"], 0.5 * depth ** 0.7)
    snow = smoothstep(0.035, 0.0, v - far_line - 0.025 * relief) * smoothstep(vh - base - 0.4 * amp,
                                                                               vh - base - 0.85 * amp, far_line)
    snow_colour = lerp(p["cloud_lit"], p["sun"], 0.4) * (0.85 + 0.2 * shade.clamp(-1, 1))
    far = lerp(far, snow_colour, snow * 0.85)
    img = lerp(img, far, _edge(v - far_line, height))

    g3 = rng(seed, "hills-far")
    mid_line = vh - 0.015 - scalar(g3, 0.03, 0.06) * (_line(g3, width, 1.5, 5, ridged=False) * 0.6 + 0.6)
    trees = fbm(rng(seed, "hills-far-trees"), width, height, cells=40, octaves=2)
    d = ((v - mid_line) / (vh - mid_line).clamp_min(1e-3)).clamp(0, 1)
    mid = lerp(lerp(p["mid"], p["far"], 0.45), p["mid"], d) * (0.9 + 0.1 * trees)
    return lerp(img, mid, _edge(v - mid_line, height))


def _lake(p, img, u, v, aspect, vh, shore, sun, seed, width, height):
    g = rng(seed, "water")
    ripple = fbm(g, width, height, cells=4, octaves=5, stretch=10.0)
    below = (v - vh).clamp_min(0)
    src_v = vh - below - 0.02 * below.sqrt() * ripple
    grid = torch.stack([u * 2 - 1, src_v * 2 - 1], dim=-1)[None]
    mirrored = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    depth = (below / (shore - vh).clamp_min(1e-3)).clamp(0, 1)
    water = lerp(mirrored * 0.88, p["water"], 0.25 + 0.45 * depth)
    streaks = fbm(rng(seed, "water-streaks"), width, height, cells=6, octaves=4, stretch=14.0)
    water = water * (1 + 0.10 * streaks)
    su = sun[0]
    column = torch.exp(-((u - su) * aspect).abs() / (0.02 + 0.25 * below))
    sparkle = smoothstep(0.4, 1.4, fbm(rng(seed, "glitter"), width, height, cells=24, octaves=2, stretch=4.0))
    water = lerp(water, p["sun"], (column * sparkle).clamp(0, 1) * 0.9)
    return lerp(img, water, _edge(v - vh, height))


def _hill(p, img, u, v, vh, seed, width, height):
    g = rng(seed, "hill")
    side = 0.0 if scalar(g) < 0.5 else 1.0
    rise, spread = scalar(g, 0.10, 0.17), scalar(g, 0.28, 0.42)
    wobble = _line(g, width, 2, 4, ridged=False) * 0.012
    top = vh + 0.25 - (0.25 + rise) * torch.exp(-((u[0] - side) / spread) ** 2) + wobble
    texture = fbm(rng(seed, "hill-texture"), width, height, cells=4, octaves=6, stretch=1.5)
    flank = ((u - side).abs() / spread).clamp(0, 1)  # the flank falling towards the middle faces the light
    light = (0.35 + 0.35 * texture + 0.35 * flank).clamp(0, 1)
    hill = lerp(p["hill"], p["hill_lit"], light)
    hill = lerp(hill, p["far"], 0.25 * smoothstep(0.06, 0.0, v - top.view(1, -1)))  # haze at the crest
    return lerp(img, hill, _edge(v - top.view(1, -1), height)), top


def _field(p, img, v, shore, seed, width, height):
    texture = fbm(rng(seed, "field"), width, height, cells=3, octaves=6, stretch=2.0)
    near = ((v - shore) / (1 - shore).clamp_min(1e-3)).clamp(0, 1)
    field = lerp(p["field"], p["field_dark"], (0.25 + 0.5 * near + 0.3 * texture).clamp(0, 1))
    field = lerp(field, p["horizon"], 0.2 * (1 - near) ** 3)
    return lerp(img, field, _edge(v - shore, height))


def _trees(p, img, u, v, aspect, vh, shore_fn, sun, seed, width, height):
    g = rng(seed, "trees")
    count = int(scalar(g, 3, 7))
    leafy = fbm(rng(seed, "tree-texture"), width, height, cells=18, octaves=3)
    x = u * aspect
    for _ in range(count):
        tu = scalar(g, 0.05, 0.95)
        base = shore_fn(tu) + scalar(g, 0.01, 0.12)
        size = (base - vh) * scalar(g, 0.45, 0.75)
        rx, ry = size * scalar(g, 0.28, 0.42), size * scalar(g, 0.45, 0.6)
        cx, cy = tu * aspect, base - size * 0.25 - ry
        trunk = _edge(size * 0.05 - (x - cx).abs(), height) * _edge(v - cy, height) * _edge(base - v, height)
        img = lerp(img, p["tree"] * 0.6, trunk)
        nx, ny = (x - cx) / rx, (v - cy) / ry
        r2 = nx * nx + ny * ny + 0.08 * leafy
        sdir = torch.tensor([sun[0] * aspect - cx, sun[1] - cy])
        sdir = sdir / sdir.norm().clamp_min(1e-6)
        light = (0.5 + 0.45 * (nx * sdir[0] + ny * sdir[1]) + 0.2 * leafy).clamp(0, 1)
        crown = lerp(p["tree"], p["tree_lit"], light)
        img = lerp(img, crown, ((1 - r2) * min(rx, ry) * height * 0.5).clamp(0, 1))
    return img


def _flowers(p, img, v, shore, seed, width, height):
    g = rng(seed, "flowers")
    scale = math.sqrt(width * height)
    grid = jittered_grid(g, width, height, max(2.0, scale / 40), jitter=0.6)
    cv = grid.cy / height
    local_shore = shore[0][grid.cx.long().clamp(0, width - 1)]
    near = ((cv - local_shore) / (1 - local_shore).clamp_min(1e-3)).clamp(0, 1)
    present = (torch.rand(grid.count, generator=g) < 0.15 + 0.6 * near) & (near > 0.12)
    size = grid.spacing * (0.12 + 0.3 * near) * uniform(g, grid.count, low=0.8, high=1.2)  # < 0.5 cell
    cov = splat(grid, width, height, uniform(g, grid.count, high=math.pi), size.clamp_min(0.7),
                (size * 0.8).clamp_min(0.6), torch.rand(grid.count, generator=g), present, ellipse, jitter=0.6)
    palette = torch.cat([c.view(3, 1) for c in p["flowers"]], dim=1)
    colours = palette[:, torch.randint(0, palette.shape[1], (grid.count,), generator=g)]
    colours = colours * uniform(g, 1, grid.count, low=0.8, high=1.1)
    return lerp(img, gather(colours, cov), cov.alpha)


def landscape(width: int, height: int, seed: int) -> Scene:
    p = _palette(seed)
    u, v = coords(width, height)
    aspect = width / height
    g = rng(seed, "layout")
    vh = scalar(g, 0.50, 0.57)
    sun = (scalar(g, 0.18, 0.82), scalar(g, 0.14, 0.30), scalar(g, 0.04, 0.06))
    shore_line = vh + scalar(g, 0.09, 0.15) + 0.03 * _line(rng(seed, "shore"), width, 2, 4, ridged=False)
    shore = shore_line.view(1, -1)

    def shore_fn(tu: float) -> float:
        return float(shore_line[min(width - 1, int(tu * width))])

    img = _sky(p, u, v, aspect, vh, sun, seed, width, height)
    img = _mountains(p, img, v, vh, sun, seed, width, height)
    img = _lake(p, img, u, v, aspect, vh, shore, sun, seed, width, height)
    img, hill_top = _hill(p, img, u, v, vh, seed, width, height)
    img = _field(p, img, v, shore, seed, width, height)
    img = _trees(p, img, u, v, aspect, vh, shore_fn, sun, seed, width, height)
    img = _flowers(p, img, v, shore, seed, width, height)

    # strokes: horizontal in sky and water, upright in the grass; firm there, free to follow edges elsewhere
    wiggle = fbm(rng(seed, "stroke-flow"), width, height, cells=3, octaves=3)
    grass = _edge(v - shore, height)
    angle = lerp(0.12 * wiggle, math.pi / 2 + 0.35 * wiggle, grass)
    sky_or_water = 1 - _edge(v - hill_top.view(1, -1), height) * (v > vh - 0.3)
    firmness = (0.35 + 0.5 * (v > vh).float() * (1 - grass) + 0.3 * grass) * (0.6 + 0.4 * sky_or_water)
    # round the sun, strokes circle it
    dx, dy = (u - sun[0]) * aspect, v - sun[1]
    near_sun = smoothstep(3.5 * sun[2], 1.5 * sun[2], (dx * dx + dy * dy).sqrt())
    tangent = torch.atan2(dy, dx) + math.pi / 2
    angle = torch.where(near_sun > 0.5, tangent, angle)
    firmness = lerp(firmness, torch.ones_like(firmness), near_sun)
    return Scene(img.clamp(0, 1), angle, firmness.clamp(0, 1))
