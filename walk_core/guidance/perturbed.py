"""Guidance from a perturbed version of the model itself: PAG, SEG and skip-layer guidance.

These terms need the network's insides. They ask the target for a second, *perturbed* prediction -- the same
network at the same x and sigma with its self-attention replaced (PAG), blurred (SEG) or some of its layers
skipped (SLG) -- and extrapolate away from it, as classifier-free guidance extrapolates away from the
unconditional prediction:

    D <- D + w (D_c - D_perturbed)        (D the running estimate, D_c the target's conditional prediction)

The perturbed prediction is the target's capability ``perturbed(x, sigma, perturbation, **extra)`` (see
``WalkTarget.perturbed``): a :class:`Perturbation` value says *what* to change, the target (a ComfyUI MODEL,
nodes/comfy_perturb.py) knows *how* -- through ComfyUI's attention and block patches, for that one call. Targets
without a network with attention (mixtures, patch targets, own small models) have no such capability and the
terms refuse them before the walk starts.

Layers are named ``block:index``: a UNet's (SD1.5, SDXL) ``input:N``, ``middle:0``, ``output:N`` (each with its
transformer blocks), a DiT's (SD3, Flux) ``double:N`` (joint blocks; a bare number means one of these) and
``single:N``. A layer the model does not have is an error at the first evaluation that uses it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar, Tuple

import torch

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, register_term

Layer = Tuple[str, int]  # (block, index), e.g. ("middle", 0), ("double", 7)

DIT_BLOCKS = ("double", "single")
KINDS = ("plain", "attention_identity", "attention_blur", "attention_map", "skip_layers", "token_shuffle",
         "cross_attention_nag", "cross_attention_sparse")
SPARSE_FUNCTIONS = ("entmax15", "sparsemax")  # PLADIS's sparse attention: alpha-entmax with alpha 1.5, or 2
BRANCHES = ("conditional", "unconditional")
INFINITE_BLUR = 9999.0  # SEG: a blur sigma from here on is infinite (every query the mean query)
_LAYER = re.compile(r"^(?:(input|middle|output|double|single)\s*:\s*)?(\d+)$")


@dataclass(frozen=True)
class Perturbation:
    """What to change in the network for one extra prediction.

    kind: ``plain`` (no change: the prediction at another x, e.g. a crop), ``attention_identity`` (PAG: the
        self-attention of ``layers`` passes its values through, attention map = identity), ``attention_blur``
        (SEG: the queries of that self-attention blurred with a Gaussian of ``blur_sigma`` tokens on the
        layer's grid; >= INFINITE_BLUR: every query the mean query), ``attention_map`` (SAG: an ordinary
        prediction that also returns, per item, the attention each position of ``layers[0]`` receives, summed
        over queries and averaged over heads -- ``perturbed`` then returns ``(denoised, received [B, N])``),
        ``skip_layers`` (SLG: a UNet's self-attention of ``layers`` dropped from the residual stream, a DiT's
        blocks skipped), ``token_shuffle`` (TPG: the tokens of the hidden states entering the transformer
        blocks of ``layers`` shuffled, item i's permutation drawn from ``seeds[i]``), ``cross_attention_nag``
        (NAG: every cross-attention's output extrapolated away from the same attention to the *negative*
        prompt's context, by ``scale``, its L1 norm per token capped at ``tau`` times the positive's, blended
        with the positive's by ``alpha``), ``cross_attention_sparse`` (PLADIS: every cross-attention's map
        dense + ``scale`` (sparse - dense), the sparse map ``sparse``, one of SPARSE_FUNCTIONS). The three
        cross-attention-wide kinds take no ``layers`` (every cross-attention of the network).
    branch: which prompt the prediction uses.
    term: the term asking (named in errors).
    """

    kind: str
    layers: Tuple[Layer, ...] = ()
    blur_sigma: float = 0.0
    branch: str = "conditional"
    term: str = "guidance"
    scale: float = 0.0
    tau: float = 0.0
    alpha: float = 0.0
    sparse: str = ""
    seeds: Tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Perturbation: kind={self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.branch not in BRANCHES:
            raise ValueError(f"Perturbation: branch={self.branch!r}; expected one of {', '.join(BRANCHES)}")


def layer_name(layer: Layer) -> str:
    return f"{layer[0]}:{layer[1]}"


def parse_layers(term: GuidanceTerm, text: str) -> Tuple[Layer, ...]:
    """``"middle:0, output:1"`` -> (("middle", 0), ("output", 1)); a bare number is a DiT's double block.
    An empty list, an unknown block or a repeated layer is an error naming the term and the value."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    allowed = ("a comma-separated list of layers such as 'middle:0', 'output:1' (UNet: input:N, middle:0, "
               "output:N) or '7, 8, 9' (DiT: double:N, single:N; a bare number is double:N)")
    layers = []
    for part in parts:
        found = _LAYER.match(part.lower())
        if found is None:
            raise invalid(term, "layers", text, allowed)
        layer = (found.group(1) or "double", int(found.group(2)))
        if layer in layers:
            raise invalid(term, "layers", text, f"{allowed}, each layer once ({layer_name(layer)} is repeated)")
        layers.append(layer)
    if not layers:
        raise invalid(term, "layers", text, allowed)
    return tuple(layers)


def needs_insides(term: GuidanceTerm, target) -> None:
    """The check of every term that perturbs the network: the target must offer ``perturbed`` predictions."""
    if getattr(target, "perturbed", None) is None:
        raise ValueError(
            f"GuidanceStep ({term.kind}): target {target.name!r} has no attention: {term.kind} perturbs a diffusion "
            "network's self-attention or layers, which only a ComfyUI MODEL target has (Target Distribution "
            "(MODEL)); on this target use cfg, apg or autoguidance instead")


class PerturbedTerm(GuidanceTerm):
    """D <- D + w (D_c - D_perturbed), with the perturbation :meth:`perturbation` describes (not a dataclass of
    its own: its subclasses are, with ``layers`` among their fields)."""

    def perturbation(self) -> Perturbation:
        raise NotImplementedError

    def check(self, target) -> None:
        needs_insides(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        if self.weight == 0.0:
            return denoised
        worse = ctx.target.perturbed(ctx.x, ctx.sigma, self.perturbation(), **ctx.extra)
        return denoised + self.weight * (ctx.conditional - worse)


@register_term
@dataclass(frozen=True)
class PAG(PerturbedTerm):
    """Perturbed-attention guidance (Ahn et al. 2024, "Self-Rectifying Diffusion Sampling with Perturbed-Attention
    Guidance"): the perturbed prediction replaces the self-attention map of ``layers`` by the identity (each
    token attends only to itself, so the layer passes its values through), which breaks the structure the
    model builds; guiding away from it sharpens structure and detail. D <- D + w (D_c - D_pag), w = ``weight``
    (ComfyUI's PerturbedAttentionGuidance node: scale 3, the UNet's middle block). One extra evaluation of the
    conditional prompt per step while active."""

    kind: ClassVar[str] = "pag"
    weight: float = 3.0
    layers: str = "middle:0"

    def __post_init__(self):
        super().__post_init__()
        parse_layers(self, self.layers)

    def perturbation(self) -> Perturbation:
        return Perturbation("attention_identity", parse_layers(self, self.layers), term=self.kind)


@register_term
@dataclass(frozen=True)
class SEG(PerturbedTerm):
    """Smoothed energy guidance (Hong 2024, "Smoothed Energy Guidance: Guiding Diffusion Models with Reduced Energy
    Curvature of Attention"): the perturbed prediction blurs the self-attention's queries of ``layers`` with a
    Gaussian of ``blur_sigma`` tokens on the layer's 2-D grid -- equivalently it smooths the attention energy
    landscape; blur_sigma >= 9999 is the infinite blur (every query the mean query: uniform attention).
    D <- D + w (D_c - D_seg), w = ``weight`` (the paper: 3). blur_sigma 0 leaves the attention unchanged, so the
    term does nothing; a larger blur guides more strongly, without the saturation of a high CFG scale."""

    kind: ClassVar[str] = "seg"
    weight: float = 3.0
    layers: str = "middle:0"
    blur_sigma: float = 10.0

    def __post_init__(self):
        super().__post_init__()
        parse_layers(self, self.layers)
        if not (math.isfinite(self.blur_sigma) and self.blur_sigma >= 0.0):
            raise invalid(self, "blur_sigma", self.blur_sigma,
                          f"a finite value >= 0 (tokens; 0 = no blur, >= {INFINITE_BLUR:g} = infinite)")

    def perturbation(self) -> Perturbation:
        return Perturbation("attention_blur", parse_layers(self, self.layers), blur_sigma=self.blur_sigma,
                            term=self.kind)


@register_term
@dataclass(frozen=True)
class SLG(PerturbedTerm):
    """Skip-layer guidance (Stability AI's SD3.5; ComfyUI's SkipLayerGuidanceDiT): the perturbed prediction skips
    ``layers`` -- a DiT's joint (``double``) or ``single`` blocks pass their input through; on a UNet the
    self-attention of the named blocks is dropped from the residual stream. D <- D + w (D_c - D_slg),
    w = ``weight``. SD3.5's recipe: layers 7, 8, 9, scale 3, in the early part of the walk only (ComfyUI's
    node: 1 % to 15 % of the model's timesteps; set start/end percent accordingly)."""

    kind: ClassVar[str] = "slg"
    weight: float = 3.0
    layers: str = "7, 8, 9"

    def __post_init__(self):
        super().__post_init__()
        parse_layers(self, self.layers)

    def perturbation(self) -> Perturbation:
        return Perturbation("skip_layers", parse_layers(self, self.layers), term=self.kind)
