"""Guidance: an immutable chain of terms that wraps a denoiser (terms arrive with the guidance issue)."""
from .chain import GuidanceChain, GuidanceTerm

__all__ = ["GuidanceChain", "GuidanceTerm"]
