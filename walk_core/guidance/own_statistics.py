"""Guidance by the references' own texture statistics: a patch target's walk held to its references' feature
statistics as well as to their colours.

The patch target holds its pictures to the references' colours itself (its palette hold,
walk_core.targets.patch). The posterior is local, so nothing holds the picture's texture statistics; this
term does while the layout is being decided and leaves the fine detail to the patches: the channel means and
standard deviations of a random-filter CNN's features (StyleEncoder ``random``, ``mean_std``) measured against
the *same* references, at ``style_weight`` over the first ``style_end`` of the walk.

The encoder's seed (``ENCODER_SEED``, 7) is deliberately not the seed of the random features that
walk_core.quality's Gram distance measures with (0), so the benchmark does not judge the pictures with the very
statistics that steered them. Measured in bench/patch.py (docs/BENCHMARKS.md, "with their own texture statistics
as guidance"): the walks' Gram distances come closer to the references' (0.68 -> 0.50 of the halves' value),
and 16 of 20 walks pass all three criteria against 15 without it.
"""
from __future__ import annotations

import torch

from ..style import encode_style
from .chain import GuidanceChain
from .energy import EnergyTerm

STYLE_WEIGHT, STYLE_END = 0.2, 0.7
ENCODER_SEED = 7
STATISTICS = "mean_std"


def own_statistics(references: torch.Tensor, chain: GuidanceChain = GuidanceChain(),
                   style_weight: float = STYLE_WEIGHT, style_end: float = STYLE_END) -> GuidanceChain:
    """``chain`` plus the style term measured against ``references`` [N, 3, H, W] in [-1, 1] (a weight of 0 leaves
    it out)."""
    if not isinstance(references, torch.Tensor) or references.ndim != 4 or references.shape[1] != 3:
        raise ValueError(f"own_statistics: references {getattr(references, 'shape', references)}; "
                         "expected [N, 3, H, W] pictures in [-1, 1]")
    if style_weight > 0:
        code = encode_style(references, "random", STATISTICS, encoder_config={"seed": ENCODER_SEED})
        chain = chain.plus(EnergyTerm(weight=style_weight, energy="style", style=code, end_percent=style_end))
    return chain
