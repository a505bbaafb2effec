"""TargetDistributionPatches: a WALK_TARGET made from reference pictures' patches (no weights, no training)."""
from __future__ import annotations

from ..walk_core.guidance.energy import MAX_WEIGHT
from ..walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, PatchSpec, patch_target
from ..walk_core.targets.patch.target import LAYOUT_WIDTH, MAX_REFERENCE_PIXELS, MODES
from .layout import image_to_walk
from .style import parse_weights, weights_problem
from .types import CATEGORY, WALK_TARGET

WHO = "TargetDistributionPatches"


class TargetDistributionPatches:
    DESCRIPTION = (
        "A target made directly from reference pictures, with no weights: its denoiser is the optimal one for "
        "the distribution of the references' local patches (the equivariant local score machine of Kamb & "
        "Ganguli 2024), computed coarse to fine over an image pyramid with the patch scale tied to sigma. A walk "
        "on it paints novel pictures out of the references' pieces: textures, paintings, anything with local "
        "structure. Connect a content image (and the same image to WalkSampler's init_image, denoise about 0.7) "
        "for photo style transfer: the patches then also follow the content's light and dark structure. "
        "Holds the picture to the references' colours (palette). Takes its size from WalkSampler; patches keep the "
        f"references' pixel scale. Recommended walk: {WALK}, karras, {STEPS} steps, s_noise {WALK_S_NOISE:g}.")
    CATEGORY = f"{CATEGORY}/targets"
    RETURN_TYPES = (WALK_TARGET,)
    RETURN_NAMES = ("target",)
    OUTPUT_TOOLTIPS = ("A pixel-space target that takes its size from WalkSampler's width/height.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": (
                    "The reference pictures (one or several, e.g. from Reference Image or Load Image). Grayscale is "
                    "used as grey RGB; an alpha channel is ignored. References above max_reference_pixels are "
                    "scaled down first (the bank bound). Each must be at least patch_size and fine_patch_size px per "
                    "side and have finite pixels.")}),
                "patch_size": ("INT", {"default": 7, "min": 3, "max": 15, "step": 2, "tooltip": (
                    "Patch side in pixels at the coarse pyramid levels (the fourth finest and up, and always the "
                    "coarsest; odd). At level l a patch covers patch_size x 2^l output pixels, so the patch scale "
                    "grows with sigma. Smaller = finer mosaics, larger = more of each reference's arrangement kept.")}),
                "level_sigma": ("FLOAT", {"default": PatchSpec.level_sigma, "min": 0.05, "max": 2.0, "step": 0.01,
                                         "tooltip": (
                    "When the walk moves to a finer pyramid level: a level is used while its own noise std is at "
                    "most this. Lower = coarse levels decide for longer (broader, calmer layouts; 0.15-0.3 keeps "
                    "more of the references' structure, e.g. brick courses, but copies more of them); higher = fine "
                    "levels act earlier (busier detail, more novel, slower). Posterior mode only.")}),
                "tileable": ("BOOLEAN", {"default": False, "tooltip": (
                    "Periodic output: its left/right and top/bottom edges join seamlessly, for tiles and textures.")}),
                "weights": ("STRING", {"default": "", "multiline": False, "tooltip": (
                    "Comma-separated positive weights, one per reference picture (their share of the patch prior); "
                    "empty = equal.")}),
            },
            "optional": {
                "content": ("IMAGE", {"tooltip": (
                    "Optional content picture for photo style transfer: patch choices also match its luminance "
                    "structure (Image Analogies). Resized to the output size. Feed it to WalkSampler's init_image "
                    "too, with denoise about 0.7.")}),
                "content_weight": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 1000.0, "step": 0.1, "tooltip": (
                    "How strongly patch choices follow the content's luminance (only with a content picture); "
                    "0 = ignore it. Higher keeps more of the photo's structure, lower more of the references' look.")}),
                "sharpness": ("FLOAT", {"default": 1.0, "min": 0.05, "max": 4.0, "step": 0.05, "tooltip": (
                    "Multiplies the patch log-likelihood: 1 = the exact Gaussian posterior; lower blends more "
                    "patches (softer), higher commits sooner. Posterior mode only.")}),
                "candidates": ("INT", {"default": 8, "min": 1, "max": 32, "tooltip": (
                    "On fine levels (too big for a dense posterior): how many best matches each coarser pixel hands "
                    "down; each is tried at 3x3 nearby positions. More = closer to the exact posterior, slower. "
                    "Posterior mode only.")}),
                "max_reference_pixels": ("INT", {"default": MAX_REFERENCE_PIXELS, "min": 1024, "max": 4096 * 4096,
                                                 "step": 1024, "tooltip": (
                    "The bank bound: references with more pixels than this are scaled down (keeping their aspect) "
                    "before their patches are taken; the log says so. Bounds memory and time.")}),
                "balance": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 4.0, "step": 0.1, "tooltip": (
                    "Keeps the picture's mix of patches close to the references' own: on the coarse levels, "
                    "patches that many pixels pile onto are discounted by how over-used they are. 1 = one "
                    "balancing step (truer colours and texture statistics); 0 = off (the plain posterior, "
                    "duller and blotchier); higher balances harder. Posterior mode only.")}),
                "fine_patch_size": ("INT", {"default": PatchSpec.fine_patch_size, "min": 3, "max": 15, "step": 2,
                                            "tooltip": (
                    "Patch side in pixels at the three finest pyramid levels, never the coarsest (odd; they cover up "
                    "to 4 x this in output pixels). Smaller than patch_size recombines the references in smaller "
                    "pieces where detail is set (more novel pictures) while the coarse levels keep their "
                    "arrangement; equal to patch_size = one size everywhere. Posterior mode only.")}),
                "palette": ("FLOAT", {"default": PatchSpec.palette, "min": 0.0, "max": MAX_WEIGHT, "step": 0.05,
                                     "tooltip": (
                    "Holds the picture to the references' colours: each estimate takes one step of this weight "
                    "towards the references' whole distribution of pixel colours (sliced Wasserstein, the "
                    "'palette' energy of GuidanceStepEnergy) while sigma >= palette_sigma. The patches alone let "
                    "colours drift towards the dominant dull ones; 1 = the default, 0 = off. Posterior mode only.")}),
                "palette_sigma": ("FLOAT", {"default": PatchSpec.palette_sigma, "min": 0.0, "max": 80.0,
                                           "step": 0.01, "tooltip": (
                    "The palette hold acts while sigma is at least this (0.05: about the first 70 % of a walk); "
                    "below it the fine detail is left to the patches alone. 0 = to the end. Posterior mode only.")}),
                "context": ("FLOAT", {"default": PatchSpec.context, "min": 0.0, "max": 4.0, "step": 0.05,
                                     "tooltip": (
                    "Keeps the layout the coarse levels set: each patch is also chosen for the surroundings it came "
                    "from, one pyramid level up (Wei & Levoy's multiresolution neighbourhood). Higher = more of the "
                    "references' arrangement (brick shapes, a painting's large areas) and truer texture "
                    "statistics, but pictures closer to the references (less novel); 0 = off (each level decides "
                    "on its own, a finer mosaic). Posterior mode only.")}),
                "mode": (list(MODES), {"default": MODES[0], "tooltip": (
                    "How patches are chosen. layout: a new picture of the same scene -- the references' arrangement "
                    "is kept at the coarsest scale (sky above land, a window's ring) and everything finer is "
                    "remade from whole, coherent patches (nearest-neighbour fields with voting, as GPNN). texture: "
                    "the same without the arrangement: a stationary texture of any size (tileable with the "
                    "tileable switch). posterior: the soft patch posterior of every level (the older denoiser; "
                    "mosaics of small pieces; level_sigma, fine_patch_size, balance, context and candidates act "
                    "only here). A content picture (photo style transfer) always uses posterior.")}),
                "layout_width": ("FLOAT", {"default": LAYOUT_WIDTH, "min": 0.01, "max": 1.0, "step": 0.01,
                                          "tooltip": (
                    "Layout mode: how far, as a fraction of the picture, a coarse patch may move from where it sits "
                    "in the reference. Small = close to the reference's arrangement; large = freer layouts "
                    "(1 is nearly a texture).")}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, weights=None):
        """The weights' syntax and sign, from the text alone (their count against the pictures is checked when
        the node runs)."""
        if weights is None or not isinstance(weights, str):
            return True
        return weights_problem(weights) or True

    def build(self, images, patch_size, level_sigma, tileable, weights, content=None, content_weight=10.0,
              sharpness=1.0, candidates=8, max_reference_pixels=MAX_REFERENCE_PIXELS, balance=1.0,
              fine_patch_size=PatchSpec.fine_patch_size, palette=PatchSpec.palette,
              palette_sigma=PatchSpec.palette_sigma, context=PatchSpec.context, mode=MODES[0],
              layout_width=LAYOUT_WIDTH):
        if images is None or images.shape[0] < 1:
            raise ValueError(f"{WHO}: images is an empty batch; expected at least one reference picture")
        refs = image_to_walk(images, f"{WHO}: images")
        walk_content = None if content is None else image_to_walk(content[:1], f"{WHO}: content")
        w = parse_weights(weights, refs.shape[0], WHO) or None
        spec = PatchSpec(images=refs, weights=w, patch_size=int(patch_size), level_sigma=float(level_sigma),
                         sharpness=float(sharpness), candidates=int(candidates), tileable=bool(tileable),
                         balance=float(balance), context=float(context), fine_patch_size=int(fine_patch_size),
                         palette=float(palette), palette_sigma=float(palette_sigma),
                         max_reference_pixels=int(max_reference_pixels), content=walk_content,
                         content_weight=float(content_weight) if content is not None else 0.0,
                         mode=str(mode), layout_width=float(layout_width),
                         name=f"{refs.shape[0]} reference picture(s)")
        return (patch_target(spec, refs.shape[-1], refs.shape[-2]),)
