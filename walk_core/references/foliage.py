"""``foliage``: layers of overlapping leaves, big and shadowed at the back, small and sunlit in front: each leaf
with a midrib, side veins, a fold, its own green (some yellow, a few autumn reds), casting a soft shadow."""
from __future__ import annotations

import math

import torch

from .fields import fbm, gaussian_blur, hsv_to_rgb, lerp, rgb, rng, smoothstep, uniform
from .registry import register_reference
from .splat import gather, jittered_grid, leaf, splat

# per layer: leaves per picture side, chance a leaf is there, value range (darker at the back)
LAYERS = [(5.0, 1.0, (0.28, 0.42)), (8.0, 0.9, (0.42, 0.62)), (13.0, 0.7, (0.58, 0.85)), (21.0, 0.35, (0.72, 1.0))]


def _leaf_colours(g: torch.Generator, n: int, value_range) -> torch.Tensor:
    kind = torch.rand(n, generator=g)
    hue = torch.where(kind < 0.75, uniform(g, n, low=0.2, high=0.33), uniform(g, n, low=0.12, high=0.18))
    hue = torch.where(kind > 0.94, uniform(g, n, low=0.0, high=0.06), hue)  # autumn accents
    sat = uniform(g, n, low=0.5, high=0.85)
    val = uniform(g, n, low=value_range[0], high=value_range[1])
    return hsv_to_rgb(hue, sat, val)


@register_reference("foliage")
def foliage(width: int, height: int, seed: int) -> torch.Tensor:
    scale = math.sqrt(width * height)
    gloom = fbm(rng(seed, "background"), width, height, cells=2, octaves=4)
    canvas = lerp(rgb(0.02, 0.07, 0.03), rgb(0.08, 0.18, 0.07), smoothstep(-1, 1, gloom))
    sun = smoothstep(-0.6, 1.0, fbm(rng(seed, "dapple"), width, height, cells=1.5, octaves=4))
    for k, (per_side, chance, value_range) in enumerate(LAYERS):
        spacing = scale / per_side
        if spacing < 2.0:
            break
        g = rng(seed, f"leaves-{k}")
        grid = jittered_grid(g, width, height, spacing)
        n = grid.count
        present = torch.rand(n, generator=g) < chance
        angle = math.pi / 2 + 0.9 * torch.randn(n, generator=g)  # mostly hanging, some every way
        half_length = spacing * uniform(g, n, low=0.95, high=1.3)
        half_width = half_length * uniform(g, n, low=0.32, high=0.45)
        cov = splat(grid, width, height, angle, half_length, half_width, torch.rand(n, generator=g), present, leaf)
        a, b = cov.a, cov.b
        hw = gather(half_width, cov).clamp_min(0.5)
        half = (1 - a * a).clamp_min(1e-3) * (1 - 0.25 * a)  # the leaf's half width at a, as a fraction
        across = b / half  # -1 .. 1 from edge to edge
        midrib = smoothstep(1.2, 0.0, (b * hw).abs())
        veins = (1 - torch.sin(math.pi * (a * 4.5 + across.abs() * 1.6)).abs()) ** 10 * smoothstep(0.1, 0.4, across.abs())
        fold = 1 + 0.2 * torch.tanh(3 * across) * gather(torch.sign(torch.randn(n, generator=g)), cov)
        rim = 1 - 0.3 * smoothstep(0.75, 1.0, cov.d)
        light = fold * rim * (1 + 0.25 * veins + 0.3 * midrib) * (0.8 + 0.25 * a) * (0.75 + 0.5 * sun)
        colour = gather(_leaf_colours(g, n, value_range), cov) * light
        # the layer's soft shadow on what lies under it
        offset = max(1, round(spacing * 0.15))
        shadow = gaussian_blur(cov.alpha, spacing * 0.15)
        shadow = torch.nn.functional.pad(shadow, (offset, 0, offset, 0))[:height, :width]
        canvas = canvas * (1 - 0.5 * shadow)
        canvas = lerp(canvas, colour, cov.alpha)
    speckle = torch.randn(height, width, generator=rng(seed, "speckle"))
    return (canvas * (1 + 0.03 * speckle)).clamp(0, 1)
