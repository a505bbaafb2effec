"""Layout conversion at the node boundary: ComfyUI IMAGE [B, H, W, C] in [0, 1] <-> walk [B, C, H, W] in [-1, 1]."""
from __future__ import annotations

import torch


def image_to_walk(image: torch.Tensor, who: str = "image") -> torch.Tensor:
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{who}: IMAGE of shape {tuple(image.shape)}; expected [B, H, W, C] with C in 1, 3, 4")
    rgb = image[..., :3] if image.shape[-1] >= 3 else image.expand(*image.shape[:-1], 3)
    return rgb.permute(0, 3, 1, 2).float() * 2 - 1


def walk_to_image(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).contiguous().cpu()
