"""The step guard of the higher-order walks: embedded lower-order estimates as an error check.

A higher-order step (Heun's trapezoid, an Adams or ER-SDE polynomial through past evaluations) extrapolates
the denoiser along the step. Where the denoiser is smooth that is what makes it accurate; under strong
classifier-free guidance at few steps the guided denoiser bends hard between evaluations, the extrapolation
overshoots and the guided denoiser amplifies the error at the next evaluation. Measured on the exact class
mixture, the walks called as plain k-diffusion samplers on a CFG-combined denoiser (bench/cfg_stability.py):
``heun`` and ``edm`` threw samples to 420-1,300x the exact spread at scale 4 and 5-10 evaluations, ``adams``
and ``er_sde`` diverged or reached 5,000x at scale 8. The pack's guidance chain marks its denoiser
(``model.guided``) and the walks then use safer forms, but a walk cannot rely on being told, so every such
step checks itself.

A step of order p also forms its estimates of orders p - 1, ..., 1 from the evaluations it already has (no
extra denoiser call); order 1 is the Euler / DDIM step, a convex combination of x and the denoised estimate,
which stayed stable at every scale and budget measured. Per item, successive orders must agree:

    RMS(x_k - x_(k-1)) <= tolerance * (0.1 sigma_next + RMS(D)),

D the step's denoised estimate -- the item's own data scale, so the check needs no knowledge of the data;
the 0.1 sigma_next term keeps the limit open at high noise where D is near the data mean. The item takes the
highest order k whose pairs 2..k all agree (the order selection of variable-order Adams codes, with a fixed
number of steps: the order drops instead of the step being refused). Where every item keeps its order the
result is bit-identical to the unguarded step. On a denoiser marked as guided, Heun's trapezoid takes its data
form (ode.trapezoid), whose correction is smaller and passes the check more often: it is checked at 0.4x the
tolerance (with the full tolerance the marked ``heun`` left the target at scale 8 and 4 levels).

The tolerance (``guard`` option, default 0.25; 0 = off) was chosen on the exact targets at NFE 5-20: on smooth
denoisers (cfg 1) the 768-D mixture's order-3 ``adams`` result at NFE 10 and 20 is bit-identical to the
unguarded walk and the 2-D ring's sliced W2 moves within its floor's spread. Tolerances of 0.15 or less cost
order 3 accuracy there (94-98 % of the fine detail at NFE 10 instead of 99.5 %); a limit that grows with the
whole sigma_next (tolerance 0.2 * (sigma_next + RMS(D))) let ``adams`` and ``er_sde`` leave the target at scale 8
and NFE 7-10 (600-1,000x the exact spread). Figures: docs/walks.md.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

TOLERANCE = 0.25  # the default ``guard`` option of the higher-order walks (0 switches the guard off)
SIGMA_WEIGHT = 0.1  # the share of sigma_next in the limit (the rest is the denoised estimate's RMS)
MARKED_SHARE = 0.4  # Heun's trapezoid on a marked (guided) denoiser is checked at this share of the tolerance


SAMPLE, BLOCK = 4096, 256  # elements per item the check reads, in contiguous blocks spread over the item


def sample(t: torch.Tensor) -> torch.Tensor:
    """A fixed subset of each item's elements, [B, blocks, BLOCK] (all of them, [B, n], for items of at most
    2 SAMPLE): SAMPLE / BLOCK contiguous blocks evenly spread over the item. The check reads RMS values only,
    which such a subset of a large picture estimates to about a percent, so the guard costs a few small
    reductions a step instead of full passes over the state (contiguous blocks: a strided subset would still
    touch every cache line)."""
    flat = t.reshape(t.shape[0], -1)
    if flat.shape[1] <= 2 * SAMPLE:
        return flat
    blocks = flat.shape[1] // BLOCK
    return flat[:, : blocks * BLOCK].reshape(t.shape[0], blocks, BLOCK)[:, :: blocks // (SAMPLE // BLOCK)]


def _rms(t: torch.Tensor) -> torch.Tensor:
    """[B] root mean square of each item."""
    return t.flatten(1).square().mean(1).sqrt()


def _per_item(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape([-1] + [1] * (x.ndim - 1))


def guarded(estimate: Callable[[int], torch.Tensor], order: int, sigma_next: float, denoised: torch.Tensor,
            tolerance: float, top: Optional[torch.Tensor] = None,
            probe: Optional[Callable[[int], torch.Tensor]] = None) -> torch.Tensor:
    """The step's result with the order lowered per item where successive orders disagree.

    ``estimate(k)`` is the step's estimate of order k (1..``order``), formed only for the orders some item
    takes; ``top`` is ``estimate(order)`` when the caller already has it. ``probe(k)``: the same estimate on the
    :func:`sample` of its inputs (default: ``sample(estimate(k))``), which the check reads. ``sigma_next``: the
    noise level the step lands on; ``denoised`` [B, ...]: the step's denoised estimate (its RMS is the item's
    data scale). ``tolerance`` 0 (or order 1) returns the order-``order`` estimate unchanged.
    """
    high = estimate(order) if top is None else top
    if tolerance <= 0 or order <= 1:
        return high
    if probe is None:
        probe = lambda k: sample(high if k == order else estimate(k))  # noqa: E731
    limit = tolerance * (SIGMA_WEIGHT * sigma_next + _rms(sample(denoised)))  # [B]
    probes = [probe(k) for k in range(1, order + 1)]
    chosen = torch.ones_like(limit, dtype=torch.long)  # [B] the highest order whose every lower pair agrees
    agree = torch.ones_like(limit, dtype=torch.bool)
    for k in range(2, order + 1):
        agree &= _rms(probes[k - 1] - probes[k - 2]) <= limit
        chosen += agree.long()
    if bool((chosen == order).all()):
        return high
    result = high
    for k in range(order - 1, 0, -1):
        take = chosen == k
        if bool(take.any()):
            result = torch.where(_per_item(take, result), estimate(k), result)
    return result
