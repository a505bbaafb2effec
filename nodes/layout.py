"""Layout conversion at the node boundary: ComfyUI IMAGE [B, H, W, C] in [0, 1] <-> walk [B, C, H, W] in [-1, 1]
(and <-> PIL pictures)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def image_to_walk(image: torch.Tensor, who: str = "image") -> torch.Tensor:
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{who}: IMAGE of shape {tuple(image.shape)}; expected [B, H, W, C] with C in 1, 3, 4")
    rgb = image[..., :3] if image.shape[-1] >= 3 else image.expand(*image.shape[:-1], 3)
    return rgb.permute(0, 3, 1, 2).float() * 2 - 1


def walk_to_image(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).contiguous().cpu()


def mask_to_walk(mask: torch.Tensor, size, who: str = "mask") -> torch.Tensor:
    """ComfyUI MASK ([H, W] or [B, H, W], 1 = the part to walk) -> [B, 1, H, W] at ``size`` (H, W)."""
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise ValueError(f"{who}: MASK of shape {tuple(mask.shape)}; expected [H, W] or [B, H, W]")
    mask = mask.float()[:, None].clamp(0, 1)
    if tuple(mask.shape[-2:]) != tuple(size):
        mask = torch.nn.functional.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False)
    return mask.cpu()


def image_to_pil(image: torch.Tensor, index: int = 0) -> Image.Image:
    """Picture ``index`` of an IMAGE [B, H, W, C] in [0, 1] as an RGB PIL image."""
    pixels = (image[index, ..., :3].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def pil_to_image(picture: Image.Image) -> torch.Tensor:
    """An RGB PIL image as an IMAGE [1, H, W, 3] in [0, 1]."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels.copy())[None]
