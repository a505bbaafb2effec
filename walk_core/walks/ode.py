"""Deterministic baselines: Euler and Heun on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma."""
from __future__ import annotations

import torch

from ..noise import ItemNoise
from .base import as_sigmas, batch_sigma, check_option, evaluate, register_walk, report
from .guard import MARKED_SHARE, TOLERANCE, guarded


@register_walk("euler", nfe=lambda steps, **_: steps, stochastic=False, renoise=True)
@torch.no_grad()
def euler(model, x, sigmas, extra_args=None, callback=None, disable=None, *, noise: ItemNoise | None = None):
    """Euler steps on the probability-flow ODE (Karras et al. 2022, eq. 4): one evaluation per step."""
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "euler")
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised, x = evaluate(model, x, batch_sigma(x, sigma), extra_args)  # x moves only under CFG++
        d = (x - denoised) / sigma  # dx/dsigma
        x = x + d * (sigma_next - sigma)
        report("euler", callback, i, x, sigma, sigma, denoised)
    return x


def trapezoid(x, d, x_euler, denoised, denoised_next, sigma, sigma_next, guided: bool):
    """Heun's correction of an Euler step sigma -> sigma_next, whose slope d = (x - D) / sigma is given.

    Plain: the mean of the slopes (x - D) / sigma at both ends (Karras et al. 2022). Guided: the mean of the two
    denoised estimates in the exponential-integrator form x' = (s'/s) x + (1 - s'/s) (D + D') / 2 (the data-
    prediction form DPM-Solver++ recommends under guidance): the slope at a sigma_next far below sigma divides
    the guided estimate's error at the Euler point by sigma_next, and at 5-10 levels with CFG 4 that threw most
    samples off the target; the data form weights it by at most 1/2.
    """
    if guided:
        ratio = sigma_next / sigma
        return x * ratio + (denoised + denoised_next) * ((1 - ratio) / 2)
    d_next = (x_euler - denoised_next) / sigma_next
    return x + (d + d_next) / 2 * (sigma_next - sigma)


def guarded_trapezoid(x, d, x_euler, denoised, denoised_next, sigma, sigma_next, guided: bool, guard: float):
    """:func:`trapezoid` checked against its embedded first-order estimate, the Euler step: per item the
    Euler step where the two disagree by more than ``guard`` (guard.py; on a guided denoiser 0.4x ``guard``)."""
    high = trapezoid(x, d, x_euler, denoised, denoised_next, sigma, sigma_next, guided)
    tolerance = guard * MARKED_SHARE if guided else guard
    return guarded(lambda k: x_euler, 2, float(sigma_next), denoised, tolerance, top=high)


@register_walk("heun", nfe=lambda steps, **_: max(2 * steps - 1, 1), stochastic=False)
@torch.no_grad()
def heun(model, x, sigmas, extra_args=None, callback=None, disable=None, *, guard: float = TOLERANCE,
         noise: ItemNoise | None = None):
    """Heun's second-order method (Karras et al. 2022, Algorithm 1); Euler on the last step to sigma = 0. On a
    guided denoiser the trapezoid averages the two denoised estimates instead of the two slopes; per item the
    Euler step where the trapezoid departs from it by more than ``guard`` (guard.py; 0 = off)."""
    check_option("heun", "guard", guard, 0.0)
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "heun")
    guided = getattr(model, "guided", False)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, batch_sigma(x, sigma), **extra_args)
        d = (x - denoised) / sigma
        x_euler = x + d * (sigma_next - sigma)
        if float(sigma_next) == 0:
            x = x_euler
        else:  # trapezoidal correction with the slope at sigma_next
            denoised_next = model(x_euler, batch_sigma(x, sigma_next), **extra_args)
            x = guarded_trapezoid(x, d, x_euler, denoised, denoised_next, sigma, sigma_next, guided, guard)
        report("heun", callback, i, x, sigma, sigma, denoised)
    return x
