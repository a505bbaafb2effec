"""Restart sampling (Xu et al. 2023, "Restart Sampling for Improving Generative Processes", NeurIPS 2023).

ODE walks make small discretisation errors but carry every error they make to the end; SDE walks contract
accumulated errors with their noise but need many steps. Restart takes the ODE walk (Heun, Karras et al. 2022)
down the schedule and, at one level t_min of it, *restarts*: it adds fresh noise that takes the state back up
to a level t_max,

    x <- x + s_noise * sqrt(t_max^2 - t_min^2) * z,      z ~ N(0, I) from the item's own generator,

and walks the ODE down from t_max to t_min again in ``restart_steps`` Heun steps (a Karras rho = 7 spacing of
[t_min, t_max]); ``restart_count`` times in all, then on down the schedule. The large noise of the jump
contracts the error accumulated above t_min (Xu et al., Theorem 2), and the ODE keeps the discretisation error
small -- the SDE's anchor at a moderate number of evaluations.

The restart level t_min is the schedule's level nearest ``restart_min`` (in log sigma; never the first level
nor the final 0), and t_max = t_min * restart_max / restart_min, so a schedule through ``restart_min`` jumps
exactly to ``restart_max``. The defaults are the paper's CIFAR-10 setting ([0.06, 0.30], 3 steps, twice), for
data in [-1, 1] with sigma_data = 0.5 -- the pack's pixel space. The restarts never take more evaluations than
the main walk: a schedule of ``steps`` levels gets min(restart_count, (2 steps - 1) // (2 restart_steps))
restarts -- by default none below 4 levels (NFE 5 and less), one from 4 levels (NFE 13), two from 7 (NFE 25).

Every Heun step, the main walk's and the restart's, is guarded (guard.py): per item the Euler step where the
trapezoid departs from it by more than ``guard``.
"""
from __future__ import annotations

import math

import torch

from ..noise import ItemNoise, noise_for
from .base import as_sigmas, batch_sigma, check_option, register_walk, report
from .guard import TOLERANCE
from .ode import guarded_trapezoid

RESTART_MIN, RESTART_MAX = 0.06, 0.30  # Xu et al.'s CIFAR-10 restart interval [t_min, t_max]
RESTART_STEPS, RESTART_COUNT = 3, 2  # Heun steps per restart and restarts (their N_restart and K)
RHO = 7.0  # the spacing of a restart's levels (Karras et al. 2022)


def restarts(steps: int, restart_steps, restart_count) -> int:
    """How many restarts a schedule of ``steps`` levels gets: ``restart_count``, or as many as take at most the
    main walk's 2 steps - 1 evaluations (2 per restart Heun step: t_min > 0), whichever is fewer."""
    if steps < 2:
        return 0
    return min(int(restart_count), (2 * steps - 1) // (2 * int(restart_steps)))


def _restart_nfe(steps, restart_steps=RESTART_STEPS, restart_count=RESTART_COUNT, **_):
    return max(2 * steps - 1, 1) + 2 * int(restart_steps) * restarts(steps, restart_steps, restart_count)


def restart_index(levels, restart_min: float) -> int:
    """The index of the level nearest ``restart_min`` in log sigma among levels[1:-1] (the schedule's positive
    levels after the first)."""
    inner = range(1, len(levels) - 1)
    return min(inner, key=lambda i: (abs(math.log(levels[i] / restart_min)), i))


def restart_levels(t_min: float, t_max: float, steps: int) -> list:
    """``steps`` + 1 levels from t_max down to t_min, Karras-spaced (rho = 7)."""
    hi, lo = t_max ** (1 / RHO), t_min ** (1 / RHO)
    return [(hi + j / steps * (lo - hi)) ** RHO for j in range(steps)] + [t_min]


def heun_step(model, x, sigma, sigma_next, extra_args: dict, guided: bool, guard: float):
    """One guarded Heun step sigma -> sigma_next (Euler when sigma_next = 0); returns (x, denoised at sigma)."""
    denoised = model(x, batch_sigma(x, sigma), **extra_args)
    d = (x - denoised) / sigma
    x_euler = x + d * (sigma_next - sigma)
    if float(sigma_next) == 0:
        return x_euler, denoised
    denoised_next = model(x_euler, batch_sigma(x, sigma_next), **extra_args)
    return guarded_trapezoid(x, d, x_euler, denoised, denoised_next, sigma, sigma_next, guided, guard), denoised


@register_walk("restart", nfe=_restart_nfe, stochastic=True)
@torch.no_grad()
def restart(model, x, sigmas, extra_args=None, callback=None, disable=None, *,
            restart_min: float = RESTART_MIN, restart_max: float = RESTART_MAX, restart_steps: int = RESTART_STEPS,
            restart_count: int = RESTART_COUNT, s_noise: float = 1.0, guard: float = TOLERANCE,
            noise: ItemNoise | None = None):
    """Restart sampling (Xu et al. 2023): Heun down the schedule; at the level nearest ``restart_min``, fresh
    noise up to t_max = t_min restart_max / restart_min and ``restart_steps`` Heun steps back, ``restart_count``
    times (at most as many as take no more evaluations than the main walk)."""
    check_option("restart", "restart_min", restart_min, 1e-6)
    check_option("restart", "restart_max", restart_max, restart_min)
    check_option("restart", "restart_steps", restart_steps, 1, 1000)
    check_option("restart", "restart_count", restart_count, 0, 1000)
    check_option("restart", "s_noise", s_noise, 0.0)
    check_option("restart", "guard", guard, 0.0)
    for name, value in (("restart_steps", restart_steps), ("restart_count", restart_count)):
        if int(value) != value:
            raise ValueError(f"walk restart: {name}={value} is not allowed; expected a whole number")
    extra_args = extra_args or {}
    sigmas = as_sigmas(sigmas, x, "restart")
    noise = noise_for(x, extra_args, noise)
    guided = getattr(model, "guided", False)
    levels = [float(s) for s in sigmas]
    n = len(levels) - 1
    count = restarts(n, restart_steps, restart_count)
    at = restart_index(levels, restart_min) if count else -1
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        if i == at:
            t_min = levels[i]
            inner = restart_levels(t_min, t_min * restart_max / restart_min, int(restart_steps))
            jump = s_noise * math.sqrt(max(inner[0] ** 2 - t_min ** 2, 0.0))
            for _ in range(count):
                x = x + noise.randn_like(x) * jump  # back up to t_max (a new tensor: the caller's x is kept)
                for hi, lo in zip(inner[:-1], inner[1:]):  # and the ODE down to t_min again
                    x, _ = heun_step(model, x, sigmas.new_tensor(hi), sigmas.new_tensor(lo), extra_args, guided,
                                     guard)
        x, denoised = heun_step(model, x, sigma, sigma_next, extra_args, guided, guard)
        report("restart", callback, i, x, sigma, sigma, denoised)
    return x
