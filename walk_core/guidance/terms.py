"""The guidance terms registry and classifier-free guidance.

Every term is a frozen dataclass (a GuidanceTerm) registered by its ``kind``; a new term is one class
added to ``TERMS`` and one node in nodes/guidance.py. CFG lives here; its refinements (rescale, APG,
autoguidance) in cfg_family.py, dynamic thresholding in threshold.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Type

import torch

from ..registry import Registry
from .chain import GuidanceContext, GuidanceTerm

TERMS: Registry[Type[GuidanceTerm]] = Registry("guidance term")


def register_term(cls: Type[GuidanceTerm]) -> Type[GuidanceTerm]:
    TERMS.register(cls.kind, cls)
    return cls


def invalid(term: GuidanceTerm, field_name: str, value, allowed: str) -> ValueError:
    """The error for a parameter out of range: names the term, the field, the value and what is allowed."""
    return ValueError(f"GuidanceStep ({term.kind}): {field_name}={value!r} is not allowed; expected {allowed}")


def weight_unused(term: GuidanceTerm) -> None:
    """For terms without a weight of their own: refuse a weight rather than silently ignore it."""
    if term.weight != 1.0:
        raise invalid(term, "weight", term.weight,
                      "1 (this term has no weight; fade it with start/end percent and the schedule)")


def per_item(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ...] broadcastable against ``like`` [B, ...]."""
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def needs_branch(term: GuidanceTerm, target) -> None:
    """The check of every term that extrapolates from the unconditional branch."""
    if getattr(target, "unconditional", None) is None:
        raise ValueError(
            f"GuidanceStep ({term.kind}): target {target.name!r} has no conditional branch to guide with; "
            "choose a class on the mixture target (its 'class' input) or use a MODEL target with prompts"
        )


@register_term
@dataclass(frozen=True)
class CFG(GuidanceTerm):
    """Classifier-free guidance (Ho & Salimans 2022): D = D_u + w (D_c - D_u), w = ``weight``.

    ``D_c`` is the running estimate (the target's conditional prediction when cfg comes first), so a term
    before cfg is amplified with it. w = 1 leaves the conditional prediction unchanged. A target with a
    ``cfg_formula`` (a MODEL patched with its own cfg function) has that formula applied instead, with
    ``weight`` as its scale."""

    kind: ClassVar[str] = "cfg"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0

    def check(self, target) -> None:
        needs_branch(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        uncond = ctx.unconditional
        formula = getattr(ctx.target, "cfg_formula", None)
        if formula is not None:  # the model's own cfg function (a ComfyUI patch such as RescaleCFG)
            return formula(denoised, uncond, self.weight, ctx.x, ctx.sigma, **ctx.extra)
        return uncond + self.weight * (denoised - uncond)
