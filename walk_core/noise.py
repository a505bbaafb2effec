"""Per-item noise: every random draw of a walk comes from one CPU generator per batch item.

Item ``i`` of a batch is seeded ``seed + i``, so image i of a batch equals a single run with
``seed + i``, and CPU and GPU runs start from the same numbers (draws happen on the CPU in
float32 and are then moved and cast).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed accepts 0 .. 2**64-1; stay in int64 range
CHUNK_VALUES = 512  # values drawn per generator call for small items (see ItemNoise.randn)


def item_seeds(seed: int, batch_size: int) -> list[int]:
    """The per-item seeds ``seed + i`` of a batch (wrapped into the valid range)."""
    if batch_size < 1:
        raise ValueError(f"item_seeds: batch_size={batch_size} is not allowed; expected >= 1")
    return [(int(seed) + i) % (SEED_MAX + 1) for i in range(batch_size)]


class ItemNoise:
    """A source of Gaussian noise with one CPU generator per batch item.

    ``noise.randn_like(x)`` returns a tensor shaped like ``x`` whose item ``i`` is the next draw
    of generator ``i``. Successive calls continue each generator's stream.
    """

    def __init__(self, seeds: Sequence[int]):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("ItemNoise: seeds is empty; expected one seed per batch item")
        self.seeds = seeds
        self._generators = []
        for s in seeds:
            if not 0 <= s <= SEED_MAX:
                raise ValueError(f"ItemNoise: seed={s} is out of range; expected 0..{SEED_MAX}")
            g = torch.Generator(device="cpu")
            g.manual_seed(s)
            self._generators.append(g)
        self._buffer: torch.Tensor | None = None  # [B, chunk, *item_shape]
        self._pos = 0

    @classmethod
    def from_seed(cls, seed: int, batch_size: int) -> "ItemNoise":
        return cls(item_seeds(seed, batch_size))

    def __len__(self) -> int:
        return len(self.seeds)

    def randn(self, shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
        """Draw ``[B, *shape[1:]]`` noise; ``shape[0]`` must equal the number of items.

        Each generator's stream is consumed in chunks of ``CHUNK_VALUES // numel`` draws (at least one), a
        function of the item shape only, so item i never depends on the batch it is in; small items (2-D
        points, say) then cost one generator call per chunk instead of one per step.
        """
        shape = tuple(int(d) for d in shape)
        if not shape or shape[0] != len(self._generators):
            raise ValueError(
                f"ItemNoise: asked for shape {shape} but holds {len(self._generators)} "
                "generators (one per item); seed the noise with the batch size"
            )
        item_shape = shape[1:]
        if self._buffer is None or self._buffer.shape[2:] != item_shape or self._pos >= self._buffer.shape[1]:
            per_item = max(1, CHUNK_VALUES // max(1, math.prod(item_shape)))
            self._buffer = torch.stack(
                [torch.randn((per_item,) + item_shape, generator=g, dtype=torch.float32) for g in self._generators]
            )
            self._pos = 0
        out = self._buffer[:, self._pos]
        self._pos += 1
        return out.to(device=device, dtype=dtype)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.randn(x.shape, device=x.device, dtype=x.dtype)

    def __call__(self, sigma=None, sigma_next=None, x: torch.Tensor | None = None):
        """k-diffusion ``noise_sampler(sigma, sigma_next)``-style call needs ``x`` for the shape."""
        if x is None:
            raise ValueError("ItemNoise: call randn_like(x) or pass x= for the shape")
        return self.randn_like(x)


def noise_for(x: torch.Tensor, extra_args: dict | None, noise: ItemNoise | None) -> ItemNoise:
    """The noise source of a walk: ``noise`` if given, else per-item generators seeded from
    ``extra_args['seed']`` (what ComfyUI passes to a SAMPLER), else seed 0."""
    if noise is not None:
        if len(noise) != x.shape[0]:
            raise ValueError(
                f"walk: noise holds {len(noise)} generators but x has a batch of {x.shape[0]}"
            )
        return noise
    seed = (extra_args or {}).get("seed", 0)
    return ItemNoise.from_seed(int(seed), x.shape[0])
