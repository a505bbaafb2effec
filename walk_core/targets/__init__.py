"""Targets: anything that yields a denoiser D(x, sigma)."""
from .base import WalkTarget
from .mixture import GaussianMixture

__all__ = ["GaussianMixture", "WalkTarget"]
