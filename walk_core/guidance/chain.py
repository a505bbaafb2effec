"""The WALK_GUIDANCE value: an ordered, immutable chain of guidance terms.

``guided = chain.wrap(denoiser, sigmas)`` returns a denoiser with the same signature, so walks never
know guidance exists (k-diffusion's CFG-denoiser pattern). Each term has a weight and a start/end
percent of the walk, converted to a sigma interval once per walk from the schedule. ComfyUI caches
node outputs and one output may feed several nodes, so ``plus`` returns a new chain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import torch


@dataclass(frozen=True)
class GuidanceTerm:
    """One term of the chain. Subclasses implement :meth:`apply`."""

    weight: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.start_percent <= self.end_percent <= 1.0:
            raise ValueError(
                f"{type(self).__name__}: start_percent={self.start_percent}, end_percent={self.end_percent} "
                "is not allowed; expected 0 <= start <= end <= 1"
            )

    def sigma_interval(self, sigmas: torch.Tensor) -> Tuple[float, float]:
        """(sigma_hi, sigma_lo): the term is active for sigma_lo <= sigma <= sigma_hi."""
        levels = sigmas[:-1] if float(sigmas[-1]) == 0 and len(sigmas) > 1 else sigmas
        n = len(levels) - 1

        def at(percent: float) -> float:
            return float(levels[min(round(percent * n), n)]) if n > 0 else float(levels[0])

        hi = float("inf") if self.start_percent == 0 else at(self.start_percent)
        lo = 0.0 if self.end_percent == 1 else at(self.end_percent)
        return hi, lo

    def apply(self, denoised: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor, denoiser, extra: dict) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class GuidanceChain:
    """An ordered tuple of terms; the empty chain leaves the denoiser untouched."""

    terms: Tuple[GuidanceTerm, ...] = ()

    def plus(self, term: GuidanceTerm) -> "GuidanceChain":
        return GuidanceChain(self.terms + (term,))

    def __len__(self) -> int:
        return len(self.terms)

    def wrap(self, denoiser: Callable[..., torch.Tensor], sigmas: torch.Tensor) -> Callable[..., torch.Tensor]:
        if not self.terms:
            return denoiser
        intervals = [t.sigma_interval(sigmas) for t in self.terms]

        def guided(x, sigma, **extra):
            denoised = denoiser(x, sigma, **extra)
            s = float(sigma.reshape(-1)[0])
            for term, (hi, lo) in zip(self.terms, intervals):
                if lo <= s <= hi:
                    denoised = term.apply(denoised, x, sigma, denoiser, extra)
            return denoised

        return guided
