"""The two ways a schedule's logits are fitted: gradient descent where the walk is differentiable, and a
derivative-free simplex search (Nelder & Mead 1965) where it is not.

Both minimise ``loss(logits) -> float`` (the few-step walk's distance to the teacher on the training noise),
remember the best point they evaluated, and stop at an evaluation or time budget.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

log = logging.getLogger(__name__)

Progress = Optional[Callable[[int, int, float], None]]  # (evaluations, budget, best loss)


@dataclass
class Best:
    """The best point seen and how many evaluations it took."""

    logits: torch.Tensor
    loss: float
    evaluations: int = 0
    stopped: str = "budget"


class _Budget:
    def __init__(self, evaluations: int, seconds: float, progress: Progress):
        self.evaluations, self.seconds, self.progress = evaluations, seconds, progress
        self.start, self.used = time.perf_counter(), 0

    def spent(self) -> str:
        """Why to stop ('' = go on)."""
        if self.used >= self.evaluations:
            return "evaluations"
        if self.seconds > 0 and time.perf_counter() - self.start >= self.seconds:
            return "time"
        return ""


def nelder_mead(loss: Callable[[torch.Tensor], float], start: torch.Tensor, best: Best, evaluations: int,
                seconds: float = 0.0, step: float = 0.5, tolerance: float = 1e-7, progress: Progress = None) -> Best:
    """Minimise ``loss`` over the free logits ``start`` [d] with the Nelder-Mead simplex (standard coefficients:
    reflect 1, expand 2, contract 1/2, shrink 1/2), restarting the simplex around the best point when it collapses
    before the budget is spent. ``best`` is updated in place and returned."""
    budget = _Budget(evaluations, seconds, progress)
    d = start.numel()

    def f(z: torch.Tensor) -> float:
        value = loss(z)
        budget.used += 1
        if value < best.loss:
            best.logits, best.loss = z.clone(), value
        if budget.progress is not None:
            budget.progress(budget.used, budget.evaluations, best.loss)
        return value

    centre = start.clone()
    while not budget.spent():
        simplex = [centre] + [centre + step * torch.eye(d, dtype=centre.dtype)[i] for i in range(d)]
        values = [f(z) for z in simplex]
        while not budget.spent():
            order = sorted(range(d + 1), key=values.__getitem__)
            simplex, values = [simplex[i] for i in order], [values[i] for i in order]
            if values[-1] - values[0] <= tolerance * max(abs(values[0]), 1e-30):
                break  # collapsed: restart around the best point with a smaller simplex
            mean = torch.stack(simplex[:-1]).mean(0)
            reflected = mean + (mean - simplex[-1])
            fr = f(reflected)
            if fr < values[0]:
                expanded = mean + 2 * (mean - simplex[-1])
                fe = f(expanded)
                simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
            elif fr < values[-2]:
                simplex[-1], values[-1] = reflected, fr
            else:
                inside = fr >= values[-1]
                contracted = mean + 0.5 * ((simplex[-1] if inside else reflected) - mean)
                fc = f(contracted)
                if fc < min(fr, values[-1]):
                    simplex[-1], values[-1] = contracted, fc
                else:  # shrink towards the best point
                    for i in range(1, d + 1):
                        if budget.spent():
                            break
                        simplex[i] = simplex[0] + 0.5 * (simplex[i] - simplex[0])
                        values[i] = f(simplex[i])
        centre, step = best.logits.clone(), step * 0.5
        if step < 1e-4:
            best.stopped = "converged"
            break
    best.evaluations += budget.used
    if best.stopped != "converged":
        best.stopped = budget.spent() or "budget"
    return best


def gradient_descent(loss_and_grad: Callable[[torch.Tensor], tuple], start: torch.Tensor, best: Best,
                     evaluations: int, seconds: float = 0.0, lr: float = 0.05, progress: Progress = None) -> Best:
    """Minimise with Adam (Kingma & Ba 2015) on autograd gradients through the walk; each step counts as one
    evaluation. ``loss_and_grad(z) -> (loss float, gradient [d])``."""
    budget = _Budget(evaluations, seconds, progress)
    z = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    while not budget.spent():
        value, grad = loss_and_grad(z.detach())
        budget.used += 1
        if value < best.loss:
            best.logits, best.loss = z.detach().clone(), value
        if progress is not None:
            progress(budget.used, budget.evaluations, best.loss)
        optimiser.zero_grad()
        z.grad = grad.to(z)
        optimiser.step()
    best.evaluations += budget.used
    best.stopped = budget.spent()
    return best
