"""WalkSampler on a MODEL target: the walk run through ComfyUI's own sampling machinery.

The walk becomes a ComfyUI SAMPLER (walk_core.bridge), the target and chain a GUIDER (comfy_guider), and
ComfyUI's ``guider.sample`` does the rest exactly as for KSampler: model loading, prompt preparation, the
init latent's scaling, the noise mask (inpainting), the model's noise convention. What WalkSampler adds:
the schedule and noise of the pack (per-item generators seeded ``seed + i``, drawn on the CPU, recorded in
the LATENT), x-hat-0 previews and the interrupt check at every step, the trajectory, and pictures through
the VAE when one is connected. ComfyUI is imported here only inside the functions.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Optional

import torch

from ..walk_core import GuidanceChain, WalkRequest
from ..walk_core.bridge import walk_sampler_function
from ..walk_core.noise import item_seeds
from ..walk_core.sample import request_noise, validate, walk_sigmas
from ..walk_core.targets import WalkTarget
from ..walk_core.trajectory import Trajectory, walk_trajectory
from .comfy_guider import make_guider
from .comfy_hooks import model_preview
from .comfy_model import circular_padding, source_of
from .layout import image_to_walk

log = logging.getLogger(__name__)


def _comfy():
    import comfy.model_management  # noqa: PLC0415  (only present inside ComfyUI)
    import comfy.sample  # noqa: PLC0415
    import comfy.samplers  # noqa: PLC0415
    import comfy.utils  # noqa: PLC0415
    return comfy


def start_latent(source, request: WalkRequest, target: WalkTarget, init_latent: Optional[dict]) -> tuple:
    """(latent dict to return, latent samples [B, C, h, w] to start from, noise mask or None)."""
    comfy = _comfy()
    shape = (request.batch_size,) + tuple(target.shape)
    if init_latent is None:
        return {}, torch.zeros(shape), None
    samples = comfy.sample.fix_empty_latent_channels(source.model, init_latent["samples"])
    if tuple(samples.shape[1:]) != tuple(target.shape):
        raise ValueError(f"WalkSampler: init_latent of shape {tuple(samples.shape[1:])}; expected "
                         f"{tuple(target.shape)} (the model's latent channels at this size)")
    if samples.shape[0] not in (1, request.batch_size):
        raise ValueError(f"WalkSampler: init_latent holds {samples.shape[0]} latents; expected 1 or the batch "
                         f"size {request.batch_size}")
    return dict(init_latent), samples.expand(shape).contiguous(), init_latent.get("noise_mask")


def diffusion_model(model) -> torch.nn.Module:
    """The network inside a ModelPatcher (what circular padding patches for a tiled walk)."""
    return getattr(model.model, "diffusion_model", model.model)


def rgb_preview(model, latent: torch.Tensor) -> torch.Tensor:
    """A rough IMAGE of unscaled latents without a VAE: the latent format's RGB factors, else 3 channels."""
    fmt = model.get_model_object("latent_format")
    factors = getattr(fmt, "latent_rgb_factors", None)
    if factors is None:
        rgb = latent[:, :3].float().tanh()
    else:
        scaled = fmt.process_in(latent.float())
        rgb = torch.einsum("bchw,cr->brhw", scaled, torch.tensor(factors, dtype=torch.float32))
        bias = getattr(fmt, "latent_rgb_factors_bias", None)
        if bias is not None:
            rgb = rgb + torch.tensor(bias, dtype=torch.float32).view(1, 3, 1, 1)
    return ((rgb.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).contiguous()


def to_image(source, latent: torch.Tensor) -> torch.Tensor:
    """Unscaled latents -> IMAGE [B, H, W, 3]: the VAE when connected, else the RGB preview."""
    if source.vae is None:
        return rgb_preview(source.model, latent)
    with circular_padding(source.vae.first_stage_model if source.tile else None):
        return source.vae.decode(latent)[..., :3].float().cpu()


def walk_model(target: WalkTarget, request: WalkRequest, chain: GuidanceChain,
               init_latent: Optional[dict] = None) -> tuple:
    """Run ``request`` on a MODEL target inside ComfyUI; returns (IMAGE, LATENT, trajectory IMAGE,
    WalkTrajectory)."""
    import latent_preview  # noqa: PLC0415  (ComfyUI's)

    comfy = _comfy()
    validate(request)
    source = source_of(target)
    out, latent_image, mask = start_latent(source, request, target, init_latent)
    denoise = request.denoise if init_latent is not None else 1.0
    sigmas = walk_sigmas(replace(request, denoise=denoise), target)
    seeds = item_seeds(request.seed, request.batch_size)
    noise = request_noise(request, seeds)
    initial = noise.randn(tuple(latent_image.shape))  # CPU, per item: item i equals a run with seed + i
    sampler = comfy.samplers.KSAMPLER(walk_sampler_function(request.walk, request.options, noise=noise))
    guider = make_guider(target, chain)
    steps = len(sigmas) - 1
    preview = model_preview(latent_preview, source.model, steps)  # an XY plot's one bar when inside one
    trajectory = Trajectory(request.trajectory_every, steps)
    guider.records = trajectory.guidance  # each guidance term's change per evaluation, for Walk Picture

    def callback(step, x0, x, total):
        comfy.model_management.throw_exception_if_processing_interrupted()
        if request.trajectory_every:
            trajectory({"i": step, "x": x, "denoised": x0, "sigma": sigmas[min(step, steps - 1)]})
        preview(step, x0, x, total)

    log.info("walk %s on MODEL: %d steps, sigma %.4g -> %.4g, batch %d, seeds %s", request.walk, steps,
             float(sigmas[0]), float(sigmas[-2]), request.batch_size, seeds[:4])
    with circular_padding(diffusion_model(source.model) if source.tile else None):
        samples = guider.sample(initial, latent_image, sampler, sigmas, denoise_mask=mask, callback=callback,
                                disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=request.seed)
    samples = samples.to(comfy.model_management.intermediate_device()).float()
    out.update({"samples": samples, "seeds": list(seeds)})
    if request.noise_share > 0:
        out.update(noise_share=request.noise_share,
                   share_seed=request.seed if request.share_seed < 0 else request.share_seed)
    image = to_image(source, samples)
    frames = trajectory.denoised_frames()
    if frames is None:  # trajectory_every 0: the last x-hat-0 is the result itself (no second decode)
        pictures = image
    else:
        process_out = source.model.get_model_object("latent_format").process_out
        pictures = to_image(source, process_out(frames))
    return image, out, pictures, walk_trajectory(trajectory, sigmas, image_to_walk(pictures, "WalkSampler"))
