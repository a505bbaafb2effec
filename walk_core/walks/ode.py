"""Deterministic baselines: Euler and Heun on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma."""
from __future__ import annotations

import torch

from ..noise import ItemNoise
from .base import as_sigmas, batch_sigma, register_walk, report


@register_walk("euler", nfe=lambda steps, **_: steps, stochastic=False)
@torch.no_grad()
def euler(model, x, sigmas, extra_args=None, callback=None, disable=None, *, noise: ItemNoise | None = None):
    """Euler steps on the probability-flow ODE (Karras et al. 2022, eq. 4): one evaluation per step."""
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "euler")
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, batch_sigma(x, sigma), **extra_args)
        d = (x - denoised) / sigma  # dx/dsigma
        x = x + d * (sigma_next - sigma)
        report("euler", callback, i, x, sigma, sigma, denoised)
    return x


@register_walk("heun", nfe=lambda steps, **_: max(2 * steps - 1, 1), stochastic=False)
@torch.no_grad()
def heun(model, x, sigmas, extra_args=None, callback=None, disable=None, *, noise: ItemNoise | None = None):
    """Heun's second-order method (Karras et al. 2022, Algorithm 1); Euler on the last step to sigma = 0."""
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "heun")
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, batch_sigma(x, sigma), **extra_args)
        d = (x - denoised) / sigma
        x_euler = x + d * (sigma_next - sigma)
        if float(sigma_next) == 0:
            x = x_euler
        else:  # trapezoidal correction with the slope at sigma_next
            d_next = (x_euler - model(x_euler, batch_sigma(x, sigma_next), **extra_args)) / sigma_next
            x = x + (d + d_next) / 2 * (sigma_next - sigma)
        report("heun", callback, i, x, sigma, sigma, denoised)
    return x
