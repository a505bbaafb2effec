"""Stochastic reverse-SDE walks: ancestral Euler and EDM's churned Heun."""
from __future__ import annotations

import math

import torch

from ..noise import ItemNoise, noise_for
from .base import ancestral_move, as_sigmas, batch_sigma, check_option, evaluate, register_walk, report
from .guard import TOLERANCE
from .ode import guarded_trapezoid


@register_walk("euler_ancestral", nfe=lambda steps, **_: steps, stochastic=True, renoise=True)
@torch.no_grad()
def euler_ancestral(model, x, sigmas, extra_args=None, callback=None, disable=None, *,
                    eta: float = 1.0, s_noise: float = 1.0, noise: ItemNoise | None = None):
    """Ancestral sampling (Ho et al. 2020 in sigma form): an Euler step down to sigma_down, then fresh
    noise sigma_up; eta scales the fresh noise (0 = Euler ODE), s_noise its amplitude."""
    check_option("euler_ancestral", "eta", eta, 0.0)
    check_option("euler_ancestral", "s_noise", s_noise, 0.0)
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "euler_ancestral")
    noise = noise_for(x, extra_args, noise)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised, x = evaluate(model, x, batch_sigma(x, sigma), extra_args)  # x moves only under CFG++
        x = ancestral_move(x, denoised, sigma, sigma_next, eta, s_noise, noise)
        report("euler_ancestral", callback, i, x, sigma, sigma, denoised)
    return x


def _edm_nfe(steps, **_):
    return max(2 * steps - 1, 1)


@register_walk("edm", nfe=_edm_nfe, stochastic=True)
@torch.no_grad()
def edm(model, x, sigmas, extra_args=None, callback=None, disable=None, *,
        s_churn: float = 40.0, s_tmin: float = 0.05, s_tmax: float = 50.0, s_noise: float = 1.0,
        guard: float = TOLERANCE, noise: ItemNoise | None = None):
    """EDM stochastic sampler (Karras et al. 2022, Algorithm 2): raise sigma by gamma = min(S_churn/N,
    sqrt2 - 1) inside [S_tmin, S_tmax] with fresh noise of scale S_noise, then a Heun step down (on a guided
    denoiser its correction averages denoised estimates: see ``ode.trapezoid``); per item the Euler step where
    the correction departs from it by more than ``guard`` (guard.py; 0 = off)."""
    check_option("edm", "guard", guard, 0.0)
    check_option("edm", "s_churn", s_churn, 0.0)
    check_option("edm", "s_noise", s_noise, 0.0)
    check_option("edm", "s_tmin", s_tmin, 0.0)
    check_option("edm", "s_tmax", s_tmax, s_tmin)
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "edm")
    noise = noise_for(x, extra_args, noise)
    guided = getattr(model, "guided", False)
    n = len(sigmas) - 1
    gamma_max = min(s_churn / n, math.sqrt(2) - 1)
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        # Algorithm 2, lines 4-6: churn -- add noise to move up to sigma_hat = sigma (1 + gamma)
        gamma = gamma_max if s_tmin <= float(sigma) <= s_tmax else 0.0
        sigma_hat = sigma * (1 + gamma)
        if gamma > 0:
            x = x + noise.randn_like(x) * (s_noise * torch.sqrt(sigma_hat**2 - sigma**2))
        # lines 7-8: Euler step from sigma_hat
        denoised = model(x, batch_sigma(x, sigma_hat), **extra_args)
        d = (x - denoised) / sigma_hat
        x_next = x + d * (sigma_next - sigma_hat)
        # lines 9-11: second-order correction unless stepping to 0
        if float(sigma_next) != 0:
            denoised_next = model(x_next, batch_sigma(x, sigma_next), **extra_args)
            x_next = guarded_trapezoid(x, d, x_next, denoised, denoised_next, sigma_hat, sigma_next, guided, guard)
        x = x_next
        report("edm", callback, i, x, sigma, sigma_hat, denoised)
    return x
