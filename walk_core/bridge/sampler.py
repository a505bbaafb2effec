"""Any walk of the pack as the function inside a ComfyUI SAMPLER (``comfy.samplers.KSAMPLER``).

ComfyUI calls ``fn(model, x, sigmas, extra_args=..., callback=..., disable=..., **extra_options)`` with x
already noised to sigmas[0] and ``extra_args['seed']`` the noise seed: the pack's walks have exactly that
signature and draw their step noise per item from ``seed + item``. What this adds: flow models are walked
through the exact change of variables of :mod:`.prediction`, with the callback's states mapped back.
"""
from __future__ import annotations

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
        if not getattr(model, "guided", False):
            model = _Guided(model)  # ComfyUI's predictions are CFG-combined: multistep walks keep a low order
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


class _Guided:
    """Marks a model as guided for the walks (attribute reads and calls pass through)."""

    guided = True

    def __init__(self, model):
        self.inner_model = model

    def __call__(self, *args, **kwargs):
        return self.inner_model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner_model, name)
