"""GuidanceStepEnergy: energy (gradient) guidance towards a reference picture's content or colours, or a style."""
from __future__ import annotations

from ..walk_core.guidance import GuidanceChain
from ..walk_core.guidance.energy import ENERGIES, MAX_STEPS, MAX_WEIGHT, EnergyTerm
from .guidance import GUIDANCE_INPUT_TOOLTIP, GuidanceStepBase
from .inputs import pick, pick_as
from .layout import image_to_walk
from .types import WALK_GUIDANCE, WALK_STYLE


class GuidanceStepEnergy(GuidanceStepBase):
    DESCRIPTION = (
        "Energy guidance (universal guidance, Bansal et al. 2023, in x0 space): at each step the denoised "
        "estimate takes gradient steps that lower an energy measured against a reference picture -- content "
        "(squared error to the picture, optionally blurred so only its structure counts), colour (per-channel "
        "mean and std) or palette (the whole distribution of its pixel colours), or a style (WALK_STYLE "
        "statistics from StyleEncoder, input 'style'). Costs no extra model evaluations. Pixel targets; chain "
        "several for several energies."
    )
    NODE_ID = "GuidanceStepEnergy"
    TERM = EnergyTerm

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "energy": (ENERGIES.names(), {"default": "content", "tooltip": (
                    "What to match: content = the picture itself (mean squared error, per pixel); colour = its "
                    "per-channel mean and standard deviation (not the layout); palette = its whole distribution of "
                    "pixel colours, how much of each colour (sliced Wasserstein along 11 random colour frames; not the "
                    "layout); style = the 'style' input's feature statistics (the image is then not used).")}),
                "weight": ("FLOAT", {"default": 0.1, "min": 0.0, "max": MAX_WEIGHT, "step": 0.01, "tooltip": (
                    "Fraction of the way to the energy's minimum per gradient step, at any image size: 1 jumps "
                    "onto the reference's content/colours at every step, 0.1-0.3 nudges, 0 = off. palette covers "
                    "less of the way per step (a distribution's shape takes several).")}),
                "steps": ("INT", {"default": 1, "min": 1, "max": MAX_STEPS, "tooltip": (
                    "Gradient steps on the denoised estimate per model evaluation (repeats the step in x0 "
                    "space; no extra model calls). weight w with n steps leaves (1 - w)^n of the distance.")}),
                "content_blur": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 64.0, "step": 0.1, "tooltip": (
                    "content only: Gaussian blur (std in pixels) applied to both the estimate and the picture "
                    "before comparing, so only large-scale structure is matched; 0 = exact pixels.")}),
                **pick("start_percent", "end_percent"),
                **pick_as("schedule", "strength_schedule"),
            },
            "optional": {
                "guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_INPUT_TOOLTIP}),
                "image": ("IMAGE", {"tooltip": (
                    "The reference: the content picture (resized to the walk's size; a batch gives one per "
                    "item, or one for all) or the colour reference (statistics over all its pictures). Needed by "
                    "content, colour and palette; not used by style (optional so a style energy needs no picture).")}),
                "style": (WALK_STYLE, {"tooltip": (
                    "energy style only: the statistics to match (StyleEncoder's output). For style the weight "
                    "is a step size, each step capped at an RMS of weight x 0.1 (walk units).")}),
            },
        }

    def add(self, energy, weight, steps, content_blur, start_percent, end_percent, schedule,
            guidance=None, image=None, style=None):
        takes = ENERGIES[energy].takes
        if takes == "style" and style is None:
            raise ValueError(f"{self.NODE_ID}: energy {energy!r} needs the 'style' input (a WALK_STYLE from "
                             "StyleEncoder); it is not connected")
        if takes == "image" and image is None:
            raise ValueError(f"{self.NODE_ID}: energy {energy!r} needs the 'image' input; it is not connected")
        reference = image_to_walk(image, f"{self.NODE_ID}: image") if takes == "image" else None  # [N, 3, H, W]
        term = EnergyTerm(weight=weight, start_percent=start_percent, end_percent=end_percent, schedule=schedule,
                          energy=energy, reference=reference, steps=steps, content_blur=content_blur,
                          style=style if takes == "style" else None)
        chain = GuidanceChain() if guidance is None else guidance
        return (chain.plus(term),)
