"""The one node table: node id -> (class, display name). Node ids are public API: never rename one."""
from __future__ import annotations

from .guidance import GUIDANCE_NODES
from .guidance_energy import GuidanceStepEnergy
from .sampler import WalkSampler
from .style import StyleEncoder
from .targets import TargetDistributionMixture

NODE_TABLE = {
    "WalkSampler": (WalkSampler, "Walk Sampler"),
    "TargetDistributionMixture": (TargetDistributionMixture, "Target Distribution (exact mixture)"),
    **GUIDANCE_NODES,  # GuidanceStepCFG, ...: one per guidance term kind (nodes/guidance.py STEPS)
    "GuidanceStepEnergy": (GuidanceStepEnergy, "Guidance Step: Energy"),
    "StyleEncoder": (StyleEncoder, "Style Encoder"),
}
