"""The patch target's posterior denoiser as a spec (tests of what only that denoiser has: balance, context,
fine_patch_size, level_sigma, the palette hold, the coarse-to-fine posterior search)."""
from __future__ import annotations

from dataclasses import dataclass

from rwalk.walk_core.targets.patch import PatchSpec


@dataclass(frozen=True)
class PosteriorSpec(PatchSpec):
    """PatchSpec with ``mode="posterior"`` by default."""

    mode: str = "posterior"
