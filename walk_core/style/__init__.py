"""Style statistics: multi-scale feature statistics of reference pictures (the WALK_STYLE value).

``encoders`` -- the feature extractors (``ENCODERS``: ``random``, ``vgg19``); ``clip_vision`` -- an encoder
around a CLIP vision model the caller supplies (ComfyUI's CLIP_VISION; not in ENCODERS); ``statistics`` -- Gram
matrices, channel mean/std and sliced-Wasserstein quantiles per layer; ``spectrum`` -- the pictures' radial power
spectrum (the style-energy target's guard against per-pixel noise); ``code`` -- the StyleCode value,
its differentiable distance, and safetensors save/load. No ComfyUI imports.
"""
from .clip_vision import ClipVisionEncoder
from .code import StyleCode, encode_style, load_style, save_style, save_style_new, style_distance
from .encoders import ENCODERS, VGG19_FILE, build_encoder, weight_search_dirs
from .statistics import STATISTICS

__all__ = ["ClipVisionEncoder", "ENCODERS", "STATISTICS", "StyleCode", "VGG19_FILE", "build_encoder", "encode_style",
           "load_style", "save_style", "save_style_new", "style_distance", "weight_search_dirs"]
