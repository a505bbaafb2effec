"""Self-attention guidance (Hong, Lee, Jang & Kim 2023, "Improving Sample Quality of Diffusion Models Using
Self-Attention Guidance").

The unconditional prediction's self-attention (one layer, the UNet's middle block by default) says which
positions the model attends to most; those regions of the unconditional estimate are blurred, the blurred
estimate is re-noised with the model's own noise estimate and denoised again, and the walk is guided away from
what the model makes of the blurred picture:

    x0_u, a   = D_u(x), the attention each position receives (summed over queries, mean over heads)  [B, N]
    mask      = a > 1 on the layer's grid, upsampled (nearest) to the latent        (1 = more than average)
    degraded  = mask * blur(x0_u) + (1 - mask) * x0_u          (Gaussian blur, 9 x 9, std ``blur_sigma``;
                                                                 smaller on latents of 4 or fewer cells a side)
    D_sag     = D_u(degraded + (x - x0_u))
    D        <- D + w (degraded - D_sag)                                                   (w = ``weight``)

ComfyUI's SelfAttentionGuidance node computes the same (scale 0.5, blur sigma 2; it skips latents of 4 or fewer
cells a side, where its 9-tap blur cannot reflect); it records the map during its ordinary unconditional pass,
this term in a separate one (one more evaluation per step while active).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Tuple

import torch
import torch.nn.functional as F

from .chain import GuidanceContext, GuidanceTerm
from .perturbed import Perturbation, needs_insides, parse_layers
from .terms import invalid, register_term

KERNEL = 9  # the paper's blur kernel (pixels of the latent)
THRESHOLD = 1.0  # a position receiving more than the average attention (each query's weights sum to 1)


def gaussian_blur_reflect(x: torch.Tensor, sigma: float, size: int = KERNEL) -> torch.Tensor:
    """x [B, C, h, w] blurred by a normalised ``size`` x ``size`` Gaussian of std ``sigma`` (separable), edges
    reflected; the kernel shrinks to 2 min(h, w) - 1 taps where reflecting needs it."""
    size = min(size, 2 * min(x.shape[-2:]) - 1)
    half = (size - 1) / 2
    t = torch.linspace(-half, half, size, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()  # [size]
    c = x.shape[1]
    pad = size // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, kernel.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def token_grid(tokens: int, height: int, width: int) -> Tuple[int, int]:
    """(rows, cols) with rows * cols = ``tokens`` closest in aspect to ``height`` x ``width`` (a layer's grid)."""
    want = math.log(height / width)
    rows = [r for r in range(1, tokens + 1) if tokens % r == 0]
    best = min(rows, key=lambda r: abs(math.log(r / (tokens // r)) - want))
    return best, tokens // best


def degrade(x0: torch.Tensor, received: torch.Tensor, blur_sigma: float) -> torch.Tensor:
    """x0 [B, C, h, w] blurred where the attention ``received`` [B, N] is above average."""
    b, _, h, w = x0.shape
    rows, cols = token_grid(received.shape[1], h, w)
    mask = (received > THRESHOLD).to(x0.dtype).reshape(b, 1, rows, cols)
    mask = F.interpolate(mask, size=(h, w), mode="nearest")  # [B, 1, h, w]
    return mask * gaussian_blur_reflect(x0, blur_sigma) + (1 - mask) * x0


@register_term
@dataclass(frozen=True)
class SAG(GuidanceTerm):
    """Self-attention guidance (Hong et al. 2023): blurs the regions the model attends to in the unconditional
    estimate and guides away from the model's answer to that blurred picture; see the module docstring."""

    kind: ClassVar[str] = "sag"
    weight: float = 0.5
    blur_sigma: float = 2.0
    layers: str = "middle:0"

    def __post_init__(self):
        super().__post_init__()
        if len(parse_layers(self, self.layers)) != 1:
            raise invalid(self, "layers", self.layers, "one layer (the attention map is read from one layer)")
        if not (math.isfinite(self.blur_sigma) and self.blur_sigma > 0.0):
            raise invalid(self, "blur_sigma", self.blur_sigma, "a finite value > 0 (latent cells)")

    def check(self, target) -> None:
        needs_insides(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        if self.weight == 0.0:
            return denoised
        layers = parse_layers(self, self.layers)
        record = Perturbation("attention_map", layers, branch="unconditional", term=self.kind)
        x0_u, received = ctx.target.perturbed(ctx.x, ctx.sigma, record, **ctx.extra)
        degraded = degrade(x0_u, received.to(x0_u), self.blur_sigma)
        plain = Perturbation("plain", branch="unconditional", term=self.kind)
        answer = ctx.target.perturbed(degraded + (ctx.x - x0_u), ctx.sigma, plain, **ctx.extra)
        return denoised + self.weight * (degraded - answer)
