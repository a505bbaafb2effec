"""Paint a picture over with brush strokes, coarse to fine (after Hertzmann's painterly rendering, 1998).

Each pass lays a jittered grid of short strokes; a stroke takes its colour from the (blurred) picture at its
centre, varied a little, and runs along the picture's edges where they are clear (structure tensor) or the
scene's default direction elsewhere. Finer passes go where the picture has detail. Every stroke has
bristle grooves, a dry-brush end and a little paint relief, lit from the upper left.
"""
from __future__ import annotations

import math

import torch

from .fields import gaussian_blur, lerp, luminance, rng, uniform
from .splat import gather, jittered_grid, splat


def _stroke_profile(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A flat brush mark: square-ish ends, straight sides."""
    return a.abs() ** 3 + b * b


def edge_angles(image: torch.Tensor, sigma: float):
    """Direction along the edges (radians) and its coherence in [0, 1], both [H, W]."""
    lum = gaussian_blur(luminance(image), max(0.5, sigma * 0.5))
    gx = torch.zeros_like(lum)
    gy = torch.zeros_like(lum)
    gx[:, 1:-1] = (lum[:, 2:] - lum[:, :-2]) / 2
    gy[1:-1, :] = (lum[2:, :] - lum[:-2, :]) / 2
    jxx = gaussian_blur(gx * gx, sigma)
    jxy = gaussian_blur(gx * gy, sigma)
    jyy = gaussian_blur(gy * gy, sigma)
    along = 0.5 * torch.atan2(2 * jxy, jxx - jyy) + math.pi / 2
    coherence = ((jxx - jyy) ** 2 + 4 * jxy ** 2).sqrt() / (jxx + jyy + 1e-8)
    strength = (jxx + jyy).sqrt()
    return along, coherence * (strength / (strength + 0.004))


def _blend_angles(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Blend two undirected angles (mod pi) by weight ``t`` of ``b``."""
    c = lerp(torch.cos(2 * a), torch.cos(2 * b), t)
    s = lerp(torch.sin(2 * a), torch.sin(2 * b), t)
    return 0.5 * torch.atan2(s, c)


def paint_over(image: torch.Tensor, default_angle: torch.Tensor, firmness: torch.Tensor, seed: int,
               coarse: float = 13.0, passes: int = 5) -> torch.Tensor:
    """``image`` [3, H, W] repainted with strokes; ``coarse`` strokes per picture side in the first pass,
    twice as many (finer) in each next one; passes whose strokes would be under 2 px are left out."""
    _, height, width = image.shape
    scale = math.sqrt(width * height)
    canvas = gaussian_blur(image, scale / 60)  # the underpainting
    relief = torch.zeros(height, width)
    along, coherence = edge_angles(image, max(1.0, scale / 70))
    follow = (coherence * (1 - firmness)).clamp(0, 1)
    angle_field = _blend_angles(default_angle, along, follow)
    for k in range(passes):
        spacing = scale / (coarse * 1.85 ** k)
        if spacing < 2.0:
            break
        g = rng(seed, f"strokes-{k}")
        grid = jittered_grid(g, width, height, spacing)
        n = grid.count
        px = grid.cx.long().clamp(0, width - 1)
        py = grid.cy.long().clamp(0, height - 1)
        source = gaussian_blur(image, spacing * 0.3)
        colour = source[:, py, px]
        if k == 0:
            present = torch.ones(n, dtype=torch.bool)
        else:  # where the painting so far misses the picture at this scale, plus some strokes for texture
            error = gaussian_blur((canvas - source).abs().sum(0), spacing * 0.5)[py, px]
            present = torch.rand(n, generator=g) < (0.25 / k + (error - 0.02) * 16)
        angle = angle_field[py, px] + 0.18 * torch.randn(n, generator=g)
        half_length = spacing * uniform(g, n, low=0.95, high=1.35)
        half_width = spacing * uniform(g, n, low=0.34, high=0.5)
        cov = splat(grid, width, height, angle, half_length, half_width, torch.rand(n, generator=g), present,
                    _stroke_profile)
        # per-stroke colour variation: value, a little hue, and paint temperature
        value = 1 + 0.05 * torch.randn(1, n, generator=g)
        tint = 0.02 * torch.randn(3, n, generator=g)
        colour = (colour * value + tint).clamp(0, 1)
        grooves = uniform(g, n, low=2.5, high=5.0)
        phase = uniform(g, n, high=2 * math.pi)
        b, a = cov.b, cov.a
        bristle = torch.sin(b * gather(grooves, cov) * math.pi + gather(phase, cov) + 0.9 * a)
        dry = ((1 - a.abs() ** 2) * 3.0 + 0.8 * bristle - 0.2).clamp(0, 1)  # broken, scratchy ends
        alpha = cov.alpha * dry
        paint = gather(colour, cov) * (1 + 0.05 * bristle - 0.04 * a)
        canvas = lerp(canvas, paint, alpha)
        relief = lerp(relief, (1 - cov.d).clamp(0, 1).sqrt() + 0.35 * bristle, alpha)
    # paint relief lit from the upper left, and a faint canvas weave
    lit = torch.zeros_like(relief)
    lit[1:, 1:] = relief[1:, 1:] - relief[:-1, :-1]
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1)
    xs = torch.arange(width, dtype=torch.float32).view(1, -1)
    weave = torch.sin(xs * (math.pi / 1.5)) * torch.sin(ys * (math.pi / 1.5))
    canvas = canvas * (1 - 0.06 * lit + 0.015 * weave)
    # varnish: a little more contrast and saturation, as oil colours have
    grey = luminance(canvas).unsqueeze(0)
    canvas = grey + (canvas - grey) * 1.2
    canvas = 0.5 + (canvas - 0.5) * 1.12
    return canvas.clamp(0, 1)
