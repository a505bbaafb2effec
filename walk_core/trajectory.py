"""Trajectory capture: every k-th step of a walk as (x, denoised, sigma), for previews and analysis."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import torch


@dataclass
class Trajectory:
    """A walk callback that keeps CPU copies of the state every ``every`` steps (and the last step).

    ``every = 0`` keeps only the last step. ``total`` is the number of steps of the walk.
    """

    every: int
    total: int
    steps: List[int] = field(default_factory=list)
    sigmas: List[float] = field(default_factory=list)
    x: List[torch.Tensor] = field(default_factory=list)
    denoised: List[torch.Tensor] = field(default_factory=list)
    guidance: list = field(default_factory=list)  # GuidanceRecord per evaluation (sigma, norm of each term's change)

    def __post_init__(self):
        if self.every < 0:
            raise ValueError(f"Trajectory: every={self.every} is not allowed; expected >= 0")

    def __call__(self, info: dict) -> None:
        i = int(info["i"])
        last = i == self.total - 1
        if last or (self.every > 0 and i % self.every == 0):
            self.steps.append(i)
            self.sigmas.append(float(info["sigma"]))
            self.x.append(info["x"].detach().float().cpu())
            self.denoised.append(info["denoised"].detach().float().cpu())

    def denoised_frames(self) -> Optional[torch.Tensor]:
        """All kept x-hat-0 snapshots, [T * B, ...], time-major."""
        return torch.cat(self.denoised) if self.denoised else None
