"""A trained model as a WALK_TARGET: its denoiser in pixel space, with CFG branches for class-conditional models."""
from __future__ import annotations

import copy
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


def pad_circularly(module: torch.nn.Module) -> list:
    """Make every zero-padded convolution of ``module`` pad circularly (periodic boundaries); returns the
    convolutions changed, so a caller can set them back to "zeros"."""
    changed = []
    for sub in module.modules():
        if isinstance(sub, torch.nn.Conv2d) and sub.padding_mode == "zeros" and any(
                isinstance(p, int) and p > 0 for p in sub.padding):
            sub.padding_mode = "circular"
            changed.append(sub)
    return changed


def circular(model: EDMDenoiser) -> EDMDenoiser:
    """A copy of ``model`` whose padded convolutions wrap around (periodic boundaries): its pictures tile. The
    network is fully convolutional apart from global attention and group norms, which see the whole picture
    either way."""
    wrapped = copy.deepcopy(model)
    pad_circularly(wrapped)
    return wrapped


def memory_factor(config) -> float:
    """Working memory of the U-Net per walk state, for the walk's memory estimate (walk_core.limits).

    Its activations scale with each level's channels over that level's area and with the blocks per level;
    the constant makes the default config (width 32, mults 1, 2, 2, blocks 2) about 600 states, as measured
    on the CPU (peak memory per state between 128 and 384 px).
    """
    levels = sum(m / 4 ** i for i, m in enumerate(config.mults))
    return 12.0 * config.width * levels * (config.blocks + 1) / 3 / config.patch ** 2 * 3 / config.channels


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
    label = None  # a class: the target is that class, with the "no class" prediction as its CFG branch
    class_name = (class_name or "").strip()
    if class_name:
        if not model.classes:
            raise ValueError(f"{who}: class={class_name!r}, but the model is unconditional; expected an empty class")
        if class_name not in model.classes:
            raise ValueError(f"{who}: class={class_name!r} is not one of the model's classes: {', '.join(model.classes)}")
        label = model.classes.index(class_name)
    if size is None:
        size = int(model.training.get("config", {}).get("size", 64))

    periodic = {}

    def at(width: int, height: int, tiled: bool = False) -> WalkTarget:
        denoiser.check_size(height, width, who)
        net = denoiser
        if tiled:
            if "net" not in periodic:
                periodic["net"] = circular(denoiser)
            net = periodic["net"]
        return WalkTarget(
            name=f"{name}{f' [{class_name}]' if class_name else ''}{' (tiled)' if tiled else ''}",
            denoiser=_denoiser(net, label, device),
            space="pixels", sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, shape=(config.channels, height, width),
            resize=lambda w, h: at(w, h, tiled),
            unconditional=None if label is None else _denoiser(net, None, device),
            tiled=lambda: at(width, height, True),
            info={"source": str(model.path or name), "classes": list(model.classes), "class": class_name,
                  "architecture": config.to_json(), "trained_steps": model.training.get("steps"), "tiled": tiled,
                  "memory_factor": memory_factor(config)})

    return at(size, size)
