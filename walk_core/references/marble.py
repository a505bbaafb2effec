"""``marble``: polished veined stone: sine veins bent by fractal turbulence (Perlin's marble, 1985), a
cloudy ground, a net of fine secondary veins, crystal speckle and a soft sheen. The seed picks the stone."""
from __future__ import annotations

import math

import torch

from .fields import coords, fbm, lerp, rgb, rng, scalar, smoothstep, uniform
from .registry import register_reference

# (ground light, ground dark, main vein, fine vein)
STONES = [
    ((0.96, 0.93, 0.87), (0.80, 0.76, 0.70), (0.48, 0.36, 0.20), (0.50, 0.47, 0.46)),  # calacatta gold
    ((0.16, 0.38, 0.30), (0.05, 0.16, 0.12), (0.86, 0.92, 0.86), (0.45, 0.62, 0.52)),  # verde alpi
    ((0.62, 0.22, 0.16), (0.36, 0.10, 0.08), (0.94, 0.88, 0.80), (0.78, 0.50, 0.40)),  # rosso levanto
    ((0.15, 0.12, 0.17), (0.05, 0.04, 0.07), (0.92, 0.86, 0.72), (0.60, 0.46, 0.22)),  # nero marquina, gold
    ((0.30, 0.52, 0.78), (0.10, 0.22, 0.46), (0.92, 0.94, 0.96), (0.55, 0.70, 0.86)),  # azul macaubas
]


def _veins(u, v, aspect, turbulence, angle, frequency, warp, sharpness):
    """1 on a vein, falling to 0 between them."""
    x = u * aspect * math.cos(angle) + v * math.sin(angle)
    s = torch.sin(2 * math.pi * frequency * x + warp * turbulence)
    return (1 - s.abs()) ** sharpness


@register_reference("marble")
def marble(width: int, height: int, seed: int) -> torch.Tensor:
    light, dark, vein, fine = (rgb(*c) for c in STONES[int(seed) % len(STONES)])
    u, v = coords(width, height)
    aspect = width / height
    g = rng(seed, "marble")
    angle = scalar(g, -1.2, 1.2)
    turbulence = fbm(rng(seed, "turbulence"), width, height, cells=1.5, octaves=8, gain=0.55)
    detail = fbm(rng(seed, "detail"), width, height, cells=6, octaves=5, gain=0.6)
    clouds = fbm(rng(seed, "clouds"), width, height, cells=2, octaves=6)
    stone = lerp(light, dark, smoothstep(-1.2, 1.4, clouds + 0.3 * detail))
    # main veins (a soft halo round a sharp core) fading in and out along their length, then two families of
    # finer veins on the zero lines of fractal noise: a branching net, as in real stone
    fade = smoothstep(-0.8, 0.6, fbm(rng(seed, "fade"), width, height, cells=1.5, octaves=3))
    closeness = _veins(u, v, aspect, turbulence + 0.1 * detail, angle, scalar(g, 0.8, 1.5), 2.2, 1.0)
    main = (0.45 * closeness ** 4 + 0.7 * closeness ** 30) * (0.3 + 0.7 * fade)
    ridges = fbm(rng(seed, "ridges"), width, height, cells=2.0, octaves=7, gain=0.55)
    cross = (1 - ridges.abs().clamp(0, 1)) ** 36 * smoothstep(-0.2, 0.8, fbm(rng(seed, "cross-mask"), width,
                                                                             height, cells=2, octaves=3))
    web = (1 - detail.abs().clamp(0, 1)) ** 70 * smoothstep(0.1, 1.0, clouds)
    stone = lerp(stone, vein, (0.95 * main).clamp(0, 1))
    stone = lerp(stone, lerp(vein, fine, 0.4), (0.8 * cross).clamp(0, 1))
    stone = lerp(stone, fine, (0.6 * web).clamp(0, 1))
    # crystal speckle and a polished sheen
    speckle = torch.randn(height, width, generator=rng(seed, "speckle"))
    stone = stone * (1 + 0.025 * speckle)
    sheen = torch.exp(-((u * aspect - scalar(g, 0.2, 0.8) * aspect) ** 2 + (v - scalar(g, 0.2, 0.5)) ** 2) / 0.18)
    return (stone + 0.08 * sheen * uniform(g, 1, low=0.6, high=1.0)).clamp(0, 1)
