"""WalkSampler: a WALK_TARGET walked into pictures."""
from __future__ import annotations

from dataclasses import replace

import torch

from ..walk_core import GuidanceChain, WalkRequest, run_walk
from .comfy_hooks import interrupt_check, progress_hook
from .comfy_model import source_of
from .inputs import pick
from .layout import image_to_walk, walk_to_image
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET


def _options(walk: str, eta, s_noise, churn, snr, corrector_steps, order=0) -> dict:
    """Map the node's walk parameters onto the walk's keyword options (run_walk keeps those it takes)."""
    options = {"eta": eta, "s_noise": s_noise, "s_churn": churn, "corrector_steps": corrector_steps}
    if snr > 0:  # 0 = the walk's own default
        options["snr"] = snr
    if order > 0:  # 0 = the walk's own default
        options["order"] = order
    return options


class WalkSampler:
    DESCRIPTION = (
        "Walks from noise to a target distribution with the chosen random walk and schedule, steered by an "
        "optional guidance chain. Outputs the pictures, the same as a LATENT (walk-space samples plus per-item "
        "seeds), and the walk's trajectory as a batch of x-hat-0 snapshots."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "LATENT", "IMAGE")
    RETURN_NAMES = ("image", "latent", "trajectory")
    OUTPUT_TOOLTIPS = (
        "The final pictures (pixel targets).",
        "The final walk state as a LATENT ({'samples': [B, C, H, W]}, with 'seeds': the per-item seeds).",
        "x-hat-0 snapshots every trajectory_every steps, time-major ([T * B] images).",
    )
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The distribution to walk towards (a TargetDistribution node)."}),
                **pick("walk", "schedule", "steps", "seed", "batch_size", "width", "height", "sigma_max",
                       "sigma_min", "eta", "s_noise", "churn", "snr", "corrector_steps", "order", "denoise",
                       "trajectory_every"),
            },
            "optional": {
                "guidance": (WALK_GUIDANCE, {"tooltip": "A guidance chain (GuidanceStep nodes); none = unguided."}),
                "init_image": ("IMAGE", {"tooltip": (
                    "Start from this picture noised to the level set by denoise (img2img); pixel targets.")}),
                "init_latent": ("LATENT", {"tooltip": (
                    "Start from this LATENT noised to the level set by denoise; wins over init_image.")}),
            },
        }

    def sample(self, target, walk, schedule, steps, seed, batch_size, width, height, sigma_max, sigma_min,
               eta, s_noise, churn, snr, corrector_steps, order, denoise, trajectory_every,
               guidance=None, init_image=None, init_latent=None):
        request = WalkRequest(
            walk=walk, schedule=schedule, steps=steps, seed=seed, batch_size=batch_size, sigma_min=sigma_min,
            sigma_max=sigma_max, options=_options(walk, eta, s_noise, churn, snr, corrector_steps, order),
            denoise=denoise, trajectory_every=trajectory_every,
        )
        if source_of(target) is not None:  # a ComfyUI MODEL: walked through ComfyUI's sampling
            return self._model(target, request, guidance, width, height, init_latent, init_image)
        init = None
        if init_latent is not None:
            init = init_latent["samples"].float()
        elif init_image is not None:
            init = image_to_walk(init_image, "WalkSampler: init_image")
        if init is not None:
            target = target.at_size(init.shape[-1], init.shape[-2])
        else:
            target = target.at_size(width, height)
            denoise = 1.0  # nothing to keep without an init
        request = replace(request, init=init, denoise=denoise)
        result = run_walk(target, request, guidance or GuidanceChain(), progress=progress_hook(steps),
                          step_hook=interrupt_check())
        latent = {"samples": result.x.cpu(), "seeds": list(result.seeds)}
        frames = result.trajectory.denoised_frames()
        if target.space == "pixels":
            return (walk_to_image(result.x), latent, walk_to_image(frames))
        # other latent targets have no decoder: show the first three channels
        return (walk_to_image(result.x[:, :3].tanh()), latent, walk_to_image(frames[:, :3].tanh()))

    @staticmethod
    def _model(target, request, guidance, width, height, init_latent, init_image):
        if init_image is not None and init_latent is None:
            raise ValueError("WalkSampler: init_image on a MODEL target; the model walks latents -- encode the "
                             "picture with VAEEncode and connect it to init_latent")
        if init_latent is not None:
            factor = target.info["pixels_per_latent"]
            height, width = (int(n) * factor for n in init_latent["samples"].shape[-2:])
        from .comfy_walk import walk_model  # noqa: PLC0415  (needs ComfyUI, which a MODEL target implies)
        return walk_model(target.at_size(width, height), request, guidance or GuidanceChain(), init_latent)
