"""TPG's token shuffle and the cross-attention of NAG and PLADIS as ComfyUI patches, for one perturbed prediction.

ComfyUI's transformer block (comfy/ldm/modules/attention.py) offers, besides the self-attention patches that
comfy_perturb.py uses: ``patches["middle_patch"]`` (``fn(x, extra_options)`` on the hidden states after the
self-attention joined the residual stream), ``patches["attn2_patch"]`` (``fn(n, context, value, extra_options)``
before the cross-attention, every block) and ``patches_replace["attn2"][(block, index)]`` (``fn(q, k, v,
extra_options)`` replacing a block's cross-attention given its projected q, k, v). ComfyUI merges the options
into fresh dicts per call, so replacements are installed up front, one per UNet block that has a transformer
(found in the network's input, middle and output blocks). Nothing here imports ComfyUI.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Set, Tuple

import torch
import torch.nn.functional as F

from ..walk_core.guidance.perturbed import Layer, Perturbation
from ..walk_core.guidance.sparse_attention import SPARSE

CROSS_HINT = "NAG and PLADIS replace the cross-attention of a UNet (SD1.5, SDXL)"


def _float(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, _ = t.shape
    return _float(t).reshape(b, n, heads, -1).transpose(1, 2)  # [B, heads, N, d]


def _merge(t: torch.Tensor) -> torch.Tensor:
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


def dense_attention(q, k, v, heads: int) -> torch.Tensor:
    """softmax(q k^T / sqrt d) v per head, heads merged: [B, N, heads * d] in float32 at least."""
    return _merge(F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads)))


def nag_attention(q, k_pos, v_pos, k_neg, v_neg, heads: int, scale: float, tau: float, alpha: float):
    """NAG's attention output (walk_core/guidance/attention_terms.py): extrapolate the positive prompt's attention
    away from the negative's, cap the per-token L1-norm ratio at ``tau``, blend with the positive by ``alpha``."""
    positive = dense_attention(q, k_pos, v_pos, heads)
    negative = dense_attention(q, k_neg, v_neg, heads)
    guided = positive + scale * (positive - negative)
    norm_pos = positive.abs().sum(-1, keepdim=True)
    norm_guided = guided.abs().sum(-1, keepdim=True)
    ratio = norm_guided / norm_pos.clamp_min(torch.finfo(norm_pos.dtype).tiny)
    capped = torch.where(ratio > tau, guided * (tau / ratio.clamp_min(tau)), guided)
    return alpha * capped + (1 - alpha) * positive


def sparse_attention(q, k, v, heads: int, scale: float, sparse: str) -> torch.Tensor:
    """PLADIS's attention: (S + scale (sparse - S)) v, S the softmax map, per head, heads merged."""
    qh, kh, vh = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    scores = qh @ kh.transpose(-1, -2) * qh.shape[-1] ** -0.5
    dense = torch.softmax(scores, dim=-1)
    mixed = dense + scale * (SPARSE[sparse](scores) - dense)
    return _merge(mixed @ vh)


def prompt_context(conds, term: str) -> torch.Tensor:
    """The cross-attention context [1, T, C] of a prepared prompt (its first entry's ``c_crossattn``)."""
    for entry in conds or ():
        found = (entry.get("model_conds") or {}).get("c_crossattn")
        if found is not None:
            return found.cond
    raise ValueError(f"GuidanceStep ({term}): the MODEL target's negative prompt has no text context for the "
                     "cross-attention; connect a negative CONDITIONING from a text encoder (CLIP Text Encode)")


def cross_attention_blocks(model, term: str) -> List[Layer]:
    """The UNet blocks holding a transformer (so a cross-attention): ``("input", i)``, ``("middle", 0)``,
    ``("output", i)``, as ComfyUI names them in ``transformer_options["block"]``."""
    net = getattr(model, "diffusion_model", None)
    groups = [getattr(net, name, None) for name in ("input_blocks", "middle_block", "output_blocks")]
    if net is None or any(g is None for g in groups):
        raise ValueError(f"GuidanceStep ({term}): this model is not a UNet; {CROSS_HINT}")
    found = []
    for name, blocks in zip(("input", "middle", "output"), (groups[0], [groups[1]], groups[2])):
        for i, block in enumerate(blocks):
            if any(hasattr(m, "transformer_blocks") for m in block.modules()):
                found.append((name, i))
    if not found:
        raise ValueError(f"GuidanceStep ({term}): this UNet has no transformer blocks; {CROSS_HINT}")
    return found


def _item_generator(seed: int, layer: Layer, index: int) -> torch.Generator:
    salt = {"input": 1, "middle": 2, "output": 3}.get(layer[0], 4) * 1_000 + layer[1] * 10 + index
    return torch.Generator().manual_seed((int(seed) * 7_919 + salt) % (2 ** 63))


class CrossPatches:
    """The patches of one TPG, NAG or PLADIS call; ``reached`` the layers they acted on, ``seen`` the blocks
    whose cross-attention ran (NAG: every one must have been replaced)."""

    def __init__(self, perturbation: Perturbation, model, negative: Optional[torch.Tensor] = None):
        self.p, self.model, self.negative = perturbation, model, negative
        self.reached: Set[Layer] = set()
        self.seen: Set[Layer] = set()

    # -- TPG
    def shuffle(self) -> Callable:
        wanted = set(self.p.layers)
        seeds = self.p.seeds

        def middle(x, extra_options):
            block = extra_options.get("block")
            layer = None if block is None else (block[0], int(block[1]))
            if layer not in wanted:
                return x
            self.reached.add(layer)
            index = int(extra_options.get("block_index", 0))
            rows = []
            for b in range(x.shape[0]):
                seed = seeds[b % len(seeds)] if seeds else b
                order = torch.randperm(x.shape[1], generator=_item_generator(seed, layer, index)).to(x.device)
                rows.append(x[b, order])
            return torch.stack(rows)

        return middle

    # -- NAG and PLADIS
    def replace(self, layer: Layer) -> Callable:
        p = self.p

        def attention(q, k, v, extra_options):
            self.reached.add(layer)
            heads = int(extra_options["n_heads"])
            if p.kind == "cross_attention_sparse":
                out = sparse_attention(q, k, v, heads, p.scale, p.sparse)
            else:
                t = self.negative.shape[1]
                out = nag_attention(q, k[:, :-t], v[:, :-t], k[:, -t:], v[:, -t:], heads, p.scale, p.tau, p.alpha)
            return out.to(v.dtype)

        return attention

    def with_negative(self) -> Callable:
        """NAG's attn2_patch: the negative prompt's context appended to every cross-attention's keys and values
        (the replacement splits them again), so one pass computes both attentions."""
        def append(n, context, value, extra_options):
            block = extra_options.get("block")
            if block is not None:
                self.seen.add((block[0], int(block[1])))
            neg = self.negative.to(device=context.device, dtype=context.dtype).expand(context.shape[0], -1, -1)
            return n, torch.cat([context, neg], dim=1), torch.cat([value, neg.to(value.dtype)], dim=1)

        return append

    def install(self, to: dict) -> None:
        """Add this call's patches to ``to`` (a copy of the transformer options made for this call)."""
        p = self.p
        if p.kind == "token_shuffle":
            to["patches"]["middle_patch"] = to["patches"].get("middle_patch", []) + [self.shuffle()]
            return
        attn2 = to["patches_replace"].setdefault("attn2", {})
        for layer in cross_attention_blocks(self.model, p.term):
            taken = [key for key in attn2 if tuple(key[:2]) == layer]
            if taken:
                raise ValueError(f"GuidanceStep ({p.term}): the MODEL already replaces the cross-attention of "
                                 f"{layer[0]}:{layer[1]} (another node's patch, e.g. IPAdapter); {p.term} replaces "
                                 "every cross-attention and cannot be combined with it")
            attn2[layer] = self.replace(layer)
        if p.kind == "cross_attention_nag":
            to["patches"]["attn2_patch"] = to["patches"].get("attn2_patch", []) + [self.with_negative()]

    def verify(self) -> None:
        """After the call: the patches acted (a layer the model lacks, or a cross-attention left unpatched while
        NAG lengthened its context, is an error, not a silent change)."""
        p = self.p
        if p.kind == "token_shuffle":
            missing = [f"{a}:{i}" for a, i in p.layers if (a, i) not in self.reached]
            if missing:
                raise ValueError(f"GuidanceStep ({p.term}): layers={', '.join(missing)} have no transformer block in "
                                 "this model (never reached during its forward pass); a UNet (SD1.5, SDXL) has them "
                                 "at input:N, middle:0, output:N")
            return
        if not self.reached:
            raise ValueError(f"GuidanceStep ({p.term}): no cross-attention was reached in this model; {CROSS_HINT}")
        stray = sorted(self.seen - self.reached)
        if stray:
            raise RuntimeError(f"GuidanceStep ({p.term}): the cross-attention of "
                               f"{', '.join(f'{a}:{i}' for a, i in stray)} ran without NAG's replacement")


def negative_context(perturbation: Perturbation, negative_conds) -> Optional[torch.Tensor]:
    """The negative prompt's context when the perturbation needs it (NAG), else None."""
    if perturbation.kind != "cross_attention_nag":
        return None
    if not negative_conds:
        raise ValueError(f"GuidanceStep ({perturbation.term}): the MODEL target has no negative prompt; "
                         f"{perturbation.term} guides away from it -- connect one to Target Distribution (MODEL)")
    return prompt_context(negative_conds, perturbation.term)


CROSS_KINDS: Tuple[str, ...] = ("token_shuffle", "cross_attention_nag", "cross_attention_sparse")
