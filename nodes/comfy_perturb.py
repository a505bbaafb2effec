"""A Perturbation (walk_core.guidance.perturbed) made into ComfyUI model patches for one prediction.

ComfyUI's networks look up patches in ``model_options["transformer_options"]`` at every forward:
``patches_replace["attn1"][(block, index)]`` replaces a UNet block's self-attention given its projected q, k, v
(``fn(q, k, v, extra_options)``, q/k/v ``[B, tokens, heads * dim]``); ``patches["attn1_output_patch"]`` sees
each self-attention's output before it joins the residual stream (``fn(out, extra_options)``);
``patches_replace["dit"][("double_block" | "single_block", i)]`` replaces a DiT block (``fn(args, extra)``
returning the block's outputs). The options are copied for the one call -- the MODEL and the options of the
other calls never change -- and every patch records that it was reached, so a layer the model lacks is an
error, not a silent no-op. Nothing here imports ComfyUI: ``calc`` is its ``calc_cond_batch``.
"""
from __future__ import annotations

import math
from typing import Callable, List, Set, Tuple

import torch
import torch.nn.functional as F

from ..walk_core.guidance.perturbed import DIT_BLOCKS, INFINITE_BLUR, Layer, Perturbation, layer_name
from ..walk_core.guidance.sag import token_grid
from .comfy_cross_attention import CROSS_KINDS, CrossPatches, negative_context

UNET_HINT = "a UNet (SD1.5, SDXL) has layers input:N, middle:0, output:N"
DIT_HINT = "a DiT (SD3, Flux) has double:N and single:N"
DIT_KEYS = {"double": "double_block", "single": "single_block"}


def _copy_options(model_options: dict) -> dict:
    """model_options with its transformer_options, patches and patches_replace copied one level deep."""
    options = dict(model_options)
    to = dict(options.get("transformer_options", {}))
    to["patches"] = {k: list(v) for k, v in to.get("patches", {}).items()}
    to["patches_replace"] = {k: dict(v) for k, v in to.get("patches_replace", {}).items()}
    options["transformer_options"] = to
    return options


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, heads * d] -> [B, heads, N, d]."""
    b, n, _ = t.shape
    return t.reshape(b, n, heads, -1).transpose(1, 2)


def _merge(t: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, d] -> [B, N, heads * d]."""
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


def layer_grid(tokens: int, original_shape) -> Tuple[int, int]:
    """(rows, cols) of a UNet layer's tokens: the latent halved k times (rounding up, as stride-2 convolutions
    do), else the factorisation closest to the latent's aspect."""
    h, w = int(original_shape[-2]), int(original_shape[-1])
    for k in range(12):
        rows, cols = math.ceil(h / 2 ** k), math.ceil(w / 2 ** k)
        if rows * cols == tokens:
            return rows, cols
    return token_grid(tokens, h, w)


def gaussian_matrix(n: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """[n, n] rows of a Gaussian of std ``sigma`` positions, normalised over the positions that exist (so the
    infinite blur is the mean); sigma 0 = identity."""
    if sigma <= 0:
        return torch.eye(n, dtype=like.dtype, device=like.device)
    if sigma >= INFINITE_BLUR:
        return torch.full((n, n), 1.0 / n, dtype=like.dtype, device=like.device)
    t = torch.arange(n, dtype=like.dtype, device=like.device)
    weights = torch.exp(-0.5 * ((t[:, None] - t[None, :]) / sigma) ** 2)
    return weights / weights.sum(1, keepdim=True)


def blur_queries(q: torch.Tensor, sigma: float, original_shape) -> torch.Tensor:
    """q [B, N, C] blurred on the layer's grid with a Gaussian of ``sigma`` tokens (SEG)."""
    b, n, c = q.shape
    rows, cols = layer_grid(n, original_shape)
    grid = q.to(_at_least_float32(q.dtype)).reshape(b, rows, cols, c)
    blurred = torch.einsum("ij,bjkc,lk->bilc", gaussian_matrix(rows, sigma, grid), grid,
                           gaussian_matrix(cols, sigma, grid))
    return blurred.reshape(b, n, c).to(q.dtype)


def _attention(q, k, v, extra: dict, record: List[torch.Tensor] = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head, in float32 at least; ``record`` collects the attention each key
    receives (summed over queries, mean over heads) [B, N]."""
    heads = int(extra["n_heads"])
    qh, kh, vh = (_heads(t.to(_at_least_float32(t.dtype)), heads) for t in (q, k, v))
    if record is None:
        out = F.scaled_dot_product_attention(qh, kh, vh)
    else:
        probs = torch.softmax(qh @ kh.transpose(-1, -2) * qh.shape[-1] ** -0.5, dim=-1)  # [B, heads, N, N]
        record.append(probs.mean(1).sum(1))
        out = probs @ vh
    return _merge(out).to(v.dtype)


class _Patches:
    """The patches of one perturbed call and what they saw."""

    def __init__(self, perturbation: Perturbation):
        self.perturbation = perturbation
        self.reached: Set[Layer] = set()
        self.received: List[torch.Tensor] = []

    def attention(self, layer: Layer) -> Callable:
        p = self.perturbation

        def replace(q, k, v, extra_options):
            self.reached.add(layer)
            if p.kind == "attention_identity":  # PAG: every token attends to itself only
                return v
            if p.kind == "attention_blur":  # SEG
                return _attention(blur_queries(q, p.blur_sigma, extra_options["original_shape"]), k, v,
                                  extra_options)
            return _attention(q, k, v, extra_options, record=self.received)  # SAG's map

        return replace

    def skip_attention(self, layers: Tuple[Layer, ...]) -> Callable:
        wanted = {layer: layer for layer in layers}

        def drop(out, extra_options):
            block = extra_options.get("block")
            layer = None if block is None else wanted.get((block[0], int(block[1])))
            if layer is None:
                return out
            self.reached.add(layer)
            return torch.zeros_like(out)

        return drop

    def skip_block(self, layer: Layer) -> Callable:
        def through(args, extra):
            self.reached.add(layer)
            return args

        return through

    def options(self, model_options: dict) -> dict:
        p = self.perturbation
        options = _copy_options(model_options)
        to = options["transformer_options"]
        if p.kind == "plain":
            return options
        if p.kind == "skip_layers":
            unet = tuple(layer for layer in p.layers if layer[0] not in DIT_BLOCKS)
            if unet:
                to["patches"]["attn1_output_patch"] = to["patches"].get("attn1_output_patch", []) + [
                    self.skip_attention(unet)]
            dit = to["patches_replace"].setdefault("dit", {})
            for layer in p.layers:
                if layer[0] in DIT_BLOCKS:
                    dit[(DIT_KEYS[layer[0]], layer[1])] = self.skip_block(layer)
            return options
        attn1 = to["patches_replace"].setdefault("attn1", {})
        for layer in p.layers:
            if layer[0] in DIT_BLOCKS:
                raise ValueError(f"GuidanceStep ({p.term}): layers names {layer_name(layer)}, a DiT block; {p.term} "
                                 f"replaces a UNet's self-attention ({UNET_HINT})")
            # SAG reads one map: the layer's first transformer block (the key with its transformer index wins)
            attn1[layer + (0,) if p.kind == "attention_map" else layer] = self.attention(layer)
        return options


def perturbed_prediction(calc: Callable, model, cond, x: torch.Tensor, sigma: torch.Tensor, model_options: dict,
                         perturbation: Perturbation, negative=None):
    """The prediction of ``cond`` at (x, sigma) with ``perturbation`` applied, through ComfyUI's ``calc`` (its
    calc_cond_batch, no cfg or pre-cfg functions, as ComfyUI's own PAG/SAG nodes call it); for kind
    ``attention_map`` ``(denoised, received [B, N])``. ``negative``: the prepared negative prompt (NAG reads its
    text context); TPG, NAG and PLADIS are patched by comfy_cross_attention.py."""
    if perturbation.kind in CROSS_KINDS:
        cross = CrossPatches(perturbation, model, negative_context(perturbation, negative))
        options = _copy_options(model_options or {})
        cross.install(options["transformer_options"])
        out = calc(model, [cond], x, sigma, options)[0]
        cross.verify()
        return out
    patches = _Patches(perturbation)
    out = calc(model, [cond], x, sigma, patches.options(model_options or {}))[0]
    missing = [layer_name(layer) for layer in perturbation.layers if layer not in patches.reached]
    if missing:
        raise ValueError(f"GuidanceStep ({perturbation.term}): layers={', '.join(missing)} not found in this model "
                         f"(never reached during its forward pass); {UNET_HINT}, {DIT_HINT}")
    if perturbation.kind != "attention_map":
        return out
    received = torch.cat(patches.received)
    if received.shape[0] != x.shape[0]:
        raise RuntimeError(f"GuidanceStep ({perturbation.term}): the attention map covers {received.shape[0]} "
                           f"items; expected the batch of {x.shape[0]} (one prompt per call)")
    return out, received
