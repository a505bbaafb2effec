"""The one node table: node id -> (class, display name). Node ids are public API: never rename one."""
from __future__ import annotations

from .sampler import WalkSampler
from .targets import TargetDistributionMixture

NODE_TABLE = {
    "WalkSampler": (WalkSampler, "Walk Sampler"),
    "TargetDistributionMixture": (TargetDistributionMixture, "Target Distribution (exact mixture)"),
}
