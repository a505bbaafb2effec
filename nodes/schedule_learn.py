"""Learn Walk Schedule: a few-step schedule fitted to a target (walk_core.schedule_learning), output as ComfyUI
SIGMAS and as a schedule name WalkSampler takes, and saved as a file the schedule registry loads by name.

Inside ComfyUI the files live in ``models/walk_schedules`` (registered here with the engine, which may not import
ComfyUI); headless in ``<output>/walk_schedules``; ``$WALK_SCHEDULES_DIR`` overrides both."""
from __future__ import annotations

import logging
from dataclasses import replace
import torch

from ..walk_core import WALKS, GuidanceChain
from ..walk_core.schedule_learning import LearnSpec, learn_schedule
from ..walk_core.schedule_learning.files import save_schedule
from .comfy_hooks import interrupt_check
from .comfy_model import source_of
from .inputs import pick
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET
from .walk_limits import check_before_walk

log = logging.getLogger(__name__)
WHO = "LearnWalkSchedule"


DETERMINISTIC = [name for name, spec in WALKS.items() if not spec.stochastic]


class LearnWalkSchedule:
    DESCRIPTION = (
        "Learns the noise levels of a few-step walk for this target (LD3-style, Tong et al. ICLR 2025): the levels "
        "are fitted so the walk at this NFE lands where a many-step walk lands from the same noise, and checked on "
        "held-out noise against the fixed schedules. Outputs SIGMAS (for SamplerCustomAdvanced or any SIGMAS input) "
        "and the saved schedule's name; the file (models/walk_schedules inside ComfyUI) appears in WalkSampler's "
        "schedule list as learned:<name> once the pack is loaded again.")
    CATEGORY = f"{CATEGORY}/schedules"
    RETURN_TYPES = ("SIGMAS", "STRING", "STRING")
    RETURN_NAMES = ("sigmas", "schedule_name", "report")
    OUTPUT_TOOLTIPS = (
        "The learned schedule as ComfyUI SIGMAS (the target's sigma units, last 0).",
        "The saved schedule's name, learned:<name>: pick it in WalkSampler's schedule list (listed once the pack "
        "is loaded again: a ComfyUI restart, or the next headless run).",
        "How it was learned: held-out error to the many-step walk, against every fixed schedule.")
    FUNCTION = "learn"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The target to learn the schedule for (any TargetDistribution)."}),
                "walk": (DETERMINISTIC, {"default": "adams", "tooltip": (
                    "The walk the schedule is for (deterministic walks only: a stochastic walk does not follow the "
                    "many-step walk from the same noise). Use the same walk in WalkSampler or Walk as SAMPLER.")}),
                "nfe": ("INT", {"default": 8, "min": 1, "max": 100, "tooltip": (
                    "Denoiser evaluations of the walk the schedule is for (adams/euler: one per level; heun: two).")}),
                "name": ("STRING", {"default": "learned_schedule", "tooltip": (
                    "File name of the saved schedule (letters, digits, _ - .); a taken name gets _2, _3, ...")}),
                "samples": ("INT", {"default": 32, "min": 1, "max": 4096, "tooltip": (
                    "Noise samples the schedule is fitted on (as many again are held out to check it). More = "
                    "a schedule that generalises better, slower.")}),
                "evaluations": ("INT", {"default": 200, "min": 0, "max": 10000, "tooltip": (
                    "Few-step walks of the samples the search may spend (0 = keep the best fixed schedule).")}),
                "minutes": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 600.0, "step": 0.5, "tooltip": (
                    "Stop the search after this long (0 = no time limit; evaluations still limit it).")}),
                "teacher_steps": ("INT", {"default": 64, "min": 2, "max": 1000, "tooltip": (
                    "Levels of the many-step adams walk the schedule is fitted to.")}),
                **pick("seed", "width", "height", "sigma_max", "sigma_min"),
            },
            "optional": {
                "guidance": (WALK_GUIDANCE, {"tooltip": (
                    "Learn for the walk under this guidance chain (none = unguided).")}),
            },
        }

    def learn(self, target, walk, nfe, name, samples, evaluations, minutes, teacher_steps, seed, width, height,
              sigma_max, sigma_min, guidance=None):
        spec = LearnSpec(walk=walk, nfe=nfe, sigma_min=sigma_min, sigma_max=sigma_max, teacher_steps=teacher_steps,
                         train_samples=samples, val_samples=samples, seed=seed, evaluations=evaluations,
                         minutes=minutes, chunk=min(samples, 16))
        spec.check()
        from ..walk_core.schedule_learning.files import check_name  # noqa: PLC0415

        check_name(name, WHO)  # before any walk
        # memory: the starts and teacher outputs of all samples are kept (about a walk of 2 x samples items)
        check_before_walk(WHO, target, width, height, 2 * samples, teacher_steps, 0)
        chain = guidance or GuidanceChain()
        check = interrupt_check()

        def progress(done, budget, best):
            if check is not None:
                check({"i": done})

        if source_of(target) is not None:
            result = _learn_on_model(target.at_size(width, height), spec, chain, progress)
        else:
            result = learn_schedule(target.at_size(width, height), spec, chain if chain.terms else None, progress)
        path = save_schedule(result, name, who=WHO)
        log.info("%s: %s -> %s", WHO, result.summary(), path)
        return (result.sigmas.to(torch.float32), "learned:" + path.name[: -len(".safetensors")], result.summary())


def _learn_on_model(target, spec: LearnSpec, chain, progress):
    """A ComfyUI MODEL target: ComfyUI loads the model and prepares the prompts through the pack's GUIDER, whose
    SAMPLER is the learning itself (it is handed ComfyUI's denoiser once and walks it as often as it needs)."""
    import comfy.samplers  # noqa: PLC0415  (only present inside ComfyUI)

    from ..walk_core.bridge import find_model_sampling, is_flow  # noqa: PLC0415
    from .comfy_guider import make_guider  # noqa: PLC0415

    box = {}

    def learn_inside(model, x, sigmas, extra_args=None, callback=None, disable=None, **_):
        if is_flow(find_model_sampling(model)):
            raise ValueError(f"{WHO}: the MODEL is a flow model (SD3, Flux); learned schedules are for models with "
                             "x = x0 + sigma * noise (SD1.5, SDXL, ...) so far")
        extra = extra_args or {}

        def denoiser(xs, sigma, **_more):
            return model(xs, sigma, **extra)

        walked = replace(target, denoiser=denoiser, shape=tuple(x.shape[1:]), info={}, resize=None)
        box["result"] = learn_schedule(walked, spec, None, progress)
        return x

    guider = make_guider(target, chain)
    latent = torch.zeros((spec.chunk or spec.train_samples,) + tuple(target.shape))
    hi, lo = spec.sigma_max or target.sigma_max, spec.sigma_min or target.sigma_min
    guider.sample(torch.zeros_like(latent), latent, comfy.samplers.KSAMPLER(learn_inside),
                  torch.tensor([hi, lo, 0.0]), seed=spec.seed)
    return box["result"]
