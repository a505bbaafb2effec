"""Built-in procedural pictures: the component means of the default mixture target (no files needed)."""
from __future__ import annotations

import math
from typing import Callable, Dict

import torch

# Each pattern maps normalised coordinates u, v in [0, 1) ([H, W] each) to an RGB image [3, H, W] in [0, 1].
_PALETTE = {
    "ink": (0.09, 0.11, 0.20), "cream": (0.96, 0.91, 0.80), "teal": (0.05, 0.55, 0.58),
    "coral": (0.97, 0.45, 0.36), "gold": (0.98, 0.76, 0.20), "plum": (0.45, 0.20, 0.50),
    "sky": (0.45, 0.72, 0.95), "leaf": (0.30, 0.62, 0.25),
}


def _mix(mask: torch.Tensor, a: str, b: str) -> torch.Tensor:
    ca = torch.tensor(_PALETTE[a]).view(3, 1, 1)
    cb = torch.tensor(_PALETTE[b]).view(3, 1, 1)
    return ca * (1 - mask) + cb * mask


def _soft(t: torch.Tensor, sharp: float = 12.0) -> torch.Tensor:
    return torch.sigmoid(sharp * t)


def _sunset(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    sky = _mix(_soft(v - 0.62), "coral", "plum")
    sun = _soft(0.18 - ((u - 0.5) ** 2 + (v - 0.55) ** 2).sqrt())
    return sky * (1 - sun) + _mix(torch.ones_like(u), "gold", "gold") * sun


PATTERNS: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sunset": lambda u, v: _sunset(u, v),
    "checker": lambda u, v: _mix(_soft(torch.sin(2 * math.pi * 2 * u) * torch.sin(2 * math.pi * 2 * v), 20), "ink", "cream"),
    "stripes": lambda u, v: _mix(_soft(torch.sin(2 * math.pi * 3 * (u + v)), 6), "teal", "gold"),
    "rings": lambda u, v: _mix(_soft(torch.sin(2 * math.pi * 4 * ((u - .5) ** 2 + (v - .5) ** 2).sqrt()), 8), "sky", "ink"),
    "dots": lambda u, v: _mix(_soft(0.25 - ((torch.frac(u * 3) - .5) ** 2 + (torch.frac(v * 3) - .5) ** 2).sqrt(), 30), "plum", "cream"),
    "hills": lambda u, v: _mix(_soft(v - 0.6 - 0.12 * torch.sin(2 * math.pi * 1.5 * u), 25), "sky", "leaf"),
    "cross": lambda u, v: _mix(_soft(0.12 - torch.minimum((u - .5).abs(), (v - .5).abs()), 40), "coral", "cream"),
    "gradient": lambda u, v: _mix(u * 0.7 + v * 0.3, "teal", "coral"),
}


def pattern(name: str, width: int, height: int) -> torch.Tensor:
    """The built-in pattern ``name`` as an RGB image [3, height, width] in [0, 1]."""
    if name not in PATTERNS:
        raise ValueError(f"pattern: unknown name {name!r}; expected one of {', '.join(PATTERNS)}")
    v, u = torch.meshgrid(
        (torch.arange(height, dtype=torch.float32) + 0.5) / height,
        (torch.arange(width, dtype=torch.float32) + 0.5) / width,
        indexing="ij",
    )
    return PATTERNS[name](u, v).clamp(0, 1)
