"""The patch target: a denoiser made directly from reference pictures (no weights, no training)."""
from .target import PatchSpec, patch_target

__all__ = ["PatchSpec", "patch_target"]
