"""Variants of classifier-free guidance that need only the denoiser's outputs: CFG-Zero*, TCFG, Mahiro, PerpNeg.

Each replaces a ``cfg`` term (each has the CFG scale w as its weight and is the conditional prediction at w = 1,
PerpNeg when its negative scale is 0 too). As every term, they read the running estimate D_c (the target's
conditional prediction when they come first) and the unconditional branch D_u at the same x and sigma; shapes
are [B, ...] and "per item" means over all non-batch dimensions of one batch item, so item i of a batch is
guided exactly as when walked alone.

Some papers state their rule on noise or velocity predictions. With both branches at the same x and sigma,
eps = (x - D) / sigma (and a flow model's velocity, the same up to a factor per sigma), so a rule on those is
written here on ``x - D``: the scale per sigma cancels in every projection and ratio below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F

from ..targets.base import WalkTarget
from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, needs_branch, per_item, register_term


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item inner product <a, b>, [B]."""
    return (a.flatten(1) * b.flatten(1)).sum(1)


def _ratio(num: torch.Tensor, den: torch.Tensor, where_zero: float) -> torch.Tensor:
    """num / den per item, ``where_zero`` where den is 0 (a zero vector has no direction to project on)."""
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), where_zero)


@register_term
@dataclass(frozen=True)
class CFGZeroStar(GuidanceTerm):
    """CFG-Zero* (Fan, Zheng, Yeh & Liu 2025, "CFG-Zero*: Improved Classifier-Free Guidance for Flow Matching
    Models", arXiv:2503.18886): an optimised scale on the unconditional prediction plus zero-init.

        s*  = <v_c, v_u> / ||v_u||^2                 (per item; v = x - D, the paper's velocity up to a factor)
        v   = (1 - w) s* v_u + w v_c,   D = x - v     (w = ``weight``)
        D   = x  while sigma is above ``zero_init``   (zero-init: the first part of the walk makes no move)

    s* is the least-squares factor that brings the unconditional prediction closest to the conditional one; s* = 1
    is plain cfg, and w = 1 is the conditional prediction whatever s*. ``zero_init`` is a fraction of the walk
    (log-linear in sigma, as start/end percent; 0 = off): while the term is active and sigma lies above that point
    the estimate is x itself, a zero velocity (flow models stay put; a variance-exploding walk keeps its noise).
    The paper zeroes the first solver step of 50 or so for flow models; on the pack's exact variance-exploding
    mixture zero-init leaves noise in the samples (docs/BENCHMARKS.md), so it is off by default.

    ComfyUI's CFGZeroStar node computes the same s* on x - D but multiplies the unconditional *denoised* estimate
    by it (D = (1 - w) s* D_u + w D_c) and has no zero-init; here s* multiplies the velocity, as in the paper.
    """

    kind: ClassVar[str] = "cfg_zero_star"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0
    zero_init: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.zero_init <= 1.0:
            raise invalid(self, "zero_init", self.zero_init, "a fraction of the walk 0..1 (0 = no zero-init)")

    def check(self, target) -> None:
        needs_branch(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        if self.zero_init > 0.0 and ctx.walk_sigmas is not None:
            above = self.sigma_at(self.zero_init, *ctx.walk_sigmas)
            if float(ctx.sigma.reshape(-1)[0]) > above:
                return ctx.x.to(denoised.dtype).expand_as(denoised).clone()  # zero velocity
        v_c = ctx.x - denoised  # [B, ...]
        v_u = ctx.x - ctx.unconditional
        s_star = per_item(_ratio(_dot(v_c, v_u), _dot(v_u, v_u), 1.0), v_u)
        return ctx.x - ((1.0 - self.weight) * s_star * v_u + self.weight * v_c)


@register_term
@dataclass(frozen=True)
class TCFG(GuidanceTerm):
    """Tangential damping CFG (Kwon, Kim, Jeong, Hsiao & Uh 2025, "TCFG: Tangential Damping Classifier-free
    Guidance", CVPR 2025, arXiv:2503.18137):

        A    = [e_u; e_c]                     (per item a 2 x N matrix of the two noise predictions, e = x - D)
        v1   = A's first right singular vector (its dominant, "normal" direction)
        e_u' = <e_u, v1> v1                   (the unconditional's tangential component, along v2, is dropped)
        D    = D_u' + w (D_c - D_u'),   D_u' = x - e_u'      (cfg with the damped unconditional, w = ``weight``)

    The unconditional prediction is shared by every condition; its component off the direction both predictions
    share is what the paper finds pulls samples off the conditional manifold. w = 1 is the conditional prediction.
    v1 is computed from the 2 x 2 Gram matrix A A^T (its top eigenvector e gives v1 = A^T e / ||A^T e||), exactly
    the SVD's, at the cost of three inner products per item.
    """

    kind: ClassVar[str] = "tcfg"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0

    def check(self, target) -> None:
        needs_branch(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        e_u = (ctx.x - ctx.unconditional).flatten(1)  # [B, N]
        e_c = (ctx.x - denoised).flatten(1)
        a = torch.stack([e_u, e_c], dim=1).double()  # [B, 2, N]
        gram = a @ a.transpose(1, 2)  # [B, 2, 2]
        top = torch.linalg.eigh(gram).eigenvectors[:, :, -1:]  # [B, 2, 1], eigenvalues ascending
        v1 = (a.transpose(1, 2) @ top).squeeze(-1)  # [B, N], along A's first right singular vector
        norm_sq = v1.square().sum(1)  # [B]
        coef = _ratio((e_u.double() * v1).sum(1), norm_sq, 0.0)  # <e_u, v1> / ||v1||^2
        damped = torch.where(per_item(norm_sq > 0, v1), per_item(coef, v1) * v1, e_u.double())
        uncond = ctx.x - damped.to(denoised.dtype).reshape(denoised.shape)
        return uncond + self.weight * (denoised - uncond)


def _signed_sqrt(t: torch.Tensor) -> torch.Tensor:
    return t.abs().sqrt() * t.sign()


@register_term
@dataclass(frozen=True)
class Mahiro(GuidanceTerm):
    """Mahiro (yoinked-h, "MaHiRo", ComfyUI pull request #5975, December 2024; ComfyUI's ``Mahiro`` node, shown
    as "Similarity-Adaptive Guidance" since 2026). No paper: the author's note is at
    huggingface.co/spaces/yoinked/blue-arxiv (2024-1208.1). It blends cfg with a plain amplification of the
    conditional prediction, by how much the two agree:

        cfg   = D_u + w (D_c - D_u),   leap = w D_c,   merge = (leap + cfg) / 2
        sim   = mean over positions of cos(ssqrt(w D_u), ssqrt(merge))  (cosine over dim 1, the channels;
                                                                          ssqrt(t) = sign(t) sqrt|t|)
        D     = (2 (sim + 1) cfg + (4 - 2 (sim + 1)) leap) / 4            (w = ``weight``)

    Where the unconditional agrees with the guided direction (sim -> 1) the result is cfg; where it disagrees
    (sim -> -1) it is the amplified conditional w D_c, "the direction of the positive prompt rather than the
    difference from the negative one". w = 1 is the conditional prediction. ``leap`` scales the estimate about 0,
    so the rule depends on where 0 lies (mid-grey for pixels). ComfyUI averages sim over the whole batch; here it is
    per item (the same numbers for a batch of one), so a batch item is guided as when walked alone.
    """

    kind: ClassVar[str] = "mahiro"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0

    def check(self, target) -> None:
        needs_branch(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        uncond, w = ctx.unconditional, self.weight
        cfg = uncond + w * (denoised - uncond)
        leap = w * denoised
        merge = (leap + cfg) / 2
        cos = F.cosine_similarity(_signed_sqrt(w * uncond), _signed_sqrt(merge), dim=1)  # [B, ...positions]
        sim = cos.reshape(cos.shape[0], -1).mean(1)  # [B]
        weight_cfg = per_item(2.0 * (sim + 1.0), denoised)
        return (weight_cfg * cfg + (4.0 - weight_cfg) * leap) / 4.0


def same_space(term: GuidanceTerm, field_name: str, other: Optional[WalkTarget], target) -> WalkTarget:
    """``other`` (a second target a term evaluates, e.g. PerpNeg's negative) at the target's size, or the error
    that says why it cannot serve: missing, another space or another shape."""
    if other is None:
        raise invalid(term, field_name, None, "a WALK_TARGET (connect a TargetDistribution)")
    if other.takes_size and len(target.shape) >= 2 and tuple(other.shape) != tuple(target.shape):
        per_cell = target.info.get("pixels_per_latent", 1) if isinstance(target.info, dict) else 1  # latent targets
        other = other.at_size(int(target.shape[-1]) * per_cell, int(target.shape[-2]) * per_cell)  # in pixels
    if other.space != target.space:
        raise invalid(term, field_name, f"{other.name} (space {other.space!r})",
                      f"a target in the walked target's space {target.space!r}")
    if tuple(other.shape) != tuple(target.shape):
        raise invalid(term, field_name, f"{other.name} (shape {tuple(other.shape)})",
                      f"a target with the walked target's shape {tuple(target.shape)}")
    return other


@register_term
@dataclass(frozen=True)
class PerpNeg(GuidanceTerm):
    """Perp-Neg (Armandpour, Sadeghian, Zheng, Sadeghian & Zhou 2023, "Re-imagine the Negative Prompt Algorithm:
    Transform 2D Diffusion into 3D, alleviate Janus problem and Beyond", arXiv:2304.04968): a negative prompt
    applied only perpendicular to the positive direction, so what the two prompts share is kept.

        pos  = D_c - D_u,   neg = D_n - D_u                       (D_u: the empty prompt / all classes)
        perp = neg - (<neg, pos> / ||pos||^2) pos                  (per item)
        D    = D_u + w (pos - s perp)                              (w = ``weight``, s = ``neg_scale``)

    D_n is the prediction of ``negative``, a second target of the same space and shape conditioned on what to
    avoid (the mixture conditioned on another class; a MODEL target whose positive prompt is the negative one),
    at the same x and sigma. D_u is the walked target's unconditional branch, which Perp-Neg takes to be the
    *empty* prompt (connect an empty prompt as the MODEL target's negative). The paper writes the negative weight
    absolute (w_neg = w s); s is relative to w as in ComfyUI's PerpNeg nodes, whose projection sums over the
    whole batch -- here it is per item. s = 0 is cfg with scale w; s = 0 and w = 1 the conditional prediction.
    The negative's evaluations are extra model calls (one per evaluation where the term is active).

    The negative target takes part in ``==`` but not in the hash (a target holds dicts) nor the repr.
    """

    kind: ClassVar[str] = "perp_neg"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 4.0
    neg_scale: float = 1.0
    negative: Optional[WalkTarget] = field(default=None, hash=False, repr=False)

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.neg_scale) and self.neg_scale >= 0.0):
            raise invalid(self, "neg_scale", self.neg_scale, "a finite value >= 0 (0 = plain cfg)")
        if self.negative is not None and not isinstance(self.negative, WalkTarget):
            raise invalid(self, "negative", type(self.negative).__name__,
                          "a WALK_TARGET conditioned on what to avoid")

    def check(self, target) -> None:
        needs_branch(self, target)
        same_space(self, "negative", self.negative, target)

    def start(self, target) -> WalkTarget:
        return same_space(self, "negative", self.negative, target)  # at the target's size, for this walk

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: WalkTarget) -> torch.Tensor:
        uncond = ctx.unconditional
        pos = denoised - uncond  # [B, ...]
        neg = state.denoiser(ctx.x, ctx.sigma, **ctx.extra) - uncond
        along = per_item(_ratio(_dot(neg, pos), _dot(pos, pos), 0.0), pos)
        perp = neg - along * pos
        return uncond + self.weight * (pos - self.neg_scale * perp)
