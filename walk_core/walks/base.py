"""What every walk shares: the registry, step reporting, the non-finite check.

A walk is ``walk(model, x, sigmas, extra_args=None, callback=None, disable=None, **options) -> x``
(the k-diffusion / ComfyUI SAMPLER convention): ``sigmas`` descend and end in 0, ``x`` starts at
``noise * sigmas[0]``, ``model(x, sigma[B], **extra_args)`` returns the denoised estimate.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import torch

from ..errors import WalkDivergedError
from ..registry import Registry


@dataclass(frozen=True)
class WalkSpec:
    """A walk function with its metadata.

    ``nfe(steps, **options)`` is the number of denoiser evaluations the walk makes on a schedule of
    ``steps`` noise levels (``len(sigmas) - 1``); ``options`` are its keyword defaults. ``renoise``: the walk
    takes its steps through :func:`evaluate`, so it can walk a chain with a re-noising term (CFG++).
    """

    fn: Callable[..., torch.Tensor]
    nfe: Callable[..., int]
    stochastic: bool
    doc: str
    options: Dict[str, float] = field(default_factory=dict)
    renoise: bool = False

    def __call__(self, model, x, sigmas, extra_args=None, callback=None, disable=None, **options):
        """Calling the spec is calling the walk: ``WALKS[name]`` is usable wherever a walk function is."""
        return self.fn(model, x, sigmas, extra_args=extra_args, callback=callback, disable=disable, **options)


WALKS: Registry[WalkSpec] = Registry("walk")


def register_walk(name: str, *, nfe: Callable[..., int], stochastic: bool, renoise: bool = False):
    """Decorator: register ``fn`` under ``name``; its keyword-only options become the spec's options.
    ``renoise=True``: the walk uses :func:`evaluate` for every step, so CFG++ chains may run on it."""

    def add(fn):
        params = inspect.signature(fn).parameters.values()
        options = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "noise"}
        doc = (inspect.getdoc(fn) or name).splitlines()[0]
        WALKS.register(name, WalkSpec(fn, nfe, stochastic, doc, options, renoise))
        fn.walk_name = name
        return fn

    return add


def steps_for_nfe(name: str, nfe: int, **options) -> int:
    """The largest number of noise levels whose walk ``name`` uses at most ``nfe`` evaluations (>= 1)."""
    spec = WALKS[name]
    steps = 1
    while spec.nfe(steps + 1, **options) <= nfe:
        steps += 1
    return steps


def batch_sigma(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A scalar sigma as the per-item ``[B]`` tensor the denoiser expects."""
    return sigma.to(x.dtype) * x.new_ones([x.shape[0]])


def evaluate(model, x: torch.Tensor, sigma: torch.Tensor, extra_args: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """(denoised, x_step): the denoised estimate D and the state a one-evaluation step starts from.

    A plain denoiser: ``x_step`` is ``x`` itself. A guided denoiser with a re-noising estimate R (CFG++, Chung et
    al. 2024; the chain sets ``with_renoise``): the step must keep D for the data and take its noise direction
    (x - R) / sigma from R, so it starts from x + (D - R) -- then (x_step - D) / sigma = (x - R) / sigma, and every
    step of the form x' = D + c (x_step - D) (Euler, ancestral, the exponential integrators) becomes the paper's
    x' = D + c (x - R). Walks registered with ``renoise=True`` call this; the others refuse such chains."""
    both = getattr(model, "with_renoise", None)
    if both is None:
        return model(x, sigma, **extra_args), x
    denoised, renoise = both(x, sigma, **extra_args)
    return denoised, x + (denoised - renoise)


def report(walk: str, callback, i: int, x: torch.Tensor, sigma, sigma_hat, denoised: torch.Tensor) -> None:
    """Stop on a non-finite state, then send the k-diffusion style step dict to ``callback``."""
    if not bool(torch.isfinite(torch.stack(torch.aminmax(x))).all()):  # NaN and inf reach min or max;
        raise WalkDivergedError(walk, i, float(sigma))  # ~10x cheaper than isfinite(x).all() on big states
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})


def ancestral_step(sigma, sigma_next, eta: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split a step sigma -> sigma_next into a deterministic part to sigma_down and fresh noise sigma_up.

    eta = 1 is the exact DDPM posterior (ancestral sampling); eta = 0 is the probability-flow ODE.
    sigma_down^2 + sigma_up^2 = sigma_next^2.
    """
    if float(sigma_next) == 0 or eta == 0:
        return sigma_next, sigma_next * 0
    sigma_up = torch.clamp(eta * torch.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2), max=sigma_next)
    sigma_down = torch.sqrt(sigma_next**2 - sigma_up**2)
    return sigma_down, sigma_up


def ancestral_move(x: torch.Tensor, denoised: torch.Tensor, sigma, sigma_next, eta: float, s_noise: float,
                   noise) -> torch.Tensor:
    """One ancestral step sigma -> sigma_next: Euler down to sigma_down, then fresh noise of sigma_up."""
    sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
    # x + (x - D) / sigma * (sigma_down - sigma) = D + (sigma_down / sigma) (x - D): one fused pass (lerp)
    x = torch.lerp(denoised, x, float(sigma_down / sigma))
    if float(sigma_up) > 0:
        x.add_(noise.randn_like(x), alpha=float(s_noise * sigma_up))  # x is the new tensor from lerp
    return x


def check_option(walk: str, name: str, value: float, lo: float, hi: float = math.inf) -> None:
    if not (lo <= value <= hi):
        raise ValueError(f"walk {walk}: {name}={value} is not allowed; expected {lo}..{hi}")


def multistep_order(walk: str, order, model) -> int:
    """A multistep walk's ``order`` option checked (an integer 0..4) and resolved: 0 = auto, 3 on a plain
    denoiser and 2 on one the guidance chain marks ``guided`` (high orders extrapolate a bent trajectory)."""
    check_option(walk, "order", order, 0, 4)
    if int(order) != order:
        raise ValueError(f"walk {walk}: order={order} is not allowed; expected an integer 0..4 (0 = auto)")
    return int(order) or (2 if getattr(model, "guided", False) else 3)


def push_history(history: list, sigma: float, value: torch.Tensor, breaks, order: int) -> list:
    """A multistep walk's history of (sigma, value) nodes after adding this level's: one node per sigma, and a
    fresh start when a guidance term switched on or off (a ``sigma_breaks`` value) since the last node, so no
    polynomial is fitted across the denoiser's jump; the last ``order`` nodes are kept."""
    if history and history[-1][0] == sigma:  # a repeated level (constant schedule)
        history = history[:-1]
    if history and any(sigma <= b <= history[-1][0] for b in breaks):
        history = []
    return (history + [(sigma, value)])[-order:]


def as_sigmas(sigmas, x: torch.Tensor, walk: str) -> torch.Tensor:
    """Validate the schedule: 1-D, at least two values, descending (non-increasing), ending in 0."""
    sigmas = torch.as_tensor(sigmas)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"walk {walk}: sigmas must be a 1-D tensor of >= 2 values; got shape {tuple(sigmas.shape)}")
    if float(sigmas[-1]) != 0:
        raise ValueError(f"walk {walk}: sigmas must end in 0; got {float(sigmas[-1]):.6g}")
    if bool((sigmas[1:] > sigmas[:-1]).any()) or bool((sigmas[:-1] <= 0).any()):
        raise ValueError(f"walk {walk}: sigmas must be positive and non-increasing before the final 0")
    return sigmas.to(device=x.device, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
