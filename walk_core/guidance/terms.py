"""The guidance terms registry and classifier-free guidance.

Every term is a frozen dataclass (a GuidanceTerm) registered by its ``kind``; a new term is one class
added to ``TERMS`` and one node in nodes/guidance.py.
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
    before cfg is amplified with it. w = 1 leaves the conditional prediction unchanged."""

    kind: ClassVar[str] = "cfg"
    weight: float = 4.0

    def check(self, target) -> None:
        needs_branch(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        uncond = ctx.unconditional
        return uncond + self.weight * (denoised - uncond)
