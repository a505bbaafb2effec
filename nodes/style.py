"""StyleEncoder: reference pictures -> WALK_STYLE (multi-scale feature statistics)."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from ..walk_core.style import ENCODERS, STATISTICS, ClipVisionEncoder, encode_style
from ..walk_core.style.encoders import COMFY_SUBDIR, PACK_WEIGHTS_DIR, VGG19_FILE
from ..walk_core.style.vgg_adain import VGG19_ADAIN_FILE
from .layout import image_to_walk
from .types import CATEGORY, WALK_STYLE

log = logging.getLogger(__name__)


def comfy_weight_dirs() -> List[Path]:
    """ComfyUI's models/style_encoders folder when running inside ComfyUI; nothing headless."""
    try:
        import folder_paths  # noqa: PLC0415  (only present inside ComfyUI)
    except ImportError:
        return []
    return [Path(folder_paths.models_dir) / COMFY_SUBDIR]


def comfy_loader(clip_vision: Any) -> Optional[Callable[[], None]]:
    """Inside ComfyUI: a hook that loads a CLIP_VISION's weights onto its device (as its own encode_image does)
    before each forward; None headless or for an object without ComfyUI's ``patcher``."""
    patcher = getattr(clip_vision, "patcher", None)
    if patcher is None:
        return None
    try:
        import comfy.model_management as mm  # noqa: PLC0415  (only present inside ComfyUI)
    except ImportError:
        log.debug("StyleEncoder: clip_vision has a patcher but ComfyUI is absent; its weights stay where they are")
        return None
    return lambda: mm.load_model_gpu(patcher)


def weights_problem(text: str):
    """What is wrong with a weights text by itself (syntax, sign, finiteness), without a node prefix; None = fine."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    try:
        weights = [float(p) for p in parts]
    except ValueError:
        return f"weights={text!r}; expected finite positive numbers, comma-separated, one per picture"
    if not all(math.isfinite(w) and w > 0 for w in weights):
        return f"weights={text!r}; expected finite positive numbers, comma-separated"
    return None


def parse_weights(text: str, n: int, who: str) -> Tuple[float, ...]:
    """'1, 0.5' -> (1.0, 0.5): one weight per picture; empty = equal weights."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        return ()
    problem = weights_problem(text)
    if problem:
        raise ValueError(f"{who}: {problem}")
    weights = tuple(float(p) for p in parts)
    if len(weights) != n:
        raise ValueError(f"{who}: weights={text!r} gives {len(weights)} weights for {n} pictures; "
                         "expected one per picture (or empty for equal weights)")
    return weights


def wrap_clip_vision(clip_vision: Any, who: str) -> ClipVisionEncoder:
    """A CLIP_VISION input as a style encoder (its weights loaded onto their device before each forward)."""
    return ClipVisionEncoder.wrap(clip_vision, comfy_loader(clip_vision), who=f"{who}: clip_vision")


class StyleEncoder:
    DESCRIPTION = (
        "Style statistics of one or several reference pictures (weighted): per layer of a feature encoder, "
        "Gram matrices (Gatys et al. 2016), channel mean/std, or sliced-Wasserstein quantiles. Feed the "
        "WALK_STYLE into Guidance Step: Energy with energy 'style'. A connected CLIP_VISION (optional input "
        "clip_vision) replaces the encoder choice: the statistics are then taken of four blocks of that vision "
        "transformer's patch tokens.")
    CATEGORY = f"{CATEGORY}/style"
    RETURN_TYPES = (WALK_STYLE,)
    RETURN_NAMES = ("style",)
    OUTPUT_TOOLTIPS = ("The references' style statistics (encoder, layers, weighted average).",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": (
                "The style reference(s): every picture of the batch is one reference (at least 16 px per side); "
                "their statistics are averaged with the weights.")}),
            "encoder": (ENCODERS.names(), {"default": "random", "tooltip": (
                "Feature network: random = a fixed-seed multi-scale CNN with random filters (Ustyuzhaninov et "
                f"al. 2016), no weights; vgg19 = torchvision's VGG19 from a local {VGG19_FILE} in the pack's "
                f"{PACK_WEIGHTS_DIR.relative_to(PACK_WEIGHTS_DIR.parents[1])} folder or ComfyUI's "
                f"models/{COMFY_SUBDIR} (the error says how to make it); vgg19_adain = AdaIN's normalised VGG-19 "
                f"(relu1_1..relu5_1) from a local {VGG19_ADAIN_FILE} in the same folders, made once by "
                "'python bench/vgg_setup.py' in the pack's folder -- the pretrained features that give the "
                "style-energy target cells and lines (stained glass, bricks) instead of colour clouds.")}),
            "statistics": (list(STATISTICS), {"default": "gram", "tooltip": (
                "What to match per layer: gram = feature correlations (texture); mean_std = channel means and "
                "standard deviations (AdaIN); sliced_wasserstein = the full 1-D feature distributions along 32 "
                "random directions; all = the three together.")}),
            "weights": ("STRING", {"default": "", "tooltip": (
                "Comma-separated weight per picture, e.g. '1, 0.5' (normalised to sum 1); empty = equal.")}),
            "encoder_seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": (
                "random encoder only: seed of its filters (and of the sliced-Wasserstein directions). The same "
                "seed gives the same network, so codes compare only within one seed.")}),
        }, "optional": {
            "clip_vision": ("CLIP_VISION", {"tooltip": (
                "Optional CLIP vision model (Load CLIP Vision: CLIP, SigLIP or DINOv2). When connected it replaces "
                "the encoder choice (encoder and encoder_seed are ignored): the statistics come from the patch "
                "tokens of four of its blocks (after 1/4, 1/2, 3/4 of the depth and the penultimate). The style "
                "guidance then runs this model at every guided step.")}),
        }}

    def encode(self, images, encoder, statistics, weights, encoder_seed, clip_vision=None):
        pictures = image_to_walk(images, "StyleEncoder: images")  # [N, 3, H, W] in [-1, 1]
        w = parse_weights(weights, pictures.shape[0], "StyleEncoder")
        if clip_vision is not None:
            net = wrap_clip_vision(clip_vision, "StyleEncoder")
            return (encode_style(pictures, net, statistics, w),)
        config = {"seed": int(encoder_seed)} if encoder == "random" else {}
        return (encode_style(pictures, encoder, statistics, w, config, search_dirs=comfy_weight_dirs()),)
