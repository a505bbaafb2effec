"""TargetDistribution family: nodes that make a WALK_TARGET."""
from __future__ import annotations

from ..walk_core.targets.image_mixture import (ImageMixtureSpec, image_mixture_target, parse_labels,
                                               parse_per_component)
from ..walk_core.targets.patterns import PATTERNS
from .types import CATEGORY, WALK_TARGET


class TargetDistributionMixture:
    DESCRIPTION = (
        "An exact target: a Gaussian mixture whose component means are the pictures of an IMAGE batch (or "
        f"{len(PATTERNS)} built-in patterns when none is connected), each with smooth colour/shape variation "
        "and fine per-pixel detail. Its denoiser is exact, so you can see what each walk does to a "
        "distribution whose answer is known. Group components into classes with labels and pick one with "
        "class to sample it, with an exact unconditional branch for CFG."
    )
    CATEGORY = f"{CATEGORY}/targets"
    RETURN_TYPES = ("WALK_TARGET",)
    RETURN_NAMES = ("target",)
    OUTPUT_TOOLTIPS = ("A pixel-space target that takes its size from WalkSampler's width/height.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "detail": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 1.0, "step": 0.005, "tooltip": (
                    "Std of each component's fine per-pixel detail (isotropic part), in [-1, 1] pixel units.")}),
                "variation": ("FLOAT", {"default": 0.15, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip": (
                    "Std of each component's smooth large-scale variation (a rank-4 part made of blurred "
                    "random colour fields); 0 = none.")}),
                "weights": ("STRING", {"default": "", "multiline": False, "tooltip": (
                    "Comma-separated positive weights, one per component (picture), e.g. '1, 2, 4'; "
                    "empty = equal weights.")}),
                "spread_scales": ("STRING", {"default": "", "multiline": False, "tooltip": (
                    "Comma-separated positive factors, one per component, multiplying its detail and "
                    "variation (per-component spread), e.g. '1, 0.5, 2'; empty = all 1.")}),
                "structure_seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": (
                    "Seeds the shape of the smooth variation fields (the target itself, not the walk).")}),
            },
            "optional": {
                # added after the node first landed: optional, so API prompts saved before still validate, and
                # last among the widgets (saved editor workflows list widget values in declared order)
                "labels": ("STRING", {"default": "", "multiline": False, "tooltip": (
                    "Comma-separated class name per component (picture), e.g. 'curved, straight, ...'; "
                    "components sharing a name form one class. Empty = each component is its own class, named "
                    f"after its pattern ({', '.join(PATTERNS)}) or its image index (0, 1, ...).")}),
                "class": ("STRING", {"default": "", "multiline": False, "tooltip": (
                    "The class to sample, like a prompt: one of the class names (see labels). Empty = all "
                    "components, with no conditional branch. A class gives CFG/APG an exact conditional "
                    "(this class) and unconditional (all classes) prediction: GuidanceStep CFG needs one.")}),
                "images": ("IMAGE", {"tooltip": (
                    "Pictures to use as component means (resized to the walk's size); none = built-in patterns.")}),
            },
        }

    # ``class`` is a Python keyword, so it arrives through **inputs (ComfyUI passes inputs by name).
    def build(self, detail, variation, weights, spread_scales, structure_seed, labels="", images=None, **inputs):
        unknown = set(inputs) - {"class"}
        if unknown:
            raise TypeError(f"TargetDistributionMixture.build: unexpected inputs {sorted(unknown)}")
        who = "TargetDistributionMixture: "
        pictures = None if images is None else images[..., :3].permute(0, 3, 1, 2).float()
        count = len(PATTERNS) if pictures is None else pictures.shape[0]
        spec = ImageMixtureSpec(
            images=pictures, weights=parse_per_component(weights, count, who + "weights"),
            detail=detail, variation=variation, structure_seed=structure_seed,
            spread_scales=parse_per_component(spread_scales, count, who + "spread_scales"),
            labels=parse_labels(labels, count, who + "labels"), condition=(inputs.get("class") or "").strip(),
        )
        size = (64, 64) if pictures is None else (pictures.shape[-1], pictures.shape[-2])
        return (image_mixture_target(spec, *size),)
