"""The patch target: a denoiser made directly from reference pictures (no weights, no training)."""
from .target import STEPS, WALK, WALK_S_NOISE, PatchSpec, patch_target

__all__ = ["PatchSpec", "STEPS", "WALK", "WALK_S_NOISE", "patch_target"]
