"""The memory a training run of the own U-Net would need, checked before the network is built (walk_core.limits).

Per step the trainer holds the batch's activations for the backward pass and their gradients -- twice the
U-Net's working memory per picture in a walk (models.target.memory_factor) -- and five copies of the
parameters (weights, EMA, gradients, Adam's two moments).
"""
from __future__ import annotations

import torch

from ..walk_core.limits import FLOAT_BYTES, check_memory, check_network_params, gib
from .target import memory_factor
from .unet import EDMDenoiser, UNetConfig

PARAMETER_COPIES = 5  # weights, EMA weights, gradients, Adam's first and second moments


def check_training(who: str, size: int, batch: int, architecture: UNetConfig) -> None:
    """LimitError when training ``architecture`` on ``batch`` crops of ``size`` px would exceed the limits."""
    with torch.device("meta"):
        params = sum(p.numel() for p in EDMDenoiser(architecture).parameters())
    check_network_params(params, who, f"the architecture {architecture}")
    picture = int(batch) * architecture.channels * int(size) ** 2 * FLOAT_BYTES  # one batch of crops
    activations = picture * 2 * memory_factor(architecture)
    weights = params * FLOAT_BYTES * PARAMETER_COPIES
    check_memory(who, f"training on {batch} crops of {size}x{size} px", activations + weights,
                 f"{gib(activations)} of activations and gradients, {gib(weights)} for {params:,} parameters x "
                 f"{PARAMETER_COPIES}", "Lower batch_size, size or the network's width, levels or blocks")
