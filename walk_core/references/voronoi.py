"""Voronoi cells of a jittered grid: per pixel the nearest site, the second nearest, and the distance to the
border between them (for lead lines, mortar-free tilings, cell textures)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .splat import Grid


@dataclass
class Cells:
    """Per pixel [H, W]: nearest site ``index`` (into the grid), offset to it (``dx``, ``dy``, pixels),
    distance to it, and ``border``: the distance (pixels) to the edge shared with the second-nearest site."""
    index: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor
    distance: torch.Tensor
    border: torch.Tensor


def voronoi(grid: Grid, width: int, height: int) -> Cells:
    """Voronoi cells of ``grid``'s sites (jitter at most 0.9 cell). Each pixel looks at the 4 x 4 cells around
    its nearest grid corner, which holds every site that can be nearest or second nearest in practice."""
    pad = 2
    cols_p = grid.cols + 2 * pad
    far = 1e6
    sites = torch.full((2, grid.rows + 2 * pad, cols_p), far)
    sites[:, pad:pad + grid.rows, pad:pad + grid.cols] = torch.stack([grid.cx, grid.cy]).view(2, grid.rows, grid.cols)
    flat = sites.view(2, -1)
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, -1) + 0.5
    iy = (ys / grid.spacing).round().long().clamp(0, grid.rows) + pad
    ix = (xs / grid.spacing).round().long().clamp(0, grid.cols) + pad
    base = (iy * cols_p + ix).view(-1)
    px = xs.expand(height, width).reshape(-1)
    py = ys.expand(height, width).reshape(-1)
    n = height * width
    d1 = torch.full((n,), math.inf)
    d2 = torch.full((n,), math.inf)
    i1 = torch.zeros(n, dtype=torch.long)
    i2 = torch.zeros(n, dtype=torch.long)
    for dy in range(-2, 2):
        for dx in range(-2, 2):
            idx = base + (dy * cols_p + dx)
            sx, sy = flat[:, idx]
            d = (px - sx) ** 2 + (py - sy) ** 2
            first = d < d1
            second = ~first & (d < d2)
            d2 = torch.where(first, d1, torch.where(second, d, d2))
            i2 = torch.where(first, i1, torch.where(second, idx, i2))
            d1 = torch.where(first, d, d1)
            i1 = torch.where(first, idx, i1)
    c1, c2 = flat[:, i1], flat[:, i2]
    gap = (c2 - c1).norm(dim=0).clamp_min(1e-6)
    border = ((d2 - d1) / (2 * gap)).clamp_min(0)
    r, q = i1 // cols_p - pad, i1 % cols_p - pad
    shape = (height, width)
    return Cells((r * grid.cols + q).view(shape), (c1[0] - px).view(shape), (c1[1] - py).view(shape),
                 d1.sqrt().view(shape), border.view(shape))
