"""A miniature of ComfyUI's ``calc_cond_batch`` around a one-block network with a self- and a cross-attention, for
TPG, NAG and PLADIS (nodes/comfy_cross_attention.py) without ComfyUI.

The block sits at the UNet's ``("middle", 0)`` and honours the patches the way ComfyUI's transformer block does
(comfy/ldm/modules/attention.py): ``patches["middle_patch"]`` after the self-attention joined the residual
stream, ``patches["attn2_patch"]`` before the cross-attention (the value defaults to the context), and
``patches_replace["attn2"]`` looked up by (block, index, transformer index) then (block, index), given the
projected q, k, v. A prompt is ``{"mean": m, "model_conds": {"c_crossattn": <.cond [1, T, 3]>}}``; the prediction
is m + 0.5 tanh(h) with h the block's output for x's pixels as tokens (C = 4 channels, 2 heads).
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

HEADS, CONTEXT = 2, 3


def prompt(mean: float, tokens: int, seed: int):
    context = torch.randn(1, tokens, CONTEXT, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [{"mean": mean, "model_conds": {"c_crossattn": SimpleNamespace(cond=context)}}]


class _Transformer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer_blocks = torch.nn.ModuleList()


def unet(blocks=("middle",)):
    """A stand-in inner model whose network has a transformer in the named groups (``input`` and ``output``: at
    index 1)."""
    def group(name):
        return [torch.nn.Identity(), torch.nn.Sequential(_Transformer())] if name in blocks else []

    middle = torch.nn.Sequential(_Transformer()) if "middle" in blocks else torch.nn.Identity()
    return SimpleNamespace(diffusion_model=SimpleNamespace(input_blocks=group("input"), middle_block=middle,
                                                           output_blocks=group("output")))


def attention(q, k, v, heads=HEADS):
    b, n, c = q.shape
    split = [t.reshape(b, t.shape[1], heads, c // heads).transpose(1, 2) for t in (q, k, v)]
    return F.scaled_dot_product_attention(*split).transpose(1, 2).reshape(b, n, c)


class CrossCalc:
    """``calc(model, conds, x, sigma, model_options)`` (ComfyUI's signature); ``calls`` the batch of each call."""

    def __init__(self, seed: int = 0, channels: int = 4):
        g = torch.Generator().manual_seed(seed)
        self.w1 = [torch.randn(channels, channels, generator=g, dtype=torch.float64) for _ in range(3)]
        self.wq = torch.randn(channels, channels, generator=g, dtype=torch.float64)
        self.wk, self.wv = (torch.randn(CONTEXT, channels, generator=g, dtype=torch.float64) for _ in range(2))
        self.wo = torch.randn(channels, channels, generator=g, dtype=torch.float64) * 0.5
        self.calls = []

    def hidden(self, x, context, model_options=None, cross=None):
        """The block's output [B, N, C]; ``cross(q, k, v)`` overrides the cross-attention (for direct checks)."""
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        to = (model_options or {}).get("transformer_options", {})
        patches, replace = to.get("patches", {}), to.get("patches_replace", {}).get("attn2", {})
        extra = {"n_heads": HEADS, "dim_head": c // HEADS, "original_shape": list(x.shape), "block": ("middle", 0),
                 "block_index": 0, "attn_precision": None}
        x1 = tokens + attention(*(tokens @ m for m in self.w1))
        for p in patches.get("middle_patch", []):
            x1 = p(x1, extra)
        n, ctx, value = x1, context.expand(b, -1, -1), None
        if patches.get("attn2_patch"):
            value = ctx
            for p in patches["attn2_patch"]:
                n, ctx, value = p(n, ctx, value, extra)
        value = ctx if value is None else value
        q, k, v = n @ self.wq, ctx @ self.wk, value @ self.wv
        fn = replace.get(("middle", 0, 0), replace.get(("middle", 0)))
        if cross is not None:
            out = cross(q, k, v)
        else:
            out = attention(q, k, v) if fn is None else fn(q, k, v, extra)
        return x1 + out @ self.wo

    def predict(self, mean, x, context, model_options=None, cross=None):
        b, c, h, w = x.shape
        return mean + 0.5 * torch.tanh(self.hidden(x, context, model_options, cross)).transpose(1, 2).reshape(b, c, h, w)

    def __call__(self, model, conds, x, sigma, model_options):
        self.calls.append(x.shape[0])
        return [torch.zeros_like(x) if c is None else
                self.predict(c[0]["mean"], x, c[0]["model_conds"]["c_crossattn"].cond, model_options)
                for c in conds]
