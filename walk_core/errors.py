"""Errors the engine raises for users: each names where, the value and what is allowed."""
from __future__ import annotations


class WalkDivergedError(FloatingPointError):
    """The walk state turned non-finite; names the step and sigma."""

    def __init__(self, walk: str, step: int, sigma: float):
        self.walk, self.step, self.sigma = walk, step, float(sigma)
        super().__init__(
            f"walk {walk}: the state became non-finite (NaN or inf) at step {step} (sigma={self.sigma:.6g}); "
            "lower the guidance or step size, or use more steps"
        )
