"""One call from a target to pictures: schedule, noise, guidance, walk, trajectory.

This is what the WalkSampler node (and the headless runner through it) calls; nodes only convert
layouts around it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from .guidance import GuidanceChain
from .limits import check_walk_shape
from .guidance.chain import GuidanceRecord
from .noise import item_seeds
from .noise_mix import walk_noise
from .schedules import SCHEDULES, make_sigmas
from .targets import WalkTarget
from .trajectory import Trajectory
from .walks import WALKS

log = logging.getLogger(__name__)

MAX_BATCH = 4096


@dataclass(frozen=True)
class WalkRequest:
    """Everything one walk needs. ``options`` go to the walk function (only those it takes)."""

    walk: str = "euler_ancestral"
    schedule: str = "karras"
    steps: int = 20
    seed: int = 0
    batch_size: int = 1
    sigma_min: float = 0.0  # 0 = the target's own
    sigma_max: float = 0.0  # 0 = the target's own
    options: Dict[str, float] = field(default_factory=dict)
    init: Optional[torch.Tensor] = None  # [B or 1, *shape] walk-space start image
    denoise: float = 1.0  # fraction of the schedule walked from init
    trajectory_every: int = 0
    mask: Optional[torch.Tensor] = None  # [B or 1, 1, H, W]: 1 = walk here, 0 = keep init (needs init)
    noise_share: float = 0.0  # fraction of the noise variance all items share (walk_core.noise_mix)
    share_seed: int = -1  # seed of the shared part; -1 = ``seed``
    wander: float = 0.0  # seed-space wander step along the batch (0 = off)


@dataclass
class WalkResult:
    x: torch.Tensor  # [B, *shape] final state
    seeds: List[int]
    sigmas: torch.Tensor
    trajectory: Trajectory
    nfe: int
    guidance: List[GuidanceRecord] = field(default_factory=list)  # per evaluation: each term's change


def _who(field_name: str, value, allowed: str) -> ValueError:
    return ValueError(f"run_walk: {field_name}={value!r} is not allowed; expected {allowed}")


def sigma_range(request: WalkRequest, target: WalkTarget) -> tuple:
    """(sigma_max, sigma_min): the request's overrides, or the target's own where they are 0."""
    return request.sigma_max or target.sigma_max, request.sigma_min or target.sigma_min


def walk_sigmas(request: WalkRequest, target: WalkTarget) -> torch.Tensor:
    """The schedule actually walked: the target's range (or the overrides), cut for denoise < 1."""
    hi, lo = sigma_range(request, target)
    if not 0 < lo <= hi or not math.isfinite(hi):
        raise _who("sigma range", (lo, hi), "0 < sigma_min <= sigma_max (0 means the target's own)")
    if not 0 < request.denoise <= 1:
        raise _who("denoise", request.denoise, "0 < denoise <= 1")
    total = request.steps if request.denoise >= 1 else max(request.steps, round(request.steps / request.denoise))
    sigmas = make_sigmas(request.schedule, total, lo, hi)
    return sigmas[-(request.steps + 1):]


def validate(request: WalkRequest) -> None:
    """Check names and ranges before any work (errors list what is allowed)."""
    WALKS[request.walk]  # unknown names list the valid ones
    SCHEDULES[request.schedule]
    if not 1 <= request.steps <= 10_000:
        raise _who("steps", request.steps, "1..10000")
    if not 1 <= request.batch_size <= MAX_BATCH:
        raise _who("batch_size", request.batch_size, f"1..{MAX_BATCH}")
    if request.trajectory_every < 0:
        raise _who("trajectory_every", request.trajectory_every, ">= 0")
    if not 0.0 <= request.noise_share <= 1.0:
        raise _who("noise_share", request.noise_share, "0..1")
    if not 0.0 <= request.wander <= 1.0:
        raise _who("wander", request.wander, "0..1 (0 = off)")
    if request.mask is not None and request.init is None:
        raise _who("mask", "given", "a mask together with an init picture (the part the mask keeps)")


def request_noise(request: WalkRequest, seeds: List[int]):
    """The walk's noise source: per-item generators, mixed when the request shares or wanders."""
    share_seed = request.seed if request.share_seed < 0 else request.share_seed
    return walk_noise(seeds, share=request.noise_share, share_seed=share_seed, wander=request.wander)


def masked(denoiser, init: torch.Tensor, mask: torch.Tensor, start_noise: torch.Tensor):
    """Inpainting: where ``mask`` is 0 the state is the init noised with the walk's own start noise at every
    call, and the estimate is the init itself, so the kept part stays the init and the walked part is
    denoised in its context (the scheme ComfyUI uses for a LATENT's noise mask)."""
    keep = 1.0 - mask

    def call(x, sigma, **extra):
        level = sigma.reshape((-1,) + (1,) * (x.ndim - 1)).to(x.dtype)
        x = x * mask + (init + level * start_noise) * keep
        return denoiser(x, sigma, **extra) * mask + init * keep

    for hint in ("guided", "sigma_breaks"):
        if hasattr(denoiser, hint):
            setattr(call, hint, getattr(denoiser, hint))
    both = getattr(denoiser, "with_renoise", None)
    if both is not None:  # CFG++: the re-noising estimate is the init where the mask keeps it, as the estimate is
        def with_renoise(x, sigma, **extra):
            level = sigma.reshape((-1,) + (1,) * (x.ndim - 1)).to(x.dtype)
            x = x * mask + (init + level * start_noise) * keep
            denoised, renoise = both(x, sigma, **extra)
            return denoised * mask + init * keep, renoise * mask + init * keep

        call.with_renoise = with_renoise
    return call


def check_renoise(walk: str, guidance: GuidanceChain) -> None:
    """A chain with a re-noising term (CFG++) runs only on walks that take their steps through
    walks.base.evaluate; any other walk would silently drop the term's re-noising."""
    if guidance.renoises and not WALKS[walk].renoise:
        kinds = ", ".join(sorted({t.kind for t in guidance.terms if t.renoises}))
        able = ", ".join(name for name in WALKS.names() if WALKS[name].renoise)
        raise ValueError(f"run_walk: walk={walk!r} cannot take the guidance term {kinds} (CFG++ changes the noise "
                         f"the walk steps with, which only one-evaluation steps of the form D + c (x - D) allow); "
                         f"expected one of {able}")


def run_walk(target: WalkTarget, request: WalkRequest, guidance: GuidanceChain = GuidanceChain(),
             progress: Optional[Callable[[int, int], None]] = None,
             step_hook: Optional[Callable[[dict], None]] = None, device=None) -> WalkResult:
    """Walk ``target`` as ``request`` says; returns the final state, per-item seeds and trajectory.

    ``progress(done, total)`` is called after every step; ``step_hook(info)`` sees the k-diffusion
    step dict (for previews and interrupts).
    """
    validate(request)
    # memory and pixels of this walk against the documented limits, before any state is allocated
    check_walk_shape("run_walk", target.shape, request.batch_size, request.steps, request.trajectory_every,
                     info=target.info, space=target.space, target=target.name)
    guidance.check(target)  # a term that cannot work on this target fails before any evaluation
    check_renoise(request.walk, guidance)
    spec = WALKS[request.walk]
    options = {k: v for k, v in request.options.items() if k in spec.options}
    sigmas = walk_sigmas(request, target)
    seeds = item_seeds(request.seed, request.batch_size)
    noise = request_noise(request, seeds)
    shape = (request.batch_size,) + tuple(target.shape)
    unit = noise.randn(shape, device=device)
    start = unit * sigmas[0].float()
    if request.init is not None:
        init = request.init.to(device=device, dtype=torch.float32)
        if tuple(init.shape[1:]) != tuple(target.shape):
            raise _who("init shape", tuple(init.shape[1:]), f"{tuple(target.shape)} (the target's shape)")
        if init.shape[0] not in (1, request.batch_size):
            raise _who("init batch", init.shape[0], f"1 or the batch size {request.batch_size}")
        start = init.expand(shape) + start
    elif target.start_mean is not None:  # centre pure noise on the target's mean (its sigma_max marginal)
        start = start + target.start_mean.to(start)
    n = len(sigmas) - 1
    trajectory = Trajectory(request.trajectory_every, n)
    calls = [0]

    def counted(x, sigma, **extra):
        calls[0] += 1
        return target.denoiser(x, sigma, **extra)

    hi, lo = sigma_range(request, target)
    guidance_records: List[GuidanceRecord] = trajectory.guidance  # per-term change norms, per evaluation
    model = guidance.wrap(target, hi, lo, denoiser=counted, records=guidance_records, seeds=seeds)
    mask = None
    if request.mask is not None:
        init = request.init.to(device=device, dtype=torch.float32).expand(shape)
        mask = request.mask.to(device=device, dtype=torch.float32)
        if mask.ndim != 4 or mask.shape[1] != 1 or tuple(mask.shape[-2:]) != tuple(shape[-2:]) \
                or mask.shape[0] not in (1, request.batch_size):
            raise _who("mask shape", tuple(mask.shape), f"[1 or {request.batch_size}, 1, {shape[-2]}, {shape[-1]}]")
        model = masked(model, init, mask, unit)

    def callback(info):
        trajectory(info)
        if step_hook is not None:
            step_hook(info)
        if progress is not None:
            progress(int(info["i"]) + 1, n)

    log.info("walk %s on %s: %d steps, sigma %.4g -> %.4g, batch %d, seeds %s", request.walk, target.name, n,
             float(sigmas[0]), float(sigmas[-2]) if n else 0.0, request.batch_size, seeds[:4])
    x = spec.fn(model, start, sigmas.to(start.device), callback=callback, noise=noise, **options)
    if mask is not None:  # the kept part is the init exactly, whatever the walk's last step
        x = x * mask + init * (1.0 - mask)
    return WalkResult(x=x, seeds=seeds, sigmas=sigmas, trajectory=trajectory, nfe=calls[0],
                      guidance=guidance_records)
