"""Noise whose batch items are related on purpose: a shared part (a grid's "chaos") or a seed-space wander.

Both wrap :class:`ItemNoise` (item i still draws from its generator seeded seed + i) and mix its draws
linearly, keeping every item's marginal N(0, 1), so a walk sees ordinary noise:

* ``share`` = r: item i's draw is sqrt(1 - r) e_i + sqrt(r) s, with s drawn from one more generator seeded
  ``share_seed`` -- items keep a fraction r of their variance in common (their pictures resemble each
  other more as r grows). s depends only on ``share_seed``, so item i alone (batch 1, seed seed + i, same
  r and share_seed) is the same picture as in the batch.
* ``wander`` = step in (0, 1]: the items form a chain n_0 = e_0, n_k = cos(a) n_(k-1) + sin(a) e_k with
  a = step * pi / 2 -- a random walk of the noise on the sphere, each frame correlated cos(a) with the last;
  step 1 makes the frames independent. Applied to every draw (the start and each step's fresh noise), so
  stochastic walks change smoothly from frame to frame too.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from .noise import ItemNoise


class MixedNoise:
    """An ItemNoise with a shared part and/or a wander along the batch (see the module docstring)."""

    def __init__(self, base: ItemNoise, share: float = 0.0, share_seed: int = 0, wander: float = 0.0):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"MixedNoise: share={share}; expected 0..1 (the fraction of variance items share)")
        if not 0.0 <= wander <= 1.0:
            raise ValueError(f"MixedNoise: wander={wander}; expected 0..1 (0 = off, 1 = independent frames)")
        self.base, self.share, self.wander = base, float(share), float(wander)
        self.shared: Optional[ItemNoise] = ItemNoise([int(share_seed)]) if share > 0 else None
        self.seeds = base.seeds

    def __len__(self) -> int:
        return len(self.base)

    def close(self) -> None:
        self.base.close()
        if self.shared is not None:
            self.shared.close()

    def randn(self, shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
        e = self.base.randn(shape, device=device, dtype=dtype)
        if self.shared is not None:
            common = self.shared.randn((1,) + tuple(shape[1:]), device=device, dtype=dtype)
            e = math.sqrt(1.0 - self.share) * e + math.sqrt(self.share) * common
        if self.wander > 0 and e.shape[0] > 1:
            angle = self.wander * math.pi / 2
            c, s = math.cos(angle), math.sin(angle)
            chain = [e[0]]
            for k in range(1, e.shape[0]):
                chain.append(c * chain[-1] + s * e[k])
            e = torch.stack(chain)
        return e

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.randn(x.shape, device=x.device, dtype=x.dtype)

    def __call__(self, sigma=None, sigma_next=None, x: Optional[torch.Tensor] = None):
        if x is None:
            raise ValueError("MixedNoise: call randn_like(x) or pass x= for the shape")
        return self.randn_like(x)


def walk_noise(seeds: Sequence[int], share: float = 0.0, share_seed: int = 0, wander: float = 0.0):
    """ItemNoise for ``seeds``, mixed when ``share`` or ``wander`` ask for it."""
    base = ItemNoise(seeds)
    if share <= 0 and wander <= 0:
        return base
    return MixedNoise(base, share=share, share_seed=share_seed, wander=wander)
