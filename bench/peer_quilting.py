"""Image quilting peer, written here from the paper (issue 28 §2).

Efros & Freeman, "Image Quilting for Texture Synthesis and Transfer", SIGGRAPH 2001: a new picture is tiled
with square blocks copied from the reference, each chosen to agree with what is already placed and stitched
in along a minimum-error boundary cut.

    from rwalk.bench.peer_quilting import quilt
    out = quilt(reference, 256, 256, seed=0)   # reference [3, H, W] in [0, 1] -> [3, 256, 256] in [0, 1]

The algorithm (paper §2.1):

1. Blocks of ``block`` x ``block`` px (default: a sixth of the reference's short side, at least 8 px: on the
   pack's 256 px references 43 px, about one brick / leaf cluster / glass pane, "large enough to capture the
   relevant structures"), placed in raster order with ``overlap`` px of overlap (default a sixth of the block,
   the paper's choice, at least 2 px).
2. For each block, the sum of squared differences (SSD) between the overlap region already on the canvas
   (left strip, top strip, or both) and every block position of the reference, all positions at once by
   convolutions over each strip: SSD = sum(r^2) - 2 sum(t r) + sum(t^2), target t, reference window r.
3. Candidates: positions whose SSD is within ``(1 + tolerance)`` of the best (tolerance 0.1, the paper's);
   one is picked at random (from a ``torch.Generator`` seeded ``seed``; the first block is uniform).
4. Minimum-error boundary cut: on the squared-difference surface of each overlap strip, the cheapest
   8-connected path across it by dynamic programming (``min_error_cut``); the new block takes the pixels on
   its side of the cut (both cuts apply in the corner where the two strips meet).
5. The canvas, a whole number of blocks, is cropped to ``out_h`` x ``out_w``.
"""
from __future__ import annotations

import logging
import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from .peer_gpnn import check_reference

log = logging.getLogger("bench.peer_quilting")


def min_error_cut(err: torch.Tensor) -> List[int]:
    """The minimum-cost vertical path through ``err`` [rows, cols]: one column per row, consecutive columns
    differing by at most 1 (an 8-connected path), least total error; by dynamic programming (E_i,j = e_i,j +
    min(E_i-1,j-1, E_i-1,j, E_i-1,j+1)) and backtracking. Ties go to the leftmost column."""
    if err.dim() != 2 or err.shape[0] < 1 or err.shape[1] < 1:
        raise ValueError(f"err must be a non-empty [rows, cols] tensor, got shape {list(err.shape)}")
    e = err.double()
    rows, cols = e.shape
    cost = e.clone()
    inf = torch.tensor([float("inf")], dtype=torch.float64)
    for i in range(1, rows):
        prev = cost[i - 1]
        left = torch.cat([inf, prev[:-1]])
        right = torch.cat([prev[1:], inf])
        cost[i] += torch.minimum(torch.minimum(left, prev), right)
    path = [int(torch.argmin(cost[-1]))]
    for i in range(rows - 2, -1, -1):
        j = path[-1]
        lo, hi = max(0, j - 1), min(cols, j + 2)
        path.append(lo + int(torch.argmin(cost[i, lo:hi])))
    return path[::-1]


def _cut_mask(new: torch.Tensor, old: torch.Tensor, overlap: int, left: bool, top: bool) -> torch.Tensor:
    """[B, B] mask, 1 where the new block shows: right of the left strip's cut and below the top strip's."""
    b = new.shape[-1]
    mask = torch.ones(b, b)
    if left:
        err = ((new[:, :, :overlap] - old[:, :, :overlap]) ** 2).sum(0)  # [B, overlap]
        for r, c in enumerate(min_error_cut(err)):
            mask[r, :c] = 0
    if top:
        err = ((new[:, :overlap, :] - old[:, :overlap, :]) ** 2).sum(0).T  # [B, overlap], one row per column
        for c, r in enumerate(min_error_cut(err)):
            mask[:r, c] = 0
    return mask


def _strip_ssd(ref: torch.Tensor, ref_sq: torch.Tensor, old: torch.Tensor, block: int, oy: int, ox: int,
               h: int, w: int) -> torch.Tensor:
    """SSD [H - block + 1, W - block + 1] between the rectangle (oy, ox, h, w) of ``old`` (a block of the
    canvas) and the same rectangle of the block at every position of the reference, by two convolutions."""
    t = old[:, oy:oy + h, ox:ox + w]
    ny, nx = ref.shape[-2] - block + 1, ref.shape[-1] - block + 1
    corr = F.conv2d(ref, t[None])[0, 0, oy:oy + ny, ox:ox + nx]
    energy = F.conv2d(ref_sq, torch.ones(1, 1, h, w))[0, 0, oy:oy + ny, ox:ox + nx]
    return energy - 2 * corr + (t * t).sum()


def quilt(reference: torch.Tensor, out_h: int, out_w: int, seed: int, block: Optional[int] = None,
          overlap: Optional[int] = None, tolerance: float = 0.1) -> torch.Tensor:
    """Generate one picture [3, out_h, out_w] in [0, 1] from ``reference`` [3, H, W] in [0, 1] by image
    quilting (Efros & Freeman 2001); the steps and defaults are in this module's docstring."""
    ref = check_reference(reference, out_h, out_w, min_side=4)
    short = min(ref.shape[1:])
    if block is None:
        block = min(short, max(8, round(short / 6)))
    if not isinstance(block, int) or isinstance(block, bool) or not 3 <= block <= short:
        raise ValueError(f"block must be an int in [3, {short}] (the reference's short side), got {block!r}")
    if overlap is None:
        overlap = max(2, round(block / 6))
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 1 <= overlap <= block // 2:
        raise ValueError(f"overlap must be an int in [1, {block // 2}] (half the block), got {overlap!r}")
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    g = torch.Generator().manual_seed(int(seed))
    step = block - overlap
    ny = max(1, math.ceil((out_h - overlap) / step))
    nx = max(1, math.ceil((out_w - overlap) / step))
    canvas = torch.zeros(3, ny * step + overlap, nx * step + overlap)
    ref_b = ref[None]
    ref_sq = (ref * ref).sum(0)[None, None]
    n_pos_y, n_pos_x = ref.shape[1] - block + 1, ref.shape[2] - block + 1
    log.debug("quilt: block %d overlap %d, %d x %d blocks", block, overlap, ny, nx)
    for i in range(ny):
        for j in range(nx):
            y, x = i * step, j * step
            if i == 0 and j == 0:
                pick = int(torch.randint(0, n_pos_y * n_pos_x, (1,), generator=g))
            else:
                old = canvas[:, y:y + block, x:x + block]
                rects = [(0, 0, block, overlap)] if j > 0 else []  # the left strip, then the top strip
                if i > 0:
                    rects.append((0, overlap, overlap, block - overlap) if j > 0 else (0, 0, overlap, block))
                ssd = sum(_strip_ssd(ref_b, ref_sq, old, block, *r) for r in rects).reshape(-1).clamp(min=0)
                best = float(ssd.min())
                cands = torch.nonzero(ssd <= best * (1 + tolerance) + 1e-4).reshape(-1)
                pick = int(cands[torch.randint(0, len(cands), (1,), generator=g)])
            sy, sx = divmod(pick, n_pos_x)
            new = ref[:, sy:sy + block, sx:sx + block]
            old = canvas[:, y:y + block, x:x + block]
            m = _cut_mask(new, old, overlap, left=j > 0, top=i > 0)
            canvas[:, y:y + block, x:x + block] = m * new + (1 - m) * old
    return canvas[:, :out_h, :out_w].clamp(0, 1).contiguous()


def generate(reference: torch.Tensor, out_h: int, out_w: int, seed: int, count: int = 1, **options) -> torch.Tensor:
    """``count`` pictures [count, 3, out_h, out_w]; item i uses seed ``seed + i``."""
    return torch.stack([quilt(reference, out_h, out_w, seed + i, **options) for i in range(count)])
