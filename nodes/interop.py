"""The pack's walks and guidance inside ComfyUI's own sampling nodes (SamplerCustom, SamplerCustomAdvanced).

``WalkSamplerSelect``: any walk as a SAMPLER (use it with any GUIDER and SIGMAS). ``WalkGuider``: a MODEL
target plus a guidance chain as a GUIDER (use it with any SAMPLER). Both need ComfyUI: its classes are imported
when the node runs.
"""
from __future__ import annotations

from ..walk_core import GuidanceChain
from ..walk_core.bridge import walk_sampler_function
from .comfy_guider import make_guider
from .inputs import pick
from .sampler import _options
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET


class WalkSamplerSelect:
    DESCRIPTION = (
        "One of the pack's random walks as a ComfyUI SAMPLER, for SamplerCustomAdvanced / SamplerCustom with any "
        "GUIDER (CFGGuider, DualCFGGuider, Walk Guider, ...) and any SIGMAS. Step noise comes from per-item "
        "generators seeded noise_seed + item (the seed of the noise node). Flow models (SD3, Flux) are walked "
        "through an exact change of variables, so stochastic walks add the right noise on them too.")
    CATEGORY = f"{CATEGORY}/comfy"
    RETURN_TYPES = ("SAMPLER",)
    RETURN_NAMES = ("sampler",)
    OUTPUT_TOOLTIPS = ("The walk as a SAMPLER.",)
    FUNCTION = "select"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": pick("walk", "eta", "s_noise", "churn", "snr", "corrector_steps", "order")}

    def select(self, walk, eta, s_noise, churn, snr, corrector_steps, order):
        import comfy.samplers  # noqa: PLC0415  (only present inside ComfyUI)

        fn = walk_sampler_function(walk, _options(walk, eta, s_noise, churn, snr, corrector_steps, order))
        return (comfy.samplers.KSAMPLER(fn),)


class WalkGuider:
    DESCRIPTION = (
        "A MODEL target (Target Distribution (MODEL)) and a guidance chain as a ComfyUI GUIDER, for "
        "SamplerCustomAdvanced with any SAMPLER (KSamplerSelect's or Walk as SAMPLER). The chain replaces "
        "CFGGuider's cfg: add Guidance Step: CFG for classifier-free guidance. The model's own patches compose: "
        "pre-cfg patches act on the raw predictions, a patched cfg function (RescaleCFG, ...) is used by the cfg "
        "term, post-cfg patches (PAG, ...) act on the chain's result.")
    CATEGORY = f"{CATEGORY}/comfy"
    RETURN_TYPES = ("GUIDER",)
    RETURN_NAMES = ("guider",)
    OUTPUT_TOOLTIPS = ("The guider: the model's prediction under the chain.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "A MODEL target (Target Distribution (MODEL))."}),
            },
            "optional": {
                "guidance": (WALK_GUIDANCE, {"tooltip": (
                    "The guidance chain (Guidance Step nodes); none = the conditional prediction alone (cfg 1).")}),
            },
        }

    def make(self, target, guidance=None):
        return (make_guider(target, guidance or GuidanceChain()),)
