"""Stand-ins for the perturbed predictions of a diffusion network (PAG, SEG, SAG, SLG, SWG), for tests.

``with_stand_in_insides(target)``: ``target`` with a ``perturbed`` capability, so the registry's contract tests
can walk every term on an exact target. The "perturbed network" is the denoiser of N(0, 1) data,
x / (1 + sigma^2): defined at every size (SWG's crops), different from the target's, and for SAG's map every
other token receives twice the average attention.

``AttentionCalc``: a miniature of ComfyUI's ``calc_cond_batch`` around a one-layer network with a self-attention
at the UNet's ``("middle", 0)`` block, which honours ComfyUI's attention patches the way its transformer block
does (``patches_replace["attn1"]`` looked up by (block, index, transformer index) then (block, index);
``patches["attn1_output_patch"]``), so the MODEL bridge can be checked without ComfyUI.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

HEADS = 2


def with_stand_in_insides(target):
    def perturbed(x, sigma, perturbation, **extra):
        s = torch.as_tensor(sigma, dtype=x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        worse = x / (1 + s ** 2)
        if perturbation.kind != "attention_map":
            return worse
        tokens = x.shape[-2] * x.shape[-1]
        received = (torch.arange(tokens) % 2 == 0).to(x.dtype) * 2.0
        return worse, received.expand(x.shape[0], tokens)

    return replace(target, perturbed=perturbed)


class AttentionCalc:
    """``calc(model, conds, x, sigma, model_options)``: per prompt (``{"mean": m}``) the prediction
    m + 0.5 * tanh(h), h = tokens + attention(tokens) of x's pixels as tokens (C = 4 channels, 2 heads).
    ``layers_seen`` records the block keys the attention was run under."""

    def __init__(self, seed: int = 0, channels: int = 4):
        g = torch.Generator().manual_seed(seed)
        self.wq, self.wk, self.wv = (torch.randn(channels, channels, generator=g, dtype=torch.float64)
                                     for _ in range(3))
        self.calls = []  # (batch, patched?) per call

    @staticmethod
    def attention(q, k, v, heads=HEADS):
        b, n, c = q.shape
        split = [t.reshape(b, n, heads, c // heads).transpose(1, 2) for t in (q, k, v)]
        return F.scaled_dot_product_attention(*split).transpose(1, 2).reshape(b, n, c)

    def network(self, x, model_options, block_index=0):
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [B, N, C]
        q, k, v = tokens @ self.wq, tokens @ self.wk, tokens @ self.wv
        to = (model_options or {}).get("transformer_options", {})
        replace_ = to.get("patches_replace", {}).get("attn1", {})
        extra = {"n_heads": HEADS, "dim_head": c // HEADS, "original_shape": list(x.shape), "block": ("middle", 0),
                 "block_index": block_index, "attn_precision": None}
        fn = replace_.get(("middle", 0, block_index), replace_.get(("middle", 0)))
        out = self.attention(q, k, v) if fn is None else fn(q, k, v, extra)
        for patch in to.get("patches", {}).get("attn1_output_patch", []):
            out = patch(out, extra)
        hidden = tokens + out
        return torch.tanh(hidden).transpose(1, 2).reshape(b, c, h, w)

    def __call__(self, model, conds, x, sigma, model_options):
        self.calls.append((x.shape[0], bool((model_options or {}).get("transformer_options", {})
                                            .get("patches_replace", {}).get("attn1"))))
        return [torch.zeros_like(x) if c is None else c[0]["mean"] + 0.5 * self.network(x, model_options)
                for c in conds]
