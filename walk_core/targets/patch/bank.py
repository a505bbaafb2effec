"""The patch bank of one pyramid level: the p x p patch around every pixel of the references, in a
low-dimensional (PCA) basis, so that a noisy patch's posterior over the bank costs one small matrix product.

For a query patch q at noise std s, the posterior weight of bank patch P_j (uniform prior over the bank,
Gaussian noise) is softmax_j(-|q - P_j|^2 / 2s^2) = softmax_j((q . P_j - |P_j|^2 / 2) / s^2): the |q|^2
term is shared by every j and drops out. Both remaining terms are taken in the bank's top principal
directions (the same basis for both, so no patch is favoured for energy the cross term cannot see).

Positions are kept in raster order per reference (index = ref * H * W + y * W + x), so a position found at a
coarse level maps to its neighbourhood at a finer one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .pyramid import _pad

PCA_SAMPLE = 8192  # patches used to find the principal directions


def window(p: int, like: torch.Tensor) -> torch.Tensor:
    """Gaussian patch window [p * p] with its centre at 1 (std p / 3): near pixels count most."""
    t = torch.arange(p, dtype=like.dtype, device=like.device) - (p - 1) / 2
    g = torch.exp(-0.5 * (t / (p / 3.0)) ** 2)
    return torch.outer(g, g).reshape(-1)


def patches(x: torch.Tensor, p: int, periodic: bool) -> torch.Tensor:
    """Every p x p patch of x [B, C, H, W], one per pixel (edges mirrored or wrapped): [B, H*W, C*p*p]."""
    x = _pad(x, p // 2, periodic)
    return F.unfold(x, p).transpose(1, 2)


@dataclass(frozen=True)
class PatchBank:
    """Every patch of one level: centre colours, PCA coordinates and their squared norms."""

    p: int
    height: int  # of each reference at this level
    width: int
    centres: torch.Tensor  # [M, C]: the colour each patch proposes for the pixel at its centre
    coords: torch.Tensor  # [M, k]: windowed patches in the PCA basis (mean removed)
    sq_norms: torch.Tensor  # [M]: |coords|^2
    mean: torch.Tensor  # [D]
    basis: torch.Tensor  # [D, k]
    sqrt_window: torch.Tensor  # [D]
    log_prior: Optional[torch.Tensor] = None  # [M]: log weight of each patch's reference (None: uniform)

    @property
    def size(self) -> int:
        return int(self.centres.shape[0])

    def to(self, device) -> "PatchBank":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return PatchBank(self.p, self.height, self.width, *(move(t) for t in (
            self.centres, self.coords, self.sq_norms, self.mean, self.basis, self.sqrt_window, self.log_prior)))

    def embed(self, q: torch.Tensor) -> torch.Tensor:
        """Query patches [..., D] -> their PCA coordinates [..., k] (windowed, mean removed)."""
        return (q * self.sqrt_window - self.mean) @ self.basis


def principal_basis(centred: torch.Tensor, dims: int) -> torch.Tensor:
    """The top ``dims`` principal directions [D, dims] of mean-removed samples [N, D], largest first."""
    dims = min(dims, centred.shape[1], centred.shape[0])
    cov = centred.T.double() @ centred.double() / max(1, centred.shape[0])
    _, vecs = torch.linalg.eigh(cov)
    return vecs[:, -dims:].flip(1).to(centred.dtype).contiguous()


def build_bank(references: torch.Tensor, p: int, dims: int, seed: int = 0,
               weights: Optional[torch.Tensor] = None) -> PatchBank:
    """The bank of ``references`` [K, C, H, W] (one pyramid level, walk units), every patch, edges mirrored."""
    k_refs, c, h, w = references.shape
    flat = patches(references.float(), p, False).reshape(-1, c * p * p)  # [K*H*W, D]
    sqrt_w = window(p, flat).repeat(c).sqrt()  # unfold orders channels outermost: [C, p, p]
    g = torch.Generator().manual_seed(int(seed))
    sample = flat if flat.shape[0] <= PCA_SAMPLE else flat[torch.randperm(flat.shape[0], generator=g)[:PCA_SAMPLE]]
    sample = sample * sqrt_w
    mean = sample.mean(0)
    centred = sample - mean
    basis = principal_basis(centred, dims)
    coords = (flat * sqrt_w - mean) @ basis
    centres = flat.view(flat.shape[0], c, p * p)[:, :, (p * p) // 2].contiguous()
    log_prior = None
    if weights is not None and k_refs > 1:
        share = weights.float() / weights.float().sum()
        log_prior = share.log().repeat_interleave(h * w)
    return PatchBank(p, h, w, centres, coords, coords.square().sum(1), mean, basis, sqrt_w, log_prior)


def reference_blocks(references: torch.Tensor, level: int, height: int, width: int) -> torch.Tensor:
    """The full-resolution block under every pixel of pyramid ``level`` (``height`` x ``width``) of the
    references [K, C, H, W], in bank order: [K * height * width, C * r * r] with r = 2^level; the block of
    coarse pixel (i, j) covers rows/cols [r*i - r/2, r*i + r/2) (edges mirrored)."""
    k, c, h, w = references.shape
    r = 2 ** level
    if r == 1:
        return references.permute(0, 2, 3, 1).reshape(-1, c).contiguous()
    half = r // 2
    pad_h, pad_w = height * r - h - half, width * r - w - half
    x = references.float()
    mode = "reflect" if min(h, w) > max(half, pad_h, pad_w, 0) else "replicate"
    x = F.pad(x, (half, max(0, pad_w), half, max(0, pad_h)), mode=mode)[..., :height * r, :width * r]
    return F.unfold(x, r, stride=r).transpose(1, 2).reshape(k * height * width, c * r * r).contiguous()
