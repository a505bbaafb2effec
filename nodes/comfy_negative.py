"""A second prompt of the same MODEL as a branch of the chain: PerpNeg's ``negative`` on a MODEL target.

A term with a ``negative`` WALK_TARGET (walk_core/guidance/cfg_variants.py, PerpNeg) evaluates it at the walked
x and sigma. When the walked target is a ComfyUI MODEL, that negative is a MODEL target too (the same model,
its positive prompt being the negative one); it has no denoiser of its own outside ComfyUI's sampling. The
guider then carries its prompt as one more prepared cond (ComfyUI's PerpNegGuider does the same with its empty
prompt) and the term gets a view of the negative whose denoiser is ComfyUI's prediction for that cond.
Nothing here imports ComfyUI.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict

from ..walk_core.guidance import GuidanceChain
from ..walk_core.targets import WalkTarget
from .comfy_model import source_of


def _key(index: int) -> str:
    return f"walk_negative_{index}"


def _model_negatives(chain: GuidanceChain):
    """(index, term, its MODEL negative target) for every term whose ``negative`` is a MODEL target."""
    for index, term in enumerate(chain.terms):
        negative = getattr(term, "negative", None)
        if isinstance(negative, WalkTarget) and source_of(negative) is not None:
            yield index, term, negative


def negative_conds(chain: GuidanceChain, source) -> Dict[str, object]:
    """The extra prompts the guider must prepare (key -> CONDITIONING); refuses a negative of another model."""
    conds = {}
    for index, term, negative in _model_negatives(chain):
        other = source_of(negative)
        if other.model is not source.model:
            raise ValueError(f"GuidanceStep ({term.kind}): negative {negative.name!r} uses another MODEL than the "
                             "walked target; connect the same MODEL to both Target Distribution (MODEL) nodes (ComfyUI "
                             "samples one model per guider), with the negative prompt as the second one's positive")
        conds[_key(index)] = other.positive
    return conds


def with_negative_branches(chain: GuidanceChain, target: WalkTarget, branch: Callable) -> GuidanceChain:
    """``chain`` with each MODEL negative replaced by a view of the walked ``target``'s shape whose denoiser is
    ``branch(key, x, sigma, **extra)``, ComfyUI's prediction for the prompt stored under ``key``."""
    terms = list(chain.terms)
    for index, term, negative in _model_negatives(chain):
        view = dataclasses.replace(negative, denoiser=functools.partial(branch, _key(index)), resize=None,
                                   shape=tuple(target.shape))
        terms[index] = dataclasses.replace(term, negative=view)
    return GuidanceChain(tuple(terms))
