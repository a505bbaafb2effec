"""Image pyramids for the patch target: blur-then-subsample down, smooth interpolation up.

Down-sampling is a separable 5-tap binomial blur ([1, 4, 6, 4, 1] / 16) followed by keeping every other
pixel -- never plain average pooling, which leaves a block grid when the coarse picture is brought back up.
Edges are mirrored, or wrapped around for periodic (tileable) pictures.

White noise of std sigma at level 0 has std ``sigma * noise_factor(level)`` at ``level`` (the composite
filter's energy), which is how the patch target knows the noise level of a coarse picture.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import List

import torch
import torch.nn.functional as F

BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def _pad(x: torch.Tensor, pad: int, periodic: bool) -> torch.Tensor:
    mode = "circular" if periodic else "reflect"
    if not periodic and min(x.shape[-2:]) <= pad:
        mode = "replicate"  # reflect needs more pixels than the pad on each side
    return F.pad(x, (pad,) * 4, mode=mode)


def _kernel(like: torch.Tensor) -> torch.Tensor:
    k = torch.tensor(BINOMIAL, dtype=like.dtype, device=like.device)
    return k / k.sum()


def blur_down(x: torch.Tensor, periodic: bool = False) -> torch.Tensor:
    """One pyramid level down: [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)]."""
    c = x.shape[1]
    k = _kernel(x)
    x = _pad(x, 2, periodic)
    x = F.conv2d(x, k.view(1, 1, 1, 5).repeat(c, 1, 1, 1), groups=c, stride=(1, 2))
    return F.conv2d(x, k.view(1, 1, 5, 1).repeat(c, 1, 1, 1), groups=c, stride=(2, 1))


def down(x: torch.Tensor, levels: int, periodic: bool = False) -> torch.Tensor:
    for _ in range(levels):
        x = blur_down(x, periodic)
    return x


def pyramid(x: torch.Tensor, levels: int, periodic: bool = False) -> List[torch.Tensor]:
    """[x, down(x, 1), ..., down(x, levels)]."""
    out = [x]
    for _ in range(levels):
        out.append(blur_down(out[-1], periodic))
    return out


def up(x: torch.Tensor, size, periodic: bool = False) -> torch.Tensor:
    """Smooth (bicubic-free, overshoot-free) interpolation of a coarse picture to ``size`` (H, W).

    Bilinear interpolation on the half-pixel grid; periodic pictures are wrapped first so the seam stays
    continuous."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if not periodic:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    # wrap one coarse pixel on each side, interpolate the padded picture, cut the middle back out
    sy, sx = size[0] / h, size[1] / w
    padded = F.pad(x, (1, 1, 1, 1), mode="circular")
    big = F.interpolate(padded, size=(round((h + 2) * sy), round((w + 2) * sx)), mode="bilinear",
                        align_corners=False)
    oy, ox = round(sy), round(sx)
    return big[..., oy:oy + size[0], ox:ox + size[1]]


@lru_cache(maxsize=None)
def noise_factor(level: int) -> float:
    """Std of white unit noise after ``level`` blur-and-subsample steps (interior pixels)."""
    if level == 0:
        return 1.0
    k = torch.tensor(BINOMIAL, dtype=torch.float64)
    k = k / k.sum()
    composite = k.clone()
    for i in range(1, level):
        spread = torch.zeros((len(k) - 1) * 2**i + 1, dtype=torch.float64)
        spread[:: 2**i] = k
        composite = torch.nn.functional.conv1d(composite.view(1, 1, -1), spread.flip(0).view(1, 1, -1),
                                               padding=len(spread) - 1).view(-1)
    return float(composite.square().sum())  # 2-D separable: (sum k^2)^2 variance -> sum k^2 std


def max_levels(height: int, width: int, smallest: int) -> int:
    """How many levels down until the shorter side would drop below ``smallest`` pixels."""
    side = min(height, width)
    return max(0, int(math.floor(math.log2(max(side, 1) / smallest))))
