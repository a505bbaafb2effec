"""WalkSampler: a WALK_TARGET walked into pictures."""
from __future__ import annotations

from dataclasses import replace

from ..walk_core import GuidanceChain, WalkRequest, run_walk
from ..walk_core.noise import SEED_MAX
from ..walk_core.trajectory import walk_trajectory
from .comfy_hooks import interrupt_check, progress_hook
from .comfy_model import source_of
from .inputs import pick
from .layout import image_to_walk, mask_to_walk, walk_to_image
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET, WALK_TRAJECTORY
from .walk_limits import check_before_walk, declared_problem, walk_problem


def _options(walk: str, eta, s_noise, churn, snr, corrector_steps, order=0) -> dict:
    """Map the node's walk parameters onto the walk's keyword options (run_walk keeps those it takes)."""
    options = {"eta": eta, "s_noise": s_noise, "s_churn": churn, "corrector_steps": corrector_steps}
    if snr > 0:  # 0 = the walk's own default
        options["snr"] = snr
    if order > 0:  # 0 = the walk's own default
        options["order"] = order
    return options


def _walk_size(target, width: int, height: int, init_latent=None, init_image=None) -> tuple:
    """(width, height) in pixels the walk will have: an init's size where one is given, else the inputs'."""
    if init_latent is not None:
        factor = target.info.get("pixels_per_latent", 1) if target.space == "latent" else 1
        return int(init_latent["samples"].shape[-1]) * factor, int(init_latent["samples"].shape[-2]) * factor
    if init_image is not None and target.space != "latent":
        return int(init_image.shape[2]), int(init_image.shape[1])
    return width, height


class WalkSampler:
    DESCRIPTION = (
        "Walks from noise to a target distribution with the chosen random walk and schedule, steered by an "
        "optional guidance chain. Outputs the pictures, the same as a LATENT (walk-space samples plus per-item "
        "seeds), the walk's trajectory as a batch of x-hat-0 snapshots, and the walk itself (sigma per step, "
        "each guidance term's change, the snapshots) for Walk Picture."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "LATENT", "IMAGE", WALK_TRAJECTORY)
    RETURN_NAMES = ("image", "latent", "trajectory", "walk_trajectory")
    OUTPUT_TOOLTIPS = (
        "The final pictures (pixel targets).",
        "The final walk state as a LATENT ({'samples': [B, C, H, W]}, with 'seeds': the per-item seeds).",
        "x-hat-0 snapshots every trajectory_every steps, time-major ([T * B] images).",
        "The walk for Walk Picture: sigma per step, each guidance term's change per evaluation, the snapshots.",
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
                "mask": ("MASK", {"tooltip": (
                    "Inpainting: walk only where the mask is 1 and keep the init picture/latent where it is 0 "
                    "(the kept part is re-noised to every step's level, so the walked part fits it). Needs an "
                    "init; on a MODEL target it becomes the LATENT's noise mask.")}),
                "noise_share": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                    "Fraction of the noise variance all items of the batch share (initial and step noise): 0 = "
                    "independent items, higher = items that resemble each other. Item i is still reproducible "
                    "alone: seed + i with the same noise_share and share_seed.")}),
                "share_seed": ("INT", {"default": -1, "min": -1, "max": SEED_MAX, "tooltip": (
                    "Seed of the shared noise part; -1 = the seed input (set it to the first item's seed to remake "
                    "one item of a batch alone).")}),
                "wander": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                    "Seed-space wander along the batch: item k's noise = cos(a) x item k-1's + sin(a) x fresh, "
                    "a = wander x 90 degrees, so the batch changes smoothly item to item (an animation). 0 = off "
                    "(independent items).")}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, sigma_min=None, sigma_max=None):
        """The sigma range's order, from the literal inputs. Only the inputs this check needs are listed: ComfyUI
        repeats a refusal under every input listed here and skips its own min/max checks for them. The walk's
        memory is checked by the headless runner at validation (VALIDATE_LITERALS) and by the node before it
        allocates anything."""
        problem = declared_problem(cls, sigma_min=sigma_min, sigma_max=sigma_max)
        if problem:
            return problem
        if sigma_min is None or sigma_max is None:
            return True
        if sigma_min > 0 and sigma_max > 0 and sigma_min > sigma_max:
            return (f"the sigma range is reversed: sigma_min {sigma_min} is above sigma_max {sigma_max}; "
                    "expected sigma_min <= sigma_max (0 = the target's own)")
        return True

    @classmethod
    def VALIDATE_LITERALS(cls, width=None, height=None, batch_size=None, steps=None, trajectory_every=None,
                          **_others):
        """Headless only (walk_core.runner.validate): pixels and the walk's memory from the literal inputs."""
        return walk_problem(cls, "WalkSampler", width=width, height=height, batch=batch_size, steps=steps,
                            trajectory_every=trajectory_every)

    def sample(self, target, walk, schedule, steps, seed, batch_size, width, height, sigma_max, sigma_min,
               eta, s_noise, churn, snr, corrector_steps, order, denoise, trajectory_every,
               guidance=None, init_image=None, init_latent=None, mask=None, noise_share=0.0, share_seed=-1,
               wander=0.0):
        request = WalkRequest(
            walk=walk, schedule=schedule, steps=steps, seed=seed, batch_size=batch_size, sigma_min=sigma_min,
            sigma_max=sigma_max, options=_options(walk, eta, s_noise, churn, snr, corrector_steps, order),
            denoise=denoise, trajectory_every=trajectory_every, noise_share=noise_share,
            share_seed=share_seed, wander=wander,
        )
        check_before_walk("WalkSampler", target, *_walk_size(target, width, height, init_latent, init_image),
                          batch_size, steps, trajectory_every)
        if source_of(target) is not None:  # a ComfyUI MODEL: walked through ComfyUI's sampling
            if mask is not None:
                if init_latent is None:
                    raise ValueError("WalkSampler: mask without init_latent on a MODEL target; connect the latent "
                                     "to keep (VAE Encode) to init_latent")
                init_latent = {**init_latent, "noise_mask": mask}
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
        walk_mask = None
        if mask is not None:
            if init is None:
                raise ValueError("WalkSampler: mask without an init; connect the picture to keep to init_image")
            walk_mask = mask_to_walk(mask, tuple(init.shape[-2:]), "WalkSampler: mask")
        request = replace(request, init=init, denoise=denoise, mask=walk_mask)
        result = run_walk(target, request, guidance or GuidanceChain(), progress=progress_hook(steps),
                          step_hook=interrupt_check())
        latent = {"samples": result.x.cpu(), "seeds": list(result.seeds)}
        if noise_share > 0:  # what remakes item i alone: seed + i with this share and share seed
            latent.update(noise_share=noise_share, share_seed=seed if share_seed < 0 else share_seed)
        frames = result.trajectory.denoised_frames()
        if target.space == "pixels":
            image, pictures = walk_to_image(result.x), frames
        else:  # other latent targets have no decoder: show the first three channels
            image, pictures = walk_to_image(result.x[:, :3].tanh()), frames[:, :3].tanh()
        return (image, latent, walk_to_image(pictures), walk_trajectory(result.trajectory, result.sigmas, pictures))

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
