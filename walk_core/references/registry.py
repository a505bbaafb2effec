"""The registry of procedural references: name -> ``fn(width, height, seed) -> [3, H, W]`` in [0, 1]."""
from __future__ import annotations

from typing import Callable

import torch

from ..registry import Registry

ReferenceFn = Callable[[int, int, int], torch.Tensor]

REFERENCES: Registry[ReferenceFn] = Registry("reference")


def register_reference(name: str):
    """Decorator: add a generator ``fn(width, height, seed)`` to :data:`REFERENCES` under ``name``."""
    return REFERENCES.register(name)
