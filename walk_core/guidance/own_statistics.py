"""Guidance by the references' own statistics: the recipe that keeps a patch target's pictures faithful.

The patch target's posterior is local, so nothing holds the picture's global statistics to the references':
marble comes out a shade off in luminance, foliage with too few dark gaps (README, "Weight-free generation").
Two energy terms (walk_core.guidance.energy) measured against the *same* references fix that while the layout
is being decided, and leave the fine detail to the patches:

- style: the channel means and standard deviations of a random-filter CNN's features (StyleEncoder ``random``,
  ``mean_std``) at ``style_weight`` over the first ``style_end`` of the walk;
- colour: the references' whole distribution of pixel colours (energy ``palette``, sliced Wasserstein: how
  much of each colour, not only the mean and std) at ``colour_weight`` over the first ``colour_end``.

The encoder's seed (``encoder_seed``, 7) is deliberately not the seed of the random features that
walk_core.quality's Gram distance measures with (0), nor are the palette's colour directions the colour measure's,
so the benchmark does not judge the pictures with the very statistics that steered them. The recipe walks with
annealed Langevin dynamics (``WALK`` ``langevin``, ``STEPS`` 15 levels, 16 evaluations) and a little more fresh
noise (``S_NOISE`` 1.5 rather than the patch target's 1.15): its pictures measure more novel than those of the
patch workflows' 30 euler_ancestral steps, and the palette term holds the colours, which that walk alone lets
drift. Measured in bench/patch.py (docs/BENCHMARKS.md, "with their own statistics as
guidance").
"""
from __future__ import annotations

import torch

from ..style import encode_style
from .chain import GuidanceChain
from .energy import EnergyTerm

STYLE_WEIGHT, STYLE_END = 0.2, 0.7
COLOUR_WEIGHT, COLOUR_END = 1.0, 0.7
COLOUR_ENERGY = "palette"
ENCODER_SEED = 7
STATISTICS = "mean_std"
WALK, STEPS, S_NOISE = "langevin", 15, 1.5  # the walk this guidance is measured with: name, levels, S_noise


def own_statistics(references: torch.Tensor, chain: GuidanceChain = GuidanceChain(),
                   style_weight: float = STYLE_WEIGHT, style_end: float = STYLE_END,
                   colour_weight: float = COLOUR_WEIGHT, colour_end: float = COLOUR_END) -> GuidanceChain:
    """``chain`` plus the style and colour terms measured against ``references`` [N, 3, H, W] in [-1, 1]
    (a weight of 0 leaves its term out)."""
    if not isinstance(references, torch.Tensor) or references.ndim != 4 or references.shape[1] != 3:
        raise ValueError(f"own_statistics: references {getattr(references, 'shape', references)}; "
                         "expected [N, 3, H, W] pictures in [-1, 1]")
    if style_weight > 0:
        code = encode_style(references, "random", STATISTICS, encoder_config={"seed": ENCODER_SEED})
        chain = chain.plus(EnergyTerm(weight=style_weight, energy="style", style=code, end_percent=style_end))
    if colour_weight > 0:
        chain = chain.plus(EnergyTerm(weight=colour_weight, energy=COLOUR_ENERGY, reference=references,
                                      end_percent=colour_end))
    return chain
