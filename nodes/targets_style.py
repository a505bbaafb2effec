"""TargetDistributionStyle: a WALK_TARGET whose density is an energy of style statistics (and a content picture)."""
from __future__ import annotations

from ..walk_core.targets.style_energy import MAX_GRADIENT_STEPS, StyleEnergySpec, style_energy_target
from .layout import image_to_walk
from .types import CATEGORY, WALK_STYLE, WALK_TARGET

DEFAULT_SIZE = 64  # the walk's size comes from WalkSampler's width/height (or its init); this is a placeholder
WHO = "TargetDistributionStyle"


class TargetDistributionStyle:
    DESCRIPTION = (
        "A target defined by an energy: p(x) proportional to exp(-n E(x) / temperature) times a Gaussian around "
        "mid-grey (or the content image), where E is the style distance to a WALK_STYLE (StyleEncoder) plus "
        "spectrum_weight times the distance of its power spectrum to the references' (which keeps the feature "
        "statistics from being met by per-pixel noise) plus content_weight times the blurred squared error to the "
        "content image -- a FRAME / Julesz-ensemble texture model. Its denoiser solves the noisy-picture MAP "
        "problem with a fixed number of gradient steps (gradient_steps per evaluation, no line search), so the cost "
        "of a walk is known in advance: walk evaluations x gradient_steps style gradients. Recommended walk: "
        "langevin with corrector_steps 2 and about 30 steps (euler_ancestral and pc work too). The random "
        "encoder's statistics carry colours and fine texture, not shapes: expect coloured clouds, not the "
        "reference's objects (for shapes use the patch target). StyleEncoder's pretrained vgg19_adain encoder gives "
        "the reference's pieces: cells with lead lines for stained glass, bricks with mortar. Photo style transfer: "
        "the photo as content and as WalkSampler's init (denoise 0.6), content_weight about 15, content_blur 0, "
        "temperature 0.003, langevin with 15 steps, corrector_steps 1 and s_noise 0. Takes its size from "
        "WalkSampler (at least 16 px per side).")
    CATEGORY = f"{CATEGORY}/targets"
    RETURN_TYPES = (WALK_TARGET,)
    RETURN_NAMES = ("target",)
    OUTPUT_TOOLTIPS = ("A pixel-space target that takes its size from WalkSampler's width/height.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "style": (WALK_STYLE, {"tooltip": (
                    "The style statistics to match (StyleEncoder); the walk's pictures are drawn towards them.")}),
                "temperature": ("FLOAT", {"default": 0.01, "min": 0.001, "max": 10.0, "step": 0.001, "tooltip": (
                    "How strictly the energy is obeyed, per pixel value: lower = closer to the style (and content), "
                    "higher = closer to the Gaussian prior (grey noise). 0.01 suits the random encoder, 0.003 "
                    "vgg19_adain.")}),
                "prior_std": ("FLOAT", {"default": 0.25, "min": 0.01, "max": 2.0, "step": 0.01, "tooltip": (
                    "Std of the Gaussian prior around mid-grey (or the content image), in [-1, 1] pixel units. What "
                    "the style statistics do not constrain varies this much: lower = cleaner but flatter pictures, "
                    "higher = more contrast and more per-pixel noise.")}),
                "gradient_steps": ("INT", {"default": 8, "min": 1, "max": MAX_GRADIENT_STEPS, "tooltip": (
                    "Style-gradient evaluations per denoiser call (a fixed budget: each call costs exactly this "
                    "many). More = each evaluation gets closer to the energy's minimum, at proportional cost.")}),
                "content_weight": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1000.0, "step": 0.1, "tooltip": (
                    "With a content image: weight of its blurred squared error in the energy (0 = the content only "
                    "centres the prior). Ignored without a content image.")}),
                "content_blur": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 64.0, "step": 0.1, "tooltip": (
                    "Gaussian blur (std in pixels of the walk's size) applied to both the content and the picture "
                    "before comparing them, so that only the content's structure is kept; 0 = none.")}),
                "spectrum_weight": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1, "tooltip": (
                    "Weight of the power-spectrum term: how the picture's variance spreads over spatial frequencies "
                    "is held to the references' (mean squared log power in 24 frequency rings). Without it (0) the "
                    "feature statistics are met as well by per-pixel colour noise as by the reference's edges, and "
                    "the pictures come out noisy. Style codes saved before the pack recorded a spectrum ignore it.")}),
            },
            "optional": {
                "content": ("IMAGE", {"tooltip": (
                    "One content picture (resized to the walk's size): the centre of the prior and, with "
                    "content_weight, a pull on the structure. None = a texture from the style alone.")}),
            },
        }

    def build(self, style, temperature, prior_std, gradient_steps, content_weight, content_blur,
              spectrum_weight=1.0, content=None):
        picture = None
        if content is not None:
            picture = image_to_walk(content, f"{WHO}: content")
            if picture.shape[0] != 1:
                raise ValueError(f"{WHO}: content has {picture.shape[0]} pictures; expected one (pick one with an "
                                 "image-batch node)")
        try:
            spec = StyleEnergySpec(style=style, content=picture, content_weight=float(content_weight),
                                   content_blur=float(content_blur), temperature=float(temperature),
                                   prior_std=float(prior_std), gradient_steps=gradient_steps,
                                   spectrum_weight=float(spectrum_weight))
        except ValueError as error:  # name the node, not the engine function
            raise ValueError(f"{WHO}: {str(error).split(': ', 1)[-1]}") from None
        return (style_energy_target(spec, DEFAULT_SIZE, DEFAULT_SIZE),)
