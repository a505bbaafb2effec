"""CFG++ (Chung et al. 2024): classifier-free guidance whose walk re-noises with the unconditional noise.

The one term that needs the walk's cooperation: the chain gives walks registered with ``renoise=True`` a second
estimate beside the guided one (``GuidanceTerm.renoise``; walks.base.evaluate), and every other walk refuses the
chain (walk_core.sample.check_renoise). On a MODEL target inside ComfyUI's sampling the WalkGuider keeps the
estimate of its last prediction and the pack's walks read it through walk_core.bridge.sampler; any other SAMPLER
is refused (nodes/comfy_guider.check_renoise_sampler), as are flow models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, needs_branch, register_term


@register_term
@dataclass(frozen=True)
class CFGPlusPlus(GuidanceTerm):
    """CFG++ (Chung, Kim, Park, Nam & Ye 2024, "CFG++: Manifold-constrained Classifier Free Guidance for Diffusion
    Models", arXiv 2406.08070):

        D = D_u + lambda (D_c - D_u)                 (the guided estimate, lambda = ``weight`` in [0, 1] in the paper)
        x' = D + (sigma'/sigma) (x - D_u)            (the step re-noises with the *unconditional* noise)

    where CFG's DDIM/Euler step re-noises with the guided noise, x' = D + (sigma'/sigma) (x - D). D_c is the running
    estimate. The walk makes the second line: walks with ``renoise`` (euler, euler_ancestral, adams, er_sde) start
    their step from x + (D - D_u), which turns every step of the form x' = D + c (x - D) into the paper's; other
    walks refuse the chain (a second-order or Langevin step has no single re-noising direction to swap).

    On a ComfyUI MODEL the pack's euler equals ComfyUI's euler_cfg_pp sampler (tests/test_comfyui_integration.py).

    Per step CFG++ equals CFG with scale lambda / (1 - sigma'/sigma): the guidance grows with the number of steps
    (about lambda * steps / log(sigma_max / sigma_min) at fine steps), so lambda stays small -- the paper's
    0.2-0.8 at 50 steps against CFG 5-9. lambda = 0 is the unconditional walk; lambda = 1 is *not* the
    conditional walk (it still moves x by D_c - D_u each step).
    """

    kind: ClassVar[str] = "cfg_pp"
    uses_unconditional: ClassVar[bool] = True
    renoises: ClassVar[bool] = True
    weight: float = 0.6

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.weight) and self.weight >= 0.0):
            raise invalid(self, "weight", self.weight, "a guidance scale lambda >= 0 (the paper's range is 0..1)")

    def check(self, target) -> None:
        needs_branch(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        uncond = ctx.unconditional
        return uncond + self.weight * (denoised - uncond)

    def renoise(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        return ctx.unconditional
