"""A trained model as a WALK_TARGET: its denoiser in pixel space, with CFG branches for class-conditional models."""
from __future__ import annotations

from typing import Optional

import torch

from ..walk_core.targets.base import WalkTarget
from .checkpoint import ModelFile
from .unet import EDMDenoiser

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0  # EDM's range; the model is trained across it (log-normal sigma)


def _denoiser(model: EDMDenoiser, label: Optional[int], device: torch.device):
    """D(x, sigma) on ``device`` (x and the result stay where the walk keeps them); no gradients."""

    def denoise(x: torch.Tensor, sigma: torch.Tensor, **_extra) -> torch.Tensor:
        labels = None
        if label is not None:
            labels = torch.full((x.shape[0],), label, dtype=torch.long, device=device)
        with torch.no_grad():
            out = model(x.to(device=device, dtype=torch.float32), sigma.to(device=device, dtype=torch.float32), labels)
        return out.to(device=x.device, dtype=x.dtype)

    return denoise


def model_target(model: ModelFile | EDMDenoiser, size: Optional[int] = None, class_name: str = "",
                 device: Optional[torch.device | str] = None, name: str = "model") -> WalkTarget:
    """A pixel-space target from a trained denoiser (fully convolutional: any size that is a multiple of
    ``config.multiple`` walks). ``class_name`` picks a class of a class-conditional model: the target is then that
    class, with the model's "no class" prediction as the unconditional branch that CFG extrapolates from."""
    if isinstance(model, EDMDenoiser):
        model = ModelFile(model)
    denoiser, config = model.denoiser, model.config
    device = torch.device(device) if device is not None else next(denoiser.parameters()).device
    denoiser = denoiser.to(device).eval()
    who = f"TargetDistributionCheckpoint ({name})"
    label, unconditional = None, None
    class_name = (class_name or "").strip()
    if class_name:
        if not model.classes:
            raise ValueError(f"{who}: class={class_name!r}, but the model is unconditional; expected an empty class")
        if class_name not in model.classes:
            raise ValueError(f"{who}: class={class_name!r} is not one of the model's classes: {', '.join(model.classes)}")
        label = model.classes.index(class_name)
        unconditional = _denoiser(denoiser, None, device)
    if size is None:
        size = int(model.training.get("config", {}).get("size", 64))

    def at(width: int, height: int) -> WalkTarget:
        denoiser.check_size(height, width, who)
        return WalkTarget(
            name=f"{name}{f' [{class_name}]' if class_name else ''}", denoiser=_denoiser(denoiser, label, device),
            space="pixels", sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, shape=(config.channels, height, width),
            resize=at, unconditional=unconditional,
            info={"source": str(model.path or name), "classes": list(model.classes), "class": class_name,
                  "architecture": config.to_json(), "trained_steps": model.training.get("steps")})

    return at(size, size)
