"""Procedural reference pictures, made by code (nothing downloaded or shipped), deterministic by seed.

They are the default references of the patch target, style transfer and the style encoder: pictures rich
in local structure at several scales. ``REFERENCES`` maps a name to ``fn(width, height, seed)`` returning
``[3, H, W]`` float32 in [0, 1]; :func:`reference_image` checks its arguments and calls one.
"""
from __future__ import annotations

import logging
import numbers
import time

import torch

from ..noise import SEED_MAX
from .registry import REFERENCES, register_reference

# each module registers its generator; this order is the order of the names (painting first: the default)
from . import painting, stained_glass, marble, bricks, foliage, photo  # noqa: E402,F401,I001

MIN_SIZE, MAX_SIZE = 16, 1024

logger = logging.getLogger(__name__)


def reference_image(name: str, width: int, height: int, seed: int = 0) -> torch.Tensor:
    """The reference ``name`` at ``width`` x ``height`` for ``seed``: [3, height, width] float32 in [0, 1]."""
    if name not in REFERENCES:
        raise ValueError(f"reference_image: name={name!r} is unknown; expected one of: {', '.join(REFERENCES)}")
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not MIN_SIZE <= value <= MAX_SIZE:
            raise ValueError(f"reference_image: {label}={value!r} is not allowed; expected an integer number of "
                             f"pixels from {MIN_SIZE} to {MAX_SIZE}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"reference_image: seed={seed!r} is not allowed; expected an integer from 0 to {SEED_MAX}")
    width, height, seed = int(width), int(height), int(seed)
    start = time.perf_counter()
    image = REFERENCES[name](width, height, seed).to(torch.float32).clamp_(0, 1).contiguous()
    logger.debug("reference %s %dx%d seed %d made in %.3f s", name, width, height, seed, time.perf_counter() - start)
    return image


__all__ = ["MAX_SIZE", "MIN_SIZE", "REFERENCES", "reference_image", "register_reference"]
