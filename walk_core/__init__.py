"""The self-contained engine: schedules, walks, targets, noise, guidance and the workflow runner.

Imports torch/numpy/pillow/safetensors only — never ``nodes/`` and never ComfyUI.
"""
from .errors import WalkDivergedError
from .noise import ItemNoise, item_seeds
from .registry import Registry, UnknownNameError
from .schedules import SCHEDULES, make_sigmas

__all__ = [
    "ItemNoise", "Registry", "SCHEDULES", "UnknownNameError", "WalkDivergedError",
    "item_seeds", "make_sigmas",
]
from .targets import GaussianMixture, WalkTarget
from .walks import WALKS, WalkSpec, register_walk, steps_for_nfe

__all__ += ["GaussianMixture", "WALKS", "WalkSpec", "WalkTarget", "register_walk", "steps_for_nfe"]
from .guidance import GuidanceChain, GuidanceTerm
from .sample import WalkRequest, WalkResult, run_walk, walk_sigmas
from .trajectory import Trajectory

__all__ += ["GuidanceChain", "GuidanceTerm", "Trajectory", "WalkRequest", "WalkResult", "run_walk", "walk_sigmas"]
