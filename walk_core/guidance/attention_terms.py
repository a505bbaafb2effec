"""TPG, NAG and PLADIS: terms that change the network's attention or tokens (model insides, MODEL targets only).

Like PAG (perturbed.py) they ask the target for a ``perturbed`` prediction of the conditional prompt; what they do
with it differs:

* TPG guides *away* from it, as PAG: D <- D + w (D_c - D_tpg).
* NAG and PLADIS are better versions of the conditional prediction itself -- the network run with its
  cross-attention changed -- so they *replace* the conditional part of the running estimate:
  D <- D + (D_c' - D_c). First in a chain, D becomes D_c' and a cfg term after them extrapolates from the
  unconditional prediction towards D_c' (as NAG's paper combines NAG with CFG); after a cfg term their change is
  added without being amplified. Put them before cfg.

Each costs one extra evaluation of the conditional prompt per step while active (PLADIS and NAG in their own
implementations change the one ordinary pass instead; in a chain the plain conditional prediction is still
what the other terms read).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Tuple

import torch

from .chain import GuidanceContext, GuidanceTerm
from .perturbed import SPARSE_FUNCTIONS, Perturbation, PerturbedTerm, needs_insides, parse_layers
from .terms import invalid, register_term

SEED_STREAM = 0x7490  # TPG's permutations: a stream of their own, apart from the walk's noise


def shuffle_seeds(ctx: GuidanceContext, batch: int) -> Tuple[int, ...]:
    """Per item, a seed for this evaluation's token permutations: the walk's item seed (seed + i; i when unknown)
    mixed with the noise level, so each step shuffles differently and item i does not depend on the batch."""
    seeds = ctx.seeds if ctx.seeds is not None else tuple(range(batch))
    level = int(round(float(ctx.sigma.reshape(-1)[0]) * 1e6))
    return tuple((int(s) * 1_000_003 + level + SEED_STREAM) % (2 ** 63) for s in seeds)


@register_term
@dataclass(frozen=True)
class TPG(PerturbedTerm):
    """Token perturbation guidance (Rajabi, Mehraban, Sadat & Taati 2025, "Token Perturbation Guidance for Diffusion
    Models", NeurIPS 2025, arXiv:2506.10036): the perturbed prediction shuffles the tokens of the hidden states
    entering the transformer blocks of ``layers`` (a random permutation of the positions, norm-preserving; new at
    every step), which keeps the global statistics but breaks the local structure; guiding away from it acts like
    CFG and needs no prompt. D <- D + w (D_c - D_tpg), w = ``weight`` (the paper: 3). The authors' SDXL code
    shuffles the transformer blocks d6-d23 of the down path -- in ComfyUI's names most of input:7 and all of
    input:8 (the default here; this term picks whole layers, every transformer block in them).
    Item i's permutations come from the walk's seed + i. One extra evaluation of the conditional prompt per step
    while active."""

    kind: ClassVar[str] = "tpg"
    weight: float = 3.0
    layers: str = "input:7, input:8"

    def __post_init__(self):
        super().__post_init__()
        parse_layers(self, self.layers)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        if self.weight == 0.0:
            return denoised
        shuffle = Perturbation("token_shuffle", parse_layers(self, self.layers), term=self.kind,
                               seeds=shuffle_seeds(ctx, ctx.x.shape[0]))
        worse = ctx.target.perturbed(ctx.x, ctx.sigma, shuffle, **ctx.extra)
        return denoised + self.weight * (ctx.conditional - worse)


class ReplacingTerm(GuidanceTerm):
    """D <- D + (D_c' - D_c): the conditional prediction replaced by the one :meth:`perturbation` describes."""

    def perturbation(self) -> Perturbation:
        raise NotImplementedError

    def neutral(self) -> bool:
        return self.weight == 0.0

    def check(self, target) -> None:
        needs_insides(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        if self.neutral():
            return denoised
        better = ctx.target.perturbed(ctx.x, ctx.sigma, self.perturbation(), **ctx.extra)
        return denoised + (better - ctx.conditional)


@register_term
@dataclass(frozen=True)
class NAG(ReplacingTerm):
    """Normalized attention guidance (Chen, Bandyopadhyay, Zou & Song 2025, "Normalized Attention Guidance: Universal
    Negative Guidance for Diffusion Models", arXiv:2505.21179). In every cross-attention of the network the
    image queries Q attend to the positive prompt (Z+ = softmax(Q K+^T / sqrt d) V+) and to the negative prompt
    (Z-, the same with K-, V-); per token

        Z~ = Z+ + w (Z+ - Z-)                              (extrapolation in attention space, w = ``weight``)
        Z^ = Z~ * min(r, tau) / r,  r = ||Z~||_1 / ||Z+||_1 (L1 norms over the features; tau = ``tau``)
        Z  = alpha Z^ + (1 - alpha) Z+                      (alpha = ``alpha``)

    and the conditional prediction is the network's output with Z. The negative prompt is the MODEL target's
    negative. It suppresses what the negative prompt names where CFG cannot -- few-step and guidance-distilled
    models (Flux-schnell, SDXL-Lightning, ...) -- and adds to CFG elsewhere. w = 0 or alpha = 0 is the plain
    conditional prediction. The authors' code names 1 + w ``nag_scale`` (their Flux defaults: nag_scale 5,
    tau 2.5, alpha 0.25, i.e. w = 4 here). One extra evaluation of the conditional prompt per step while active."""

    kind: ClassVar[str] = "nag"
    weight: float = 4.0
    tau: float = 2.5
    alpha: float = 0.25

    def __post_init__(self):
        super().__post_init__()
        if self.weight < 0.0:
            raise invalid(self, "weight", self.weight, "a scale >= 0 (0 = no guidance)")
        if not (math.isfinite(self.tau) and self.tau >= 1.0):
            raise invalid(self, "tau", self.tau, "a finite value >= 1 (the largest allowed L1-norm ratio)")
        if not 0.0 <= self.alpha <= 1.0:
            raise invalid(self, "alpha", self.alpha, "0..1 (0 = the positive attention only, 1 = the guided one)")

    def neutral(self) -> bool:
        return self.weight == 0.0 or self.alpha == 0.0

    def perturbation(self) -> Perturbation:
        return Perturbation("cross_attention_nag", term=self.kind, scale=self.weight, tau=self.tau, alpha=self.alpha)


@register_term
@dataclass(frozen=True)
class PLADIS(ReplacingTerm):
    """PLADIS (Kim & Sim 2025, "PLADIS: Pushing the Limits of Attention in Diffusion Models at Inference Time by
    Leveraging Sparsity", ICCV 2025, arXiv:2503.07677). In every cross-attention of the network the attention map is
    extrapolated from the dense (softmax) map towards a sparse one:

        A = S + w (A_sparse - S),   S = softmax(Q K^T / sqrt d),   A_sparse = sparse(Q K^T / sqrt d)

    (w = ``weight``; ``sparse`` = 1.5-entmax, the paper's default, or sparsemax), and the conditional prediction is
    the network's output with A V. Sparse attention ignores the text tokens that matter little and is more robust
    to noise; the paper reports better text alignment and human preference, also on guidance-distilled models.
    w = 0 is the plain prediction; the paper uses 1.5-2.0. The paper changes the cross-attention of every pass
    (conditional and unconditional alike); this term changes the conditional prediction only, so with cfg after it
    the unconditional prediction stays dense."""

    kind: ClassVar[str] = "pladis"
    weight: float = 2.0
    sparse: str = "entmax15"

    def __post_init__(self):
        super().__post_init__()
        if self.sparse not in SPARSE_FUNCTIONS:
            raise invalid(self, "sparse", self.sparse, f"one of {', '.join(SPARSE_FUNCTIONS)}")

    def perturbation(self) -> Perturbation:
        return Perturbation("cross_attention_sparse", term=self.kind, scale=self.weight, sparse=self.sparse)
