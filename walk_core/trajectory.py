"""Trajectory capture: every k-th step of a walk as (x, denoised, sigma), for previews and analysis."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch

from .guidance.chain import GuidanceRecord


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


# a picture of the walk (walk_core.trajectory_plot): filmstrip tile side in px and frames per row
TILE_LIMITS = (16, 1024)
COLUMN_LIMITS = (1, 64)


@dataclass(frozen=True)
class WalkTrajectory:
    """One walk as a picture of it needs it (the WALK_TRAJECTORY socket): an immutable value.

    ``sigmas``: the schedule walked, n + 1 noise levels, descending, the last 0. ``steps``: the step of each
    kept frame, ascending. ``frames``: [T, B, 3, H, W] x-hat-0 pictures in [-1, 1], frame t taken at
    ``steps[t]``. ``guidance``: per evaluation of the guided denoiser, its sigma and each term's change norm.
    """

    sigmas: Tuple[float, ...]
    steps: Tuple[int, ...]
    frames: torch.Tensor  # [T, B, 3, H, W]
    guidance: Tuple[GuidanceRecord, ...] = ()

    def __post_init__(self):
        n = len(self.sigmas) - 1
        if any(not 0 <= s < max(n, 1) for s in self.steps) or list(self.steps) != sorted(set(self.steps)):
            raise ValueError(f"WalkTrajectory: steps={list(self.steps)[:8]} are not allowed; expected ascending "
                             f"step indices in 0..{n - 1} (the walk has {n} steps)")
        shape = tuple(self.frames.shape)
        if len(shape) != 5 or shape[0] != len(self.steps) or shape[2] != 3:
            raise ValueError(f"WalkTrajectory: frames of shape {shape} are not allowed; expected [T, B, 3, H, W] "
                             f"with T = {len(self.steps)} (one frame per kept step)")

    @property
    def batch_size(self) -> int:
        return int(self.frames.shape[1])

    def term_labels(self) -> List[str]:
        """The guidance terms' labels ("1:cfg", ...) in the order they first changed an estimate."""
        return list(dict.fromkeys(label for record in self.guidance for label in record.norms))


def walk_trajectory(trajectory: Trajectory, sigmas: Sequence[float],
                    pictures: Optional[torch.Tensor] = None) -> WalkTrajectory:
    """The :class:`WalkTrajectory` of a finished walk.

    ``pictures``: the kept frames as [T * B, 3, H, W] pictures in [-1, 1], time-major (a latent walk's decoded
    x-hat-0); by default the trajectory's own x-hat-0 (a pixel walk).
    """
    frames = trajectory.denoised_frames() if pictures is None else pictures
    if frames is None:
        raise ValueError("walk_trajectory: the trajectory kept no frames; expected at least the last step")
    # a walk that kept no step of its own (trajectory_every 0 on a MODEL) shows its result as the last step
    steps = tuple(trajectory.steps) or (len(sigmas) - 2,)
    frames = frames.detach().float().cpu().clamp(-1, 1)
    return WalkTrajectory(sigmas=tuple(float(s) for s in sigmas), steps=steps,
                          frames=frames.reshape(len(steps), -1, *frames.shape[1:]),
                          guidance=tuple(trajectory.guidance))
