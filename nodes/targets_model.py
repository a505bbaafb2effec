"""TargetDistributionModel: a ComfyUI diffusion MODEL with its prompts (+ an optional VAE) as a WALK_TARGET."""
from __future__ import annotations

from .comfy_model import DECODE_SCALES, model_target
from .types import CATEGORY, WALK_TARGET

WHO = "TargetDistributionModel"


class TargetDistributionModel:
    DESCRIPTION = (
        "A ComfyUI diffusion model (any checkpoint: SD1.5, SDXL, SD3, Flux, ...) with its positive and negative "
        "prompts as a target in the model's latent space. Its noise range and convention (EPS, V-prediction, EDM, "
        "flow) come from the model itself, so every walk and guidance term works on it: add Guidance Step: CFG "
        "(the prompts are its branches) and walk it with Walk Sampler, or turn it into a GUIDER with Walk Guider. "
        "Connect a VAE to get pictures out of Walk Sampler and to let energy/style guidance measure pixels.")
    CATEGORY = f"{CATEGORY}/targets"
    RETURN_TYPES = (WALK_TARGET,)
    RETURN_NAMES = ("target",)
    OUTPUT_TOOLTIPS = ("A latent-space target that takes its size from WalkSampler's width/height (or the init "
                       "latent).",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The diffusion model (Load Checkpoint's MODEL, patched or not)."}),
                "positive": ("CONDITIONING", {"tooltip": (
                    "What to walk towards: the conditional branch (CLIP Text Encode).")}),
                "negative": ("CONDITIONING", {"tooltip": (
                    "The unconditional branch that CFG/APG extrapolate away from (an empty prompt or what to "
                    "avoid). Only evaluated where a guidance term needs it.")}),
            },
            "optional": {
                "vae": ("VAE", {"tooltip": (
                    "Optional: decodes WalkSampler's result to pictures, and lets energy and style guidance "
                    "measure the decoded x-hat-0 (their gradient flows back through the decoder).")}),
                "decode_scale": (list(DECODE_SCALES), {"default": "1", "tooltip": (
                    "Energy and style guidance only: decode x-hat-0 at this fraction of the size (1/2 or 1/4 of "
                    "the latent, resized before the VAE) to save memory and time; the energy then measures the "
                    "smaller picture. WalkSampler's output is always decoded at full size.")}),
            },
        }

    def make(self, model, positive, negative, vae=None, decode_scale="1"):
        if decode_scale not in DECODE_SCALES:
            raise ValueError(f"{WHO}: decode_scale={decode_scale!r}; expected one of {', '.join(DECODE_SCALES)}")
        num, _, den = decode_scale.partition("/")
        scale = float(num) / float(den or 1)
        return (model_target(model, positive, negative, vae=vae, decode_scale=scale),)
