"""A ComfyUI MODEL with its prompts as a WALK_TARGET (the facts a walk needs; ComfyUI does the calls).

The target lives in the model's latent space, in ComfyUI's *scaled* latents (what its samplers walk:
``latent_format.process_in`` of a LATENT's samples). Its sigma range and noise convention come from the
model's own ``model_sampling``. It has no denoiser of its own outside ComfyUI's sampling: WalkSampler runs it
through ComfyUI's guider machinery (nodes/comfy_walk.py), which loads the model, prepares the prompts
(areas, masks, ControlNets, hooks) and hands the walk ComfyUI's prediction. Nothing here imports ComfyUI:
every call goes through the MODEL / VAE objects the node receives.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ..walk_core.bridge import FLOW_SIGMA_CAP, is_flow
from ..walk_core.targets import Decoder, WalkTarget

DECODE_SCALES = ("1", "1/2", "1/4")
MIN_LATENT = 1


@dataclass(frozen=True)
class ModelSource:
    """What WalkSampler needs to run a MODEL target in ComfyUI (kept in the target's ``info['model_source']``)."""

    model: Any  # ComfyUI ModelPatcher
    positive: Any  # CONDITIONING
    negative: Any  # CONDITIONING
    vae: Any = None  # ComfyUI VAE or None
    decode_scale: float = 1.0
    tile: bool = False  # periodic boundaries: the model's and the VAE's convolutions pad circularly


@contextmanager
def circular_padding(module: Optional[torch.nn.Module]):
    """For the duration: every zero-padded convolution of ``module`` pads circularly (so its pictures tile), as
    seamless-tiling patches of diffusion models do; restored afterwards, whatever happens. None = nothing."""
    from ..models.target import pad_circularly  # noqa: PLC0415  (the trainer's package: loaded on first use)

    changed = [] if module is None else pad_circularly(module)
    try:
        yield
    finally:
        for sub in changed:
            sub.padding_mode = "zeros"


def latent_format(model) -> Any:
    return model.get_model_object("latent_format")


def downscale(model) -> int:
    """Pixels per latent cell (8 for Stable Diffusion-family models)."""
    return int(getattr(latent_format(model), "spacial_downscale_ratio", 8))


def sigma_range(model) -> tuple:
    """(sigma_min, sigma_max) of the model's own model_sampling (flow models: t, capped below 1)."""
    sampling = model.get_model_object("model_sampling")
    lo, hi = float(sampling.sigma_min), float(sampling.sigma_max)
    if is_flow(sampling):
        hi = min(hi, 1.0)
    return lo, hi


def _not_here(name: str):
    def fail(*_args, **_kwargs):
        raise RuntimeError(f"target {name!r} is a ComfyUI MODEL: it is walked by WalkSampler (or WalkGuider) inside "
                           "ComfyUI's sampling, not called directly")
    return fail


def trainable_copy(module: torch.nn.Module, device, dtype) -> torch.nn.Module:
    """A private copy of ``module`` whose weights are ordinary tensors on ``device``: ComfyUI loads weights under
    inference mode, and inference tensors cannot be saved for a backward pass (cloning them outside inference
    mode makes normal ones). The copy is frozen (no weight gradients) and never moved by ComfyUI."""
    with torch.inference_mode(False):
        private = copy.deepcopy(module)
        for sub in private.modules():
            for name, param in list(sub._parameters.items()):
                if param is not None:
                    sub._parameters[name] = torch.nn.Parameter(param.detach().clone(), requires_grad=False)
            for name, buf in list(sub._buffers.items()):
                if buf is not None:
                    sub._buffers[name] = buf.detach().clone()
        return private.to(device=device, dtype=dtype).eval()


def vae_decoder(vae, process_out, factor: int, scale: float, tile: bool = False) -> Decoder:
    """Scaled latent -> walk-space pixels through ``vae``'s decoder, differentiable; ``scale`` < 1 decodes the
    latent resized by that factor (less memory for energy guidance; the energy then measures a smaller picture).
    The decoder used is a private trainable copy, made on first use on the walk's device."""
    copies = {}

    def decode(z: torch.Tensor) -> torch.Tensor:
        latent = process_out(z)
        if scale != 1.0:
            latent = F.interpolate(latent, scale_factor=scale, mode="bilinear", align_corners=False)
        dtype = getattr(vae, "vae_dtype", None) or torch.float32
        key = (z.device, dtype)
        if key not in copies:
            copies.clear()  # one copy at a time
            copies[key] = trainable_copy(vae.first_stage_model, z.device, dtype)
            if tile:  # the private copy keeps circular padding for good
                from ..models.target import pad_circularly  # noqa: PLC0415

                pad_circularly(copies[key])
        pixels = copies[key].decode(latent.to(dtype=dtype))
        return pixels.to(dtype=torch.float32)

    return Decoder(decode=decode, factor=max(1, round(factor * scale)))


def model_target(model, positive, negative, vae=None, decode_scale: float = 1.0, width: int = 512,
                 height: int = 512, name: str = "MODEL", tile: bool = False) -> WalkTarget:
    """The WALK_TARGET of ``model`` with its prompts, at ``width`` x ``height`` pixels (WalkSampler resizes);
    ``tile``: walked and decoded with circular padding (its ``tiled()``)."""
    fmt = latent_format(model)
    factor = downscale(model)
    lo, hi = sigma_range(model)
    source = ModelSource(model, positive, negative, vae, decode_scale, tile)
    decoder = None
    if vae is not None:
        decoder = vae_decoder(vae, fmt.process_out, factor, decode_scale, tile)
    channels = int(fmt.latent_channels)

    def at(w: int, h: int) -> WalkTarget:
        for label, value in (("width", w), ("height", h)):
            if value % factor or value // factor < MIN_LATENT:
                raise ValueError(f"TargetDistributionModel: {label}={value} px; expected a multiple of {factor} "
                                 f"(the model's latent cell) of at least {factor * MIN_LATENT}")
        return WalkTarget(
            name=name, denoiser=_not_here(name), space="latent", sigma_min=lo, sigma_max=hi,
            shape=(channels, h // factor, w // factor), resize=at, unconditional=_not_here(name),
            perturbed=_not_here(name),  # PAG, SEG, ... : the real one is the guider's view (comfy_guider.py)
            info={"model_source": source, "flow": is_flow(model.get_model_object("model_sampling")),
                  "pixels_per_latent": factor, "flow_sigma_cap": FLOW_SIGMA_CAP},
            decoder=decoder,
            tiled=lambda: model_target(model, positive, negative, vae, decode_scale, w, h, name + " (tiled)", True),
        )

    return at(width, height)


def source_of(target: WalkTarget) -> Optional[ModelSource]:
    """The ModelSource of a MODEL target, None for every other target."""
    return target.info.get("model_source") if isinstance(target.info, dict) else None

