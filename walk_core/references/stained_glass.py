"""``stained_glass``: a rose window: Voronoi pieces of saturated glass in rings and sectors, held by dark lead
lines (thicker between panels), each piece shaded unevenly and textured with streaks and seeds."""
from __future__ import annotations

import math

import torch

from .fields import coords, fbm, hsv_to_rgb, lerp, rgb, rng, scalar, smoothstep, uniform
from .registry import register_reference
from .splat import jittered_grid
from .voronoi import voronoi


def _panels(width, height, seed):
    """Per pixel: panel id (ring / sector of the rose, or an outer Voronoi panel), distance (pixels) to the
    nearest panel border, and kind (0 centre, 1 ring, 2 outside)."""
    g = rng(seed, "rose")
    short = min(width, height)
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, -1) + 0.5
    ox, oy = xs - width / 2, ys - height / 2
    r = (ox ** 2 + oy ** 2).sqrt()
    r1, r2 = short * scalar(g, 0.12, 0.16), short * scalar(g, 0.40, 0.46)
    spokes = int(scalar(g, 8, 13))
    turn = scalar(g, 0, 2 * math.pi)
    theta = (torch.atan2(oy, ox) + turn) % (2 * math.pi)
    sector = (theta / (2 * math.pi) * spokes).floor().clamp(0, spokes - 1)
    # distance to the nearest spoke line, in pixels along the arc
    frac = theta / (2 * math.pi) * spokes - sector
    to_spoke = torch.minimum(frac, 1 - frac) * (2 * math.pi / spokes) * r
    outer = voronoi(jittered_grid(rng(seed, "outer-panels"), width, height, short / 3.2), width, height)
    inner = r < r1
    ring = (r >= r1) & (r < r2)
    panel = torch.where(inner, 0, torch.where(ring, 1 + sector.long(), 1 + spokes + outer.index))
    border = torch.minimum((r - r1).abs(), (r - r2).abs())
    border = torch.where(ring, torch.minimum(border, to_spoke), border)
    border = torch.where(r >= r2, torch.minimum(border, outer.border), border)
    kind = torch.where(inner, 0, torch.where(ring, 1, 2))
    return panel, border, kind


@register_reference("stained_glass")
def stained_glass(width: int, height: int, seed: int) -> torch.Tensor:
    scale = math.sqrt(width * height)
    short = min(width, height)
    panel, panel_border, kind = _panels(width, height, seed)
    pieces = voronoi(jittered_grid(rng(seed, "pieces"), width, height, short / 11), width, height)
    n_pieces = int(pieces.index.max()) + 1

    g = rng(seed, "glass-colours")
    first = scalar(g)
    family = torch.tensor([first, first + 0.38 + scalar(g, -0.05, 0.05), first + 0.62 + scalar(g, -0.05, 0.05)])
    panel_hue = family[kind.clamp(0, 2)] + 0.0
    panel_shift = uniform(g, 4096, low=-0.08, high=0.08)
    piece_hue = 0.06 * torch.randn(n_pieces, generator=g)
    accent = (torch.rand(n_pieces, generator=g) < 0.18).float() * 0.5
    piece_sat = uniform(g, n_pieces, low=0.6, high=0.95)
    piece_val = uniform(g, n_pieces, low=0.55, high=0.95)
    tilt = uniform(g, 2, n_pieces, low=-1, high=1)
    idx = pieces.index
    hue = (panel_hue + panel_shift[panel % 4096] + piece_hue[idx] + accent[idx]) % 1.0
    # light through uneven glass: brighter in the middle of a piece, a tilt across it, streaks and seeds
    glow = smoothstep(0.0, short / 22, pieces.border)
    slope = (tilt[0][idx] * pieces.dx + tilt[1][idx] * pieces.dy) / (short / 11)
    streaks = fbm(rng(seed, "streaks"), width, height, cells=3, octaves=5, stretch=5.0)
    seeds = smoothstep(1.0, 1.8, fbm(rng(seed, "seeds"), width, height, cells=70, octaves=2))
    u, v = coords(width, height)
    window = 1.15 - 0.45 * ((u - 0.5) ** 2 + (v - 0.5) ** 2).sqrt() * 1.6  # light falls off to the frame
    value = piece_val[idx] * (0.7 + 0.35 * glow) * (1 + 0.18 * slope) * (1 + 0.1 * streaks) * window
    sat = piece_sat[idx] * (1 - 0.2 * seeds)
    glass = hsv_to_rgb(hue, sat.clamp(0, 1), (value + 0.12 * seeds).clamp(0, 1))

    # lead: thin between pieces, thick between panels, a rounded dark ridge with a faint highlight
    thin, thick = max(0.8, scale / 200), max(1.2, scale / 90)
    lead_d = torch.minimum(pieces.border / thin, panel_border / thick)  # < 1 inside a lead line
    lead = (1.5 - lead_d * 1.5 + 0.5).clamp(0, 1)
    ridge = (1 - lead_d.clamp(0, 1)) ** 2
    lead_colour = rgb(0.05, 0.05, 0.06) + rgb(0.22, 0.21, 0.20) * ridge * 0.6
    return lerp(glass, lead_colour, lead).clamp(0, 1)
