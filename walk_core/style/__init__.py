"""Style statistics: multi-scale feature statistics of reference pictures (the WALK_STYLE value).

``encoders`` -- the feature extractors (``ENCODERS``: ``random``, ``vgg19``); ``statistics`` -- Gram
matrices, channel mean/std and sliced-Wasserstein quantiles per layer; ``code`` -- the StyleCode value,
its differentiable distance, and safetensors save/load. No ComfyUI imports.
"""
from .code import StyleCode, encode_style, load_style, save_style, style_distance
from .encoders import ENCODERS, VGG19_FILE, build_encoder, weight_search_dirs
from .statistics import STATISTICS

__all__ = ["ENCODERS", "STATISTICS", "StyleCode", "VGG19_FILE", "build_encoder", "encode_style", "load_style",
           "save_style", "style_distance", "weight_search_dirs"]
