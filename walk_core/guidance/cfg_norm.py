"""CFGNorm: the guided estimate's length capped, position by position, at the conditional prediction's.

ComfyUI's core ``CFGNorm`` node (comfy_extras/nodes_cfg.py, "experimental"; no paper is named there) installs a
post-cfg function that rescales the finished estimate: at every position (pixel or latent cell) the vector of
channels of the guided estimate D is shortened to at most the length of the conditional prediction's, and the
whole is multiplied by a strength s:

    r = min(1, ||D_c||_ch / ||D||_ch)          (per item and position; ||.||_ch the Euclidean norm over dim 1)
    D <- s r D                                   (s = ``weight``, the node's ``strength``)

It keeps the direction of the guided estimate and removes only the excess length that a high cfg scale adds
(over-saturated, "burnt" colours), a per-position cousin of CFG rescale. At s = 1 it never lengthens anything,
so on the conditional prediction itself (no cfg before it) it is the identity; s < 1 shrinks every estimate
towards 0 (darker, lower contrast in latent space). It belongs after cfg in the chain: ComfyUI runs it after
its cfg, on the cfg result. ComfyUI adds 1e-8 to the denominator; here a zero estimate is left as it is (r = 1
where ||D|| = 0), which differs from ComfyUI's only where ||D|| is below about 1e-8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, register_term

CHANNELS = 1  # the dimension whose norm is taken (channels of [B, C, ...]; the whole item of [B, N])


@register_term
@dataclass(frozen=True)
class CFGNorm(GuidanceTerm):
    """CFGNorm (ComfyUI's core node): caps the estimate's length at each position at the conditional prediction's,
    times ``weight`` (the strength); see the module docstring."""

    kind: ClassVar[str] = "cfg_norm"
    weight: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.weight < 0.0:
            raise invalid(self, "weight", self.weight, "a strength >= 0 (1 = only cap the length)")

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        cond = torch.linalg.vector_norm(ctx.conditional, dim=CHANNELS, keepdim=True)
        now = torch.linalg.vector_norm(denoised, dim=CHANNELS, keepdim=True)
        ratio = torch.where(now > 0, cond / now.clamp_min(torch.finfo(now.dtype).tiny), torch.ones_like(now))
        return denoised * ratio.clamp(0.0, 1.0) * self.weight
