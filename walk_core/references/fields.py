"""Building blocks of the procedural references: seeded generators, coordinates, smooth noise, colour.

Every random draw comes from a local ``torch.Generator`` made by :func:`rng` from the seed and a tag,
so each feature of a picture has its own stream (changing one feature leaves the others as they were)
and the global RNG is never touched. Noise lattices are sized in cells per picture, not per pixel, so a
seed gives the same composition at every size.
"""
from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F

_MASK63 = (1 << 63) - 1


def rng(seed: int, tag: str) -> torch.Generator:
    """A CPU generator for one feature (``tag``) of the picture with ``seed``."""
    mixed = (int(seed) * 0x9E3779B97F4A7C15 + zlib.crc32(tag.encode("utf-8"))) & _MASK63
    return torch.Generator(device="cpu").manual_seed(mixed)


def uniform(gen: torch.Generator, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen)


def scalar(gen: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    """One uniform number in [low, high)."""
    return float(uniform(gen, 1, low=low, high=high))


def coords(width: int, height: int):
    """Pixel-centre coordinates ``u`` (x) and ``v`` (y, downwards), each [H, W] in (0, 1)."""
    v = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    u = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    return u.view(1, -1).expand(height, width), v.view(-1, 1).expand(height, width)


def smoothstep(edge0: float, edge1, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _cubic_weights(pixels: int, cells: int) -> torch.Tensor:
    """[pixels, cells + 3]: Catmull-Rom interpolation weights of the lattice nodes at each pixel centre (the
    picture spans the inner ``cells`` cells of the lattice; one cell of margin each side)."""
    t = 1 + (torch.arange(pixels, dtype=torch.float32) + 0.5) / pixels * cells
    i0 = t.floor().long()
    f = t - i0
    f2, f3 = f * f, f * f * f
    w = torch.stack([-0.5 * f3 + f2 - 0.5 * f, 1.5 * f3 - 2.5 * f2 + 1, -1.5 * f3 + 2 * f2 + 0.5 * f,
                     0.5 * f3 - 0.5 * f2], dim=1)
    m = torch.zeros(pixels, cells + 3)
    m.scatter_add_(1, i0.view(-1, 1) + torch.arange(-1, 3).view(1, -1), w)
    return m


def value_noise(gen: torch.Generator, width: int, height: int, cells_x: int, cells_y: int) -> torch.Tensor:
    """Smooth noise [H, W], std about 1: a Gaussian lattice of ``cells_x`` x ``cells_y`` cells interpolated
    (separable cubic) at the pixel centres."""
    lattice = torch.randn(cells_y + 3, cells_x + 3, generator=gen)
    return _cubic_weights(height, cells_y) @ lattice @ _cubic_weights(width, cells_x).T * 1.3


def fbm(gen: torch.Generator, width: int, height: int, cells: float, octaves: int = 5, gain: float = 0.5,
        stretch: float = 1.0) -> torch.Tensor:
    """Fractal noise [H, W], std about 1: ``octaves`` of value noise, ``cells`` lattice cells along the shorter
    side at the coarsest, doubling per octave (octaves finer than 2 px are left out). ``stretch`` > 1 makes
    features wider than tall (clouds, strata)."""
    short = min(width, height)
    total = torch.zeros(height, width)
    norm = 0.0
    amp = 1.0
    for octave in range(octaves):
        c = cells * 2 ** octave
        cx = max(1, round(c * width / short / stretch))
        cy = max(1, round(c * height / short))
        lattice_draw = value_noise(gen, width, height, cx, cy) if c <= short / 2 else None
        if lattice_draw is not None:
            total += amp * lattice_draw
            norm += amp * amp
        amp *= gain
    return total / math.sqrt(max(norm, 1e-12))


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [C, H, W] (or [H, W]) with reflect padding; sigma in pixels. Wide blurs run on an
    area-downsampled copy and are upsampled bilinearly (same look, a fraction of the cost)."""
    if sigma < 0.3:
        return image
    squeeze = image.ndim == 2
    x = image[None] if squeeze else image
    h, w = x.shape[-2:]
    factor = max(1, int(sigma / 2))
    if factor > 1 and min(h, w) >= 2 * factor:
        small = F.interpolate(x[None], size=(math.ceil(h / factor), math.ceil(w / factor)), mode="area")[0]
        inner = math.sqrt(max(sigma ** 2 - (factor ** 2 - 1) / 12, 0.25)) / factor
        x = F.interpolate(_blur(small, inner)[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    else:
        x = _blur(x, sigma)
    return x[0] if squeeze else x


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [C, H, W] at full resolution."""
    x = x[:, None]
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    h, w = x.shape[-2:]
    ry, rx = min(radius, h - 1), min(radius, w - 1)
    if ry > 0:
        ky = k[radius - ry:radius + ry + 1]
        x = F.conv2d(F.pad(x, (0, 0, ry, ry), mode="reflect"), (ky / ky.sum()).view(1, 1, -1, 1))
    if rx > 0:
        kx = k[radius - rx:radius + rx + 1]
        x = F.conv2d(F.pad(x, (rx, rx, 0, 0), mode="reflect"), (kx / kx.sum()).view(1, 1, 1, -1))
    return x[:, 0]


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV (hue in turns) -> RGB, stacked on a new first axis."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6])
    return v - v * s * (torch.minimum(k, 4 - k).clamp(0, 1))


def rgb(*values: float) -> torch.Tensor:
    """A colour as [3, 1, 1] for broadcasting over a picture."""
    return torch.tensor(values, dtype=torch.float32).view(3, 1, 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def luminance(image: torch.Tensor) -> torch.Tensor:
    return 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
