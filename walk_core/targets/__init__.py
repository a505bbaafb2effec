"""Targets: anything that yields a denoiser D(x, sigma)."""
from .base import Decoder, WalkTarget
from .exact import exact_target
from .mixture import GaussianMixture

__all__ = ["Decoder", "GaussianMixture", "WalkTarget", "exact_target"]
