"""The patch denoiser: at noise level sigma, each pixel's estimate is the posterior mean over the reference patches
that look like the noisy patch around it (Kamb & Ganguli 2024, the equivariant local score machine; Niedoba et
al. 2024), matched at the pyramid level whose scale suits sigma.

Coarse to fine: at level l the picture is blurred and subsampled l times, which divides white noise by about
2^l while large structure survives, so a fixed-size patch there covers p * 2^l output pixels. A level is used
while its noise std is at most ``level_sigma``. A coarse pixel's posterior predicts its full-resolution block
of the references (the 2^l x 2^l pixels the matched patch's centre stands for), so the estimate carries the
detail of the patches it believes in; at level 0 each pixel takes the posterior mean of *centre* colours.
Overlapping patch estimates are never averaged into a dull colour.

The posterior is dense (a softmax over every patch of the level) on levels with at most ``dense_max``
patches -- always the case at high sigma. Finer levels keep every patch but are too big for that; there a
pixel's candidates are its parent pixel's best ``candidates`` matches one level up (at a +-1 pixel jitter)
plus the neighbouring parents' matches continued, a coarse-to-fine search, and the softmax runs over those.
At the low sigma where fine levels are used the posterior is concentrated, so the mass outside the candidates
is negligible.

Balance (dense levels): left alone, many pixels' posteriors pile onto the same few (often low-contrast) bank
patches, so the picture's patch histogram drifts from the references' -- duller colours, wrong texture
statistics. With ``balance`` b > 0 a first pass sums the posterior weights each bank patch receives over the
whole level (its usage), and every patch used more than its prior share N * p_j is discounted by
b * log(usage / (N * p_j)) in the logits of the second pass: at b = 1 that is the column step of Sinkhorn's
balancing towards the reference's own patch usage, applied to over-used patches only (in the spirit of the
occurrence penalties of Kaspar et al. 2015 and Jamriska et al. 2015's uniform patch usage).

Context (``context`` c > 0, context.py): each bank patch's logit also gets c x its parent patch's log-likelihood
one level up against the query's parent patch, so the finer levels keep the arrangement the coarser ones set.

Noise model: the likelihood treats a level's noise as independent per pixel with std sigma * noise_factor(level).
The pyramid's blur correlates it (neighbours 0.4-0.5), so along the patches' smooth principal directions the
true noise variance is 2-5x that on levels 1-4 (about 0.6x on level 0, where the window down-weights the rim):
the coarse posteriors are overconfident. That is kept on purpose: whitening each level's coordinates by the true
noise covariance, or softening only the over-counted directions of the two coarsest levels, measured less novel
and fewer walks novel and faithful (docs/weight-free.md, "Coarse to fine").
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional

import torch

from .bank import PatchBank, patches
from .content import ContentGuide, ContentLevel
from .context import ContextTerm, context_term
from .pyramid import down, noise_factor

ROWS_PER_CHUNK = 4096  # query patches scored at once: bounds the [rows, bank] score matrix


@dataclass(frozen=True)
class PatchLevels:
    """Everything the denoiser needs: one bank per pyramid level (index = level)."""

    banks: List[PatchBank]
    blocks: List[torch.Tensor]  # per level: [M, C * r * r] full-resolution block of every patch (r = 2^level)
    level_sigma: float  # the noise std (at the chosen level) a level is used up to
    sharpness: float  # multiplies the log-likelihood (1 = Gaussian noise, independent pixels)
    periodic: bool
    dense_max: int
    candidates: int
    guide: Optional[ContentGuide] = None  # content term per level (photo style transfer), or None
    balance: float = 0.0  # dense levels: discount over-used bank patches (see the module docstring); 0 = off
    context: float = 0.0  # weight of the coarser level's patch likelihood in each level's logits (context.py)

    def to(self, device) -> "PatchLevels":
        """A copy with every tensor on ``device`` (banks are built on the CPU)."""
        return replace(self, banks=[b.to(device) for b in self.banks], blocks=[b.to(device) for b in self.blocks],
                       guide=None if self.guide is None else self.guide.to(device))

    def level_for(self, sigma: float) -> int:
        for level in range(len(self.banks)):
            if sigma * noise_factor(level) <= self.level_sigma:
                return level
        return len(self.banks) - 1

    def dense_level(self) -> int:
        """The finest level small enough for a dense posterior."""
        for level, bank in enumerate(self.banks):
            if bank.size <= self.dense_max:
                return level
        return len(self.banks) - 1


def _scale(sigma: float, sharpness: float) -> float:
    return sharpness / max(sigma, 1e-8) ** 2


def logit_bias(bank: PatchBank, scale: float) -> torch.Tensor:
    """The query-free part [M] of every bank patch's logit: -scale |P_j|^2 / 2 plus its log prior."""
    bias = (-0.5 * scale) * bank.sq_norms
    return bias if bank.log_prior is None else bias + bank.log_prior


def prior_share(bank: PatchBank) -> torch.Tensor:
    """Each bank patch's prior probability [M]: uniform, or its reference's weight spread over its patches."""
    if bank.log_prior is None:
        return torch.full((bank.size,), 1.0 / bank.size, dtype=bank.coords.dtype, device=bank.coords.device)
    return torch.softmax(bank.log_prior, dim=0)


def _dense_logits(bank: PatchBank, coords: torch.Tensor, rows: slice, bias: torch.Tensor, scale: float,
                  sigma: float, content: Optional[ContentLevel], context: Optional[ContextTerm]) -> torch.Tensor:
    logits = torch.addmm(bias, coords[rows], bank.coords.T, alpha=scale)  # [n, M]
    if content is not None:
        logits += torch.addmm(content.bank_sq, content.query[rows], content.bank.T, beta=-0.5,
                              alpha=1.0) * content.scale(sigma)
    if context is not None:
        logits += context.dense(rows)
    return logits


def usage_discount(bank: PatchBank, coords: torch.Tensor, bias: torch.Tensor, scale: float, sigma: float,
                   content: Optional[ContentLevel], balance: float,
                   context: Optional[ContextTerm] = None) -> torch.Tensor:
    """The balance term [M] subtracted from the logits: ``balance * log(usage_j / (N p_j))`` where that is
    positive, else 0; usage_j = the posterior weight bank patch j receives summed over the N queries, p_j its prior
    share (uniform, or its reference's weight spread over that reference's patches)."""
    usage = coords.new_zeros(bank.size)
    for start in range(0, coords.shape[0], ROWS_PER_CHUNK):
        rows = slice(start, start + ROWS_PER_CHUNK)
        logits = _dense_logits(bank, coords, rows, bias, scale, sigma, content, context)
        usage += torch.softmax(logits, dim=1).sum(0)
    return balance * (usage / (coords.shape[0] * prior_share(bank))).clamp_min(1.0).log()


def dense_posterior(bank: PatchBank, coords: torch.Tensor, sigma: float, sharpness: float, top: int = 0,
                    content: Optional[ContentLevel] = None, values: Optional[torch.Tensor] = None,
                    balance: float = 0.0, context: Optional[ContextTerm] = None):
    """[N, k] query coordinates -> ([N, V] posterior means of ``values`` [M, V] (default: the centre colours),
    [N, top] best patch indices or None); ``balance`` > 0 discounts over-used patches first (module docstring),
    ``context`` adds the coarser level's term (context.py)."""
    values = bank.centres if values is None else values
    scale = _scale(sigma, sharpness)
    bias = logit_bias(bank, scale)
    if balance > 0:
        bias = bias - usage_discount(bank, coords, bias, scale, sigma, content, balance, context)
    out = coords.new_empty(coords.shape[0], values.shape[1])
    best = coords.new_empty(coords.shape[0], top, dtype=torch.long) if top else None
    for start in range(0, coords.shape[0], ROWS_PER_CHUNK):
        rows = slice(start, start + ROWS_PER_CHUNK)
        logits = _dense_logits(bank, coords, rows, bias, scale, sigma, content, context)
        if top:
            best[rows] = logits.topk(min(top, bank.size), dim=1).indices
        out[rows] = torch.softmax(logits, dim=1) @ values
    return out, best


NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _candidates(parent_best: torch.Tensor, coarse: PatchBank, fine: PatchBank, fine_hw, ratio: int,
                periodic: bool) -> torch.Tensor:
    """Fine-level candidate patch indices [Hf*Wf, K] from the parents' best coarse indices [Hc*Wc, T]: each
    parent match mapped to the fine level with a +-1 pixel jitter, plus the four neighbouring parents'
    matches shifted back by the neighbour's offset (coherence: a neighbour's source, continued, is a likely
    source here too; Ashikhmin 2001)."""
    hf, wf = fine_hw
    hc, wc = (hf + ratio - 1) // ratio, (wf + ratio - 1) // ratio
    dev = parent_best.device
    y = torch.arange(hf, device=dev)
    x = torch.arange(wf, device=dev)
    py = ((y + ratio // 2) // ratio).clamp(max=hc - 1)  # parent pixel of each fine pixel
    px = ((x + ratio // 2) // ratio).clamp(max=wc - 1)
    oy = (y - py * ratio)[:, None].expand(hf, wf).reshape(-1, 1)  # fine offset from the parent's centre
    ox = (x - px * ratio)[None, :].expand(hf, wf).reshape(-1, 1)
    per_ref = coarse.height * coarse.width

    def mapped(dy: int, dx: int, jitter: torch.Tensor) -> torch.Tensor:
        qy, qx = py + dy, px + dx
        if periodic:
            qy, qx = qy % hc, qx % wc
        else:
            qy, qx = qy.clamp(0, hc - 1), qx.clamp(0, wc - 1)
        best = parent_best[(qy[:, None] * wc + qx[None, :]).reshape(-1)]  # [Nf, T]
        ref = best // per_ref
        cy, cx = (best % per_ref) // coarse.width, best % coarse.width
        sy = ((cy - dy) * ratio + oy)[:, :, None, None] + jitter.view(1, 1, -1, 1)
        sx = ((cx - dx) * ratio + ox)[:, :, None, None] + jitter.view(1, 1, 1, -1)
        sy = sy.clamp(0, fine.height - 1)
        sx = sx.clamp(0, fine.width - 1)
        index = ref[:, :, None, None] * (fine.height * fine.width) + sy * fine.width + sx
        return index.reshape(index.shape[0], -1)

    own = mapped(0, 0, torch.tensor([-1, 0, 1], device=dev))
    still = torch.zeros(1, dtype=torch.long, device=dev)
    return torch.cat([own] + [mapped(dy, dx, still) for dy, dx in NEIGHBOURS], dim=1)


def sparse_posterior(bank: PatchBank, coords: torch.Tensor, index: torch.Tensor, sigma: float,
                     sharpness: float, top: int = 0, content: Optional[ContentLevel] = None,
                     values: Optional[torch.Tensor] = None, context: Optional[ContextTerm] = None):
    """Posterior means [N, V] of ``values`` (default: centre colours) with the softmax over each query's
    candidates ``index`` [N, K]; with ``top``, also the ``top`` best candidates' patch indices [N, top]."""
    values = bank.centres if values is None else values
    scale = _scale(sigma, sharpness)
    out = coords.new_empty(coords.shape[0], values.shape[1])
    best = index.new_empty(index.shape[0], top) if top else None
    rows_per = max(1, ROWS_PER_CHUNK * 16 // max(1, index.shape[1]))
    for start in range(0, coords.shape[0], rows_per):
        rows = slice(start, start + rows_per)
        idx = index[rows]
        cand = bank.coords[idx]  # [n, K, k]
        logits = (torch.einsum("nk,nck->nc", coords[rows], cand) - 0.5 * bank.sq_norms[idx]) * scale
        if bank.log_prior is not None:
            logits = logits + bank.log_prior[idx]
        if content is not None:
            cand_c = content.bank[idx]
            logits += (torch.einsum("nk,nck->nc", content.query[rows], cand_c) - 0.5 * content.bank_sq[idx]
                       ) * content.scale(sigma)
        if context is not None:
            logits += context.sparse(rows, idx)
        if top:
            best[rows] = idx.gather(1, logits.topk(min(top, idx.shape[1]), dim=1).indices)
        w = torch.softmax(logits, dim=1)
        out[rows] = torch.einsum("nc,ncd->nd", w, values[idx])
    return out, best


def _posterior(levels: PatchLevels, x: torch.Tensor, sigma: float, level: int, top: int,
               values: Optional[torch.Tensor] = None):
    """Posterior at ``level`` for one item x [1, C, H, W] (level 0): (centres [N, C], best [N, top] or None,
    the level's picture). Dense on small levels; below them, over the candidates that the next coarser level's
    best matches propose (a cascade down from the finest dense level)."""
    bank = levels.banks[level]
    xl = down(x, level, levels.periodic)
    coords = bank.embed(patches(xl, bank.p, levels.periodic)[0])
    sl = sigma * noise_factor(level)
    content = None if levels.guide is None else levels.guide.levels[level]
    context = None
    if levels.context > 0 and level + 1 < len(levels.banks):
        context = context_term(bank, levels.banks[level + 1], down(xl, 1, levels.periodic), xl.shape[-2:], level,
                               sigma, levels.sharpness, levels.context, levels.periodic)
    if level >= levels.dense_level():
        est, best = dense_posterior(bank, coords, sl, levels.sharpness, top, content, values, levels.balance,
                                    context)
        return est, best, xl
    _, parent_best, _ = _posterior(levels, x, sigma, level + 1, levels.candidates)
    index = _candidates(parent_best, levels.banks[level + 1], bank, xl.shape[-2:], 2, levels.periodic)
    est, best = sparse_posterior(bank, coords, index, sl, levels.sharpness, top, content, values, context)
    return est, best, xl


def _assemble(blocks: torch.Tensor, hw, channels: int, r: int, size, periodic: bool) -> torch.Tensor:
    """Posterior-mean blocks [Hl*Wl, C*r*r] of the coarse pixels -> the full picture [1, C, H, W]. The block of
    coarse pixel (i, j) covers output rows/cols [r*i - r/2, r*i + r/2): the pixels its blurred value centres on."""
    hl, wl = hw
    canvas = blocks.T.reshape(1, channels * r * r, hl * wl).reshape(1, channels * r * r, hl, wl)
    canvas = torch.nn.functional.pixel_shuffle(canvas, r)  # [1, C, hl*r, wl*r], starting at row/col -r/2
    h, w = size
    half = r // 2
    if periodic:
        return canvas.roll((-half, -half), dims=(2, 3))[..., :h, :w]
    need_h, need_w = h + half - canvas.shape[2], w + half - canvas.shape[3]
    if need_h > 0 or need_w > 0:
        canvas = torch.nn.functional.pad(canvas, (0, max(0, need_w), 0, max(0, need_h)), mode="replicate")
    return canvas[..., half:half + h, half:half + w]


def denoise(levels: PatchLevels, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """D(x, sigma) for walk tensors x [B, C, H, W], sigma [B]."""
    out = torch.empty_like(x)
    size = x.shape[-2:]
    for i in range(x.shape[0]):
        s = float(sigma[i])
        level = levels.level_for(s)
        item = x[i:i + 1].float()
        # the posterior found at ``level`` predicts each coarse pixel's full-resolution block of the references
        est, _, xl = _posterior(levels, item, s, level, 0, levels.blocks[level])
        out[i:i + 1] = _assemble(est, xl.shape[-2:], x.shape[1], 2 ** level, size, levels.periodic).to(x.dtype)
    return out
