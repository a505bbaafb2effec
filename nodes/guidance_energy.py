"""GuidanceStepEnergy: energy (gradient) guidance towards a reference picture's content or colours."""
from __future__ import annotations

from ..walk_core.guidance import GuidanceChain
from ..walk_core.guidance.energy import ENERGIES, MAX_STEPS, MAX_WEIGHT, EnergyTerm
from .guidance import GUIDANCE_INPUT_TOOLTIP, GuidanceStepBase
from .inputs import pick, pick_as
from .layout import image_to_walk
from .types import WALK_GUIDANCE

IMAGE_ENERGIES = [name for name, energy in ENERGIES.items() if energy.takes == "image"]


class GuidanceStepEnergy(GuidanceStepBase):
    DESCRIPTION = (
        "Energy guidance (universal guidance, Bansal et al. 2023, in x0 space): at each step the denoised "
        "estimate takes gradient steps that lower an energy measured against a reference picture -- content "
        "(squared error to the picture, optionally blurred so only its structure counts) or colour (per-channel "
        "mean and std). Costs no extra model evaluations. Pixel targets; chain several for several energies."
    )
    NODE_ID = "GuidanceStepEnergy"
    TERM = EnergyTerm

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "energy": (IMAGE_ENERGIES, {"default": "content", "tooltip": (
                    "What to match: content = the picture itself (mean squared error, per pixel); colour = its "
                    "per-channel mean and standard deviation (the palette, not the layout).")}),
                "image": ("IMAGE", {"tooltip": (
                    "The reference: the content picture (resized to the walk's size; a batch gives one per "
                    "item, or one for all) or the colour reference (statistics over all its pictures).")}),
                "weight": ("FLOAT", {"default": 0.1, "min": 0.0, "max": MAX_WEIGHT, "step": 0.01, "tooltip": (
                    "Fraction of the way to the energy's minimum per gradient step, at any image size: 1 jumps "
                    "onto the reference's content/colours at every step, 0.1-0.3 nudges, 0 = off.")}),
                "steps": ("INT", {"default": 1, "min": 1, "max": MAX_STEPS, "tooltip": (
                    "Gradient steps on the denoised estimate per model evaluation (repeats the step in x0 "
                    "space; no extra model calls). weight w with n steps leaves (1 - w)^n of the distance.")}),
                "content_blur": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 64.0, "step": 0.1, "tooltip": (
                    "content only: Gaussian blur (std in pixels) applied to both the estimate and the picture "
                    "before comparing, so only large-scale structure is matched; 0 = exact pixels.")}),
                **pick("start_percent", "end_percent"),
                **pick_as("schedule", "strength_schedule"),
            },
            "optional": {"guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_INPUT_TOOLTIP})},
        }

    def add(self, energy, image, weight, steps, content_blur, start_percent, end_percent, schedule,
            guidance=None):
        reference = image_to_walk(image, f"{self.NODE_ID}: image")  # [N, 3, H, W] in [-1, 1]
        term = EnergyTerm(weight=weight, start_percent=start_percent, end_percent=end_percent, schedule=schedule,
                          energy=energy, reference=reference, steps=steps, content_blur=content_blur)
        chain = GuidanceChain() if guidance is None else guidance
        return (chain.plus(term),)
