"""A few-step schedule as free parameters: a softmax over log-sigma gaps, so every value of the parameters is a
valid schedule (descending, inside [sigma_min, sigma_max], starting at sigma_max, ending in 0).

A schedule of ``n`` levels is ``sigma_0 = sigma_max > sigma_1 > ... > sigma_(n-1) >= sigma_min`` and a final 0. In
``u = log(sigma_max / sigma) / log(sigma_max / sigma_min)`` (0 at sigma_max, 1 at sigma_min) it is ``n - 1`` positive
gaps plus a slack ``1 - u_(n-1)`` (how far above sigma_min the last level stays), ``n`` fractions that sum to 1:
``softmax(logits)``. LD3 (Tong et al., ICLR 2025) parameterises its learned time steps the same way.

A learned schedule is kept as its positions ``u_k`` and applied to any ``n`` and sigma range by
:func:`warp_positions`: exactly the learned levels for the learned ``n`` and range, a monotone interpolation of them
otherwise, so a saved schedule is an ordinary schedule function ``(n, sigma_min, sigma_max) -> sigmas``.
"""
from __future__ import annotations

import math

import torch

SLACK_FLOOR = 1e-4  # smallest fraction a gap or the slack gets when a fixed schedule is turned into logits


def sigmas_from_logits(logits: torch.Tensor, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """[n] logits -> n + 1 sigmas (float64 when the logits are; differentiable in the logits)."""
    fractions = torch.softmax(logits, dim=0)  # [n]: n - 1 gaps, then the slack
    u = torch.cat([logits.new_zeros(1), torch.cumsum(fractions[:-1], 0)])  # [n] positions of the levels
    span = math.log(sigma_max / sigma_min)
    sigmas = sigma_max * torch.exp(-span * u)
    return torch.cat([sigmas, logits.new_zeros(1)])


def logits_from_sigmas(sigmas: torch.Tensor, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """The logits whose schedule is ``sigmas`` (n + 1 values ending in 0), each fraction kept >= SLACK_FLOOR."""
    u = positions(sigmas, sigma_min, sigma_max)
    fractions = torch.cat([u[1:] - u[:-1], 1 - u[-1:]]).clamp_min(SLACK_FLOOR)
    logits = fractions.log()
    return logits - logits[-1]  # the slack's logit is 0: the free parameters are the n - 1 gaps'


def positions(sigmas: torch.Tensor, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """[n] positions u of the n positive levels of ``sigmas`` (n + 1 values, last 0) in [0, 1]."""
    levels = sigmas[:-1].to(torch.float64)
    if sigma_max == sigma_min:
        return torch.zeros_like(levels)
    return (torch.log(sigma_max / levels) / math.log(sigma_max / sigma_min)).clamp(0.0, 1.0)


def warp_positions(u: torch.Tensor, n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """A schedule of ``n`` levels on [sigma_min, sigma_max] from learned positions ``u`` ([m], u_0 = 0, ascending).

    n == m: exactly those positions. Otherwise position k of n is the learned curve at k (m - 1) / (n - 1),
    interpolated linearly between learned levels (n = 1: sigma_max alone). The last level's slack scales along."""
    m = u.numel()
    u = u.to(torch.float64)
    if n == m:
        out = u.clone()
    elif n == 1:
        out = u.new_zeros(1)
    else:
        if m == 1:  # one learned level carries no shape: uniform in log sigma down to sigma_min
            curve = torch.tensor([0.0, 1.0], dtype=torch.float64)
        else:
            curve = u
        t = torch.linspace(0, curve.numel() - 1, n, dtype=torch.float64)
        low = t.floor().long().clamp(max=curve.numel() - 2)
        out = curve[low] + (t - low) * (curve[low + 1] - curve[low])
    out = torch.cummax(out.clamp(0.0, 1.0), 0).values  # monotone whatever the file held
    sigmas = sigma_max * torch.exp(-math.log(sigma_max / sigma_min) * out) if sigma_max > sigma_min else \
        torch.full((n,), float(sigma_max), dtype=torch.float64)
    sigmas[0] = sigma_max
    return torch.cat([sigmas, sigmas.new_zeros(1)])
