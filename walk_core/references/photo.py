"""``photo``: a small rendered "photograph" (the content picture for photo style transfer): a few shiny and
matte spheres, one of them a mirror, on a checkered floor under a sky, with soft shadows, contact occlusion,
reflections and haze, seen by a slightly tilted camera, filmic tone curve and a touch of sensor grain."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .fields import hsv_to_rgb, rng, scalar
from .raycast import Sphere, World, intersect, normalize, shade
from .registry import register_reference

EYE = (0.0, 1.15, -4.4)
LOOK_AT = (0.0, 0.55, 1.0)
FOV_Y = math.radians(40)

FLOORS = [((0.82, 0.78, 0.70), (0.42, 0.20, 0.14)), ((0.85, 0.85, 0.84), (0.22, 0.25, 0.30)),
          ((0.72, 0.56, 0.38), (0.36, 0.24, 0.14)), ((0.80, 0.80, 0.72), (0.18, 0.36, 0.30))]


def _spheres(seed: int) -> list:
    g = rng(seed, "spheres")
    placed = []
    hero = (scalar(g, -0.7, 0.7), scalar(g, 0.8, 1.6), scalar(g, 0.8, 1.0))  # x, z, radius
    candidates = [hero] + [(scalar(g, -2.6, 2.6), scalar(g, -1.4, 4.0), scalar(g, 0.3, 0.75)) for _ in range(40)]
    for x, z, r in candidates:
        if len(placed) == 5:
            break
        if all((x - px) ** 2 + (z - pz) ** 2 > (r + pr + 0.12) ** 2 for px, pz, pr in placed):
            # keep it inside the view: |x| within the frustum's half width at its depth
            depth = z - EYE[2]
            if abs(x) + r < depth * math.tan(FOV_Y / 2) * 1.0 and depth > 2.0:
                placed.append((x, z, r))
    mirror = int(scalar(g, 0, len(placed)))
    hue0 = scalar(g)
    spheres = []
    for i, (x, z, r) in enumerate(placed):
        hue = (hue0 + i * 0.618034) % 1.0
        albedo = hsv_to_rgb(torch.tensor(hue), torch.tensor(scalar(g, 0.55, 0.85)), torch.tensor(scalar(g, 0.6, 0.9)))
        glossy = scalar(g) < 0.6
        if i == mirror:
            spheres.append(Sphere((x, r, z), r, (0.9, 0.9, 0.92), 400.0, 1.0, 0.85, True))
        else:
            spheres.append(Sphere((x, r, z), r, tuple(float(c) ** 2.2 for c in albedo), 120.0 if glossy else 25.0,
                                  0.9 if glossy else 0.25, 0.05 if glossy else 0.03, False))
    return spheres


def _world(seed: int) -> World:
    g = rng(seed, "light")
    elevation = scalar(g, 0.5, 0.9)
    azimuth = scalar(g, 0.5, 1.2) * (1 if scalar(g) < 0.5 else -1)
    sun = torch.tensor([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                        -math.cos(elevation) * math.cos(azimuth)])
    warm = scalar(g, 0.0, 1.0)
    tile_a, tile_b = FLOORS[int(scalar(g, 0, len(FLOORS)))]
    column = lambda *c: torch.tensor(c, dtype=torch.float32).view(3, 1)  # noqa: E731
    return World(_spheres(seed), (sun / sun.norm()).view(3, 1), column(1.3, 1.2 - 0.08 * warm, 1.05 - 0.2 * warm),
                 column(0.03, 0.11, 0.50), column(0.30, 0.44, 0.72), column(*tile_a) ** 2.2, column(*tile_b) ** 2.2,
                 scalar(g, 0.7, 1.1))


def _filmic(x: torch.Tensor) -> torch.Tensor:
    """A filmic tone curve (Narkowicz's ACES fit) followed by the sRGB-like gamma."""
    x = x.clamp_min(0) * 0.9
    y = (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)
    return y.clamp(0, 1) ** (1 / 2.2)


@register_reference("photo")
def photo(width: int, height: int, seed: int) -> torch.Tensor:
    world = _world(seed)
    ss = 2 if width * height <= 512 * 512 else 1  # supersampling for clean edges
    w, h = width * ss, height * ss
    eye = torch.tensor(EYE)
    forward = normalize(torch.tensor(LOOK_AT) - eye)
    right = normalize(torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward))
    up = torch.linalg.cross(forward, right)
    tan = math.tan(FOV_Y / 2)
    sx = ((torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1) * tan * width / height
    sy = (1 - (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2) * tan
    direction = normalize(forward.view(3, 1, 1) + sx.view(1, 1, -1) * right.view(3, 1, 1)
                          + sy.view(1, -1, 1) * up.view(3, 1, 1)).reshape(3, -1)
    origin = eye.view(3, 1).expand_as(direction)
    t, what = intersect(world, origin, direction)
    colour = shade(world, origin, direction, t, what, pixel=2 * tan / h, bounce=True)
    image = _filmic(colour.view(3, h, w))
    if ss > 1:
        image = F.avg_pool2d(image[None], ss)[0]
    u = (torch.arange(width, dtype=torch.float32) + 0.5) / width - 0.5
    v = (torch.arange(height, dtype=torch.float32) + 0.5) / height - 0.5
    vignette = 1 - 0.35 * (u.view(1, -1) ** 2 + v.view(-1, 1) ** 2)
    grain = 0.01 * torch.randn(1, height, width, generator=rng(seed, "grain"))
    return (image * vignette + grain).clamp(0, 1)
