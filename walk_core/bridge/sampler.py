"""Any walk of the pack as the function inside a ComfyUI SAMPLER (``comfy.samplers.KSAMPLER``).

ComfyUI calls ``fn(model, x, sigmas, extra_args=..., callback=..., disable=..., **extra_options)`` with x
already noised to sigmas[0] and ``extra_args['seed']`` the noise seed: the pack's walks have exactly that
signature and draw their step noise per item from ``seed + item``. What this adds: flow models are walked
through the exact change of variables of :mod:`.prediction`, with the callback's states mapped back.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch

from ..noise import ItemNoise
from ..walks import WALKS
from .prediction import FlowAsVE, find_model_sampling, is_flow


def step_noise(x: torch.Tensor, extra_args: Optional[dict]) -> ItemNoise:
    """The step noise of a walk run as a ComfyUI SAMPLER: per-item generators seeded ``seed + item`` (the seed
    ComfyUI passes in ``extra_args``), each advanced past one draw of an item's size first. ComfyUI's
    RandomNoise drew the initial noise from a generator seeded ``seed`` too; without the skip item 0's first
    step noise would repeat its initial noise."""
    noise = ItemNoise.from_seed(int((extra_args or {}).get("seed", 0)), x.shape[0])
    noise.randn(tuple(x.shape))
    return noise


def walk_sampler_function(walk: str, options: Optional[Dict[str, float]] = None,
                          noise: Optional[ItemNoise] = None) -> Callable[..., torch.Tensor]:
    """The SAMPLER function of walk ``walk`` with keyword ``options`` (only those the walk takes are used;
    an unknown walk name is an error listing the valid ones). ``noise``: the step noise source (WalkSampler
    passes the generators its initial noise came from, so the streams continue as in a headless walk);
    None = :func:`step_noise` from ComfyUI's seed."""
    spec = WALKS[walk]
    kept = {k: v for k, v in (options or {}).items() if k in spec.options}

    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None, **more):
        opts = {**kept, **{k: v for k, v in more.items() if k in spec.options}}
        opts["noise"] = noise if noise is not None else step_noise(x, extra_args)
        guider = getattr(model, "inner_model", None)  # ComfyUI hands KSamplerX0Inpaint, whose inner model is the GUIDER
        if not getattr(model, "guided", False) and guider_is_guided(model, extra_args):
            model = _Guided(model)  # a CFG-combined prediction: multistep walks keep a low order
        if getattr(guider, "walk_renoises", False):  # the pack's WalkGuider with a CFG++ term
            if is_flow(find_model_sampling(model)):
                raise ValueError(f"walk {walk}: CFG++ on a flow model (SD3, Flux, ...) is not supported; use CFG or "
                                 "APG there, or ComfyUI's euler_cfg_pp sampler")
            model = _Renoising(model, guider)
        if not is_flow(find_model_sampling(model)):
            return spec.fn(model, x, sigmas, extra_args=extra_args, callback=callback, disable=disable, **opts)
        flow = FlowAsVE(model)
        s = flow.sigmas(sigmas)

        def back(info):  # the callback sees the model's own convention
            if callback is not None:
                sigma = flow.t_of(torch.as_tensor(info["sigma"]))
                callback({**info, "x": flow.from_ve(info["x"], s[int(info["i"]) + 1]), "sigma": sigma,
                          "sigma_hat": flow.t_of(torch.as_tensor(info["sigma_hat"]))})

        y = spec.fn(flow, flow.to_ve(x, sigmas[0]), s, extra_args=extra_args, callback=back, disable=disable,
                    **opts)
        return flow.from_ve(y, s[-1])

    sample.walk_name = walk
    return sample


# model_options entries through which a patch bends ComfyUI's prediction (RescaleCFG, PAG, SAG, ...)
CFG_PATCHES = ("sampler_cfg_function", "sampler_pre_cfg_function", "sampler_post_cfg_function")


def guider_is_guided(model, extra_args: Optional[dict] = None) -> bool:
    """Whether the GUIDER behind a ComfyUI sampler's model combines predictions (its scale is not 1).

    ComfyUI hands a SAMPLER ``KSamplerX0Inpaint``, whose ``inner_model`` is the GUIDER. The pack's WalkGuider says
    itself (``walk_guided``: its chain has a term); ComfyUI's CFGGuider has ``cfg``, DualCFGGuider ``cfg1`` and
    ``cfg2``, BasicGuider ``cfg`` = 1. Guided when a scale differs from 1 or a patch in ``model_options`` acts on
    the prediction; a guider that shows no scale counts as guided. An unguided prediction keeps the multistep
    walks at full order (order 3 keeps 99 % of the fine detail at NFE 10 where order 2 keeps 67 %); either way
    every walk's step guard (walk_core/walks/guard.py) checks the steps themselves."""
    guider = getattr(model, "inner_model", None)
    told = getattr(guider, "walk_guided", None)
    if told is not None:
        guided = bool(told)
    else:
        scales = [getattr(guider, name) for name in ("cfg", "cfg1", "cfg2") if hasattr(guider, name)]
        if not scales:
            return True
        guided = any(not math.isclose(float(s), 1.0) for s in scales)
    options = (extra_args or {}).get("model_options") or {}
    return guided or any(options.get(key) for key in CFG_PATCHES)


class _Renoising:
    """A ComfyUI model whose GUIDER keeps a re-noising estimate (the pack's WalkGuider with a CFG++ term): gives the
    walks ``with_renoise`` (walks.base.evaluate). Calls and attribute reads pass through."""

    def __init__(self, model, guider):
        self.inner_model, self.guider = model, guider

    def __call__(self, *args, **kwargs):
        return self.inner_model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner_model, name)

    def with_renoise(self, x, sigma, **extra):
        denoised = self.inner_model(x, sigma, **extra)
        shift = self.guider.walk_renoise_shift()
        mask = extra.get("denoise_mask")
        if mask is not None:  # KSamplerX0Inpaint returns the init where the mask is 0: nothing to re-noise there
            shift = shift * mask
        return denoised, denoised - shift


class _Guided:
    """Marks a model as guided for the walks (attribute reads and calls pass through)."""

    guided = True

    def __init__(self, model):
        self.inner_model = model

    def __call__(self, *args, **kwargs):
        return self.inner_model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner_model, name)
