"""Targets: anything that yields a denoiser D(x, sigma)."""
from .base import WalkTarget
from .exact import exact_target
from .mixture import GaussianMixture

__all__ = ["GaussianMixture", "WalkTarget", "exact_target"]
