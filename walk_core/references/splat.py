"""Overlapping oriented shapes (brush strokes, leaves) on a jittered grid, rendered without a Python loop
over the shapes: each pixel looks at the shapes of the grid cells around it and keeps the topmost one
that covers it (the one with the highest depth ``z``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

# profile(a, b) -> d: where a pixel lies in a shape, from its coordinates along (a) and across (b) the shape,
# each scaled so the shape's extent is [-1, 1]; the pixel is inside when d < 1.
Profile = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def ellipse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a * a + b * b


def leaf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A pointed leaf (vesica) along a: width (1 - a^2), slightly fuller towards the stalk (a < 0)."""
    half = (1 - a * a).clamp_min(1e-3) * (1 - 0.25 * a)
    return torch.maximum(a.abs(), b.abs() / half)


@dataclass
class Grid:
    """One shape per cell of a jittered grid with ``spacing`` pixels; every tensor is [N] (N = rows*cols)."""
    spacing: float
    rows: int
    cols: int
    cx: torch.Tensor  # centre, pixels
    cy: torch.Tensor

    @property
    def count(self) -> int:
        return self.rows * self.cols


def jittered_grid(gen: torch.Generator, width: int, height: int, spacing: float, jitter: float = 0.9) -> Grid:
    cols = max(1, math.ceil(width / spacing))
    rows = max(1, math.ceil(height / spacing))
    j = torch.rand(2, rows, cols, generator=gen) - 0.5
    cx = (torch.arange(cols, dtype=torch.float32).view(1, -1) + 0.5 + jitter * j[0]) * spacing
    cy = (torch.arange(rows, dtype=torch.float32).view(-1, 1) + 0.5 + jitter * j[1]) * spacing
    return Grid(spacing, rows, cols, cx.reshape(-1), cy.reshape(-1))


@dataclass
class Coverage:
    """Per pixel [H, W]: the topmost covering shape (``index`` into the grid, -1 = none), the pixel's scaled
    coordinates ``a``, ``b`` in that shape, its ``d`` (profile value, < 1) and an antialiased ``alpha``."""
    index: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    d: torch.Tensor
    alpha: torch.Tensor


def splat(grid: Grid, width: int, height: int, angle: torch.Tensor, half_length: torch.Tensor,
          half_width: torch.Tensor, z: torch.Tensor, present: torch.Tensor, profile: Profile = ellipse,
          jitter: float = 0.9) -> Coverage:
    """Which shape covers each pixel. ``angle`` (radians, 0 = along +x), ``half_length``, ``half_width``
    (pixels), ``z`` (depth: higher is on top) and ``present`` (bool) are per shape, [N]; ``jitter`` is the
    grid's (how far a centre may stray from its cell's middle, in cells)."""
    # a shape reaches at most ``extent`` cells from its cell's middle; a pixel nearest grid corner c (per axis)
    # then needs the cells c-1-R .. c+R, R = floor(extent)
    extent = float((half_length ** 2 + half_width ** 2).sqrt().max()) / grid.spacing + jitter / 2
    reach = int(math.floor(extent))
    pad = reach + 1
    cols_p = grid.cols + 2 * pad
    c, s = torch.cos(angle), torch.sin(angle)
    il, iw = 1 / half_length.clamp_min(1e-3), 1 / half_width.clamp_min(1e-3)
    # a = (x - cx) cos + (y - cy) sin over half_length;  b = (y - cy) cos - (x - cx) sin over half_width
    params = torch.stack([c * il, s * il, -(grid.cx * c + grid.cy * s) * il,
                          -s * iw, c * iw, (grid.cx * s - grid.cy * c) * iw,
                          torch.where(present, z, torch.full_like(z, -math.inf))])
    padded = torch.zeros(7, grid.rows + 2 * pad, cols_p)
    padded[6] = -math.inf
    padded[:, pad:pad + grid.rows, pad:pad + grid.cols] = params.view(7, grid.rows, grid.cols)
    flat = padded.view(7, -1)

    ys = torch.arange(height, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, -1) + 0.5
    iy = (ys / grid.spacing).round().long().clamp(0, grid.rows) + pad  # nearest grid corner
    ix = (xs / grid.spacing).round().long().clamp(0, grid.cols) + pad
    base = (iy * cols_p + ix).view(-1)  # [H*W]
    px = xs.expand(height, width).reshape(-1)
    py = ys.expand(height, width).reshape(-1)

    best_z = torch.full((height * width,), -math.inf)
    best_i = torch.zeros(height * width, dtype=torch.long)
    for dy in range(-1 - reach, reach + 1):
        for dx in range(-1 - reach, reach + 1):
            idx = base + (dy * cols_p + dx)
            p = flat[:, idx]
            a = torch.addcmul(p[2], px, p[0]).addcmul_(py, p[1])
            b = torch.addcmul(p[5], px, p[3]).addcmul_(py, p[4])
            zz = torch.where(profile(a, b) < 1, p[6], -math.inf)
            take = zz > best_z
            best_z = torch.maximum(best_z, zz)
            best_i = torch.where(take, idx, best_i)
    covered = best_z > -math.inf
    p = flat[:, best_i]
    a = torch.addcmul(p[2], px, p[0]).addcmul_(py, p[1])
    b = torch.addcmul(p[5], px, p[3]).addcmul_(py, p[4])
    d = torch.where(covered, profile(a, b), 2.0)
    # padded index -> grid index
    r, q = best_i // cols_p - pad, best_i % cols_p - pad
    index = torch.where(covered, r * grid.cols + q, -1)
    # antialias: about one pixel of soft edge, measured across the shape (half width = |(p3, p4)|^-1)
    hw = torch.rsqrt(p[3] ** 2 + p[4] ** 2 + 1e-12).clamp_min(0.5)
    alpha = ((1 - d) * hw * 0.6).clamp(0, 1) * covered
    shape = (height, width)
    return Coverage(index.view(shape), a.view(shape), b.view(shape), d.view(shape), alpha.view(shape))


def gather(values: torch.Tensor, coverage: Coverage) -> torch.Tensor:
    """Per-shape values ``[..., N]`` -> per-pixel ``[..., H, W]`` of the covering shape (0 where none)."""
    idx = coverage.index.clamp_min(0)
    out = values[..., idx]
    return out * (coverage.index >= 0)
