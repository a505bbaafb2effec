"""GPNN peer, written here from the paper (issue 28 §2).

Granot, Feinstein, Shocher, Bagon, Irani, "Drop the GAN: In Defense of Patches Nearest Neighbors as Single
Image Generative Models", CVPR 2022. One reference picture, no training: a coarse-to-fine patch
nearest-neighbour search.

    from rwalk.bench.peer_gpnn import gpnn
    out = gpnn(reference, 256, 256, seed=0)   # reference [3, H, W] in [0, 1] -> [3, 256, 256] in [0, 1]

The algorithm (paper §3; defaults those of the paper / its authors' published settings: patch 7, pyramid
ratio 4/3, coarsest 14 px, noise 0.75, alpha 0.005, T = 10):

1. Pyramids with downscale factor ``0.75`` (antialiased bilinear resizes from the full picture) of the
   reference and of the output size, down to a coarsest level whose short side is about ``coarsest`` px
   (default 14, two 7x7 patches: 8 x 8 patch positions. 21 px was tried and copies the reference almost
   exactly whatever the seed; 14 px gives the paper's kind of variation).
2. Initial guess at the coarsest level: the reference's coarsest level resized to the output's coarsest
   size (``layout=True``, the paper), or ``patch``-sized tiles taken from random places of it
   (``layout=False``: a stationary texture), plus grey Gaussian noise (one draw shared by R, G, B, as in the
   authors' code) of std ``noise`` = 0.75 in [0, 1] units: strong, the coarsest level is mostly rebuilt.
3. At each level, ``iterations`` (T = 10) EM steps of *PNN*: every ``patch`` x ``patch`` patch of the
   current picture (the queries) is matched to the keys, the reference's patches at that level; in the
   first step of a level (the query being the upsampled coarser result) the keys are the patches of the
   *blurred* reference (its coarser level upsampled), afterwards the reference's own patches. The match
   minimises the completeness-normalised score  D(q, k) / (alpha + min_q' D(q', k))  (alpha = 5e-3, D the
   Euclidean distance of the patches in [0, 1] units), which steers queries away from keys that some other
   query already matches well, so all of the reference gets used. Each output pixel is then the mean of the
   values (the reference's sharp patches) of all the winners that overlap it (voting).
4. The result is upsampled to the next finer level and step 3 repeats; the finest level is the output.

Deviations, for 2 CPU cores (the exact all-pairs search costs minutes per picture at 256 px):

- the search is exact (chunked matrix products, two passes: the per-key minimum, then the normalised
  argmin) only at levels with at most ``exact_limit`` (1.2e7) query x key pairs: at 256 px output the
  levels up to ~61 px. Finer levels use a PatchMatch-style local search (``_local``): each query scores
  its match carried from the coarser level / previous step, its 4 neighbours, the matches propagated from
  queries 1-16 px away, and random offsets at halving radii, on patches projected onto their top
  ``pca_dims`` (16) principal components, and picks the plain nearest neighbour (``local_alpha`` = inf,
  the paper's alpha -> inf limit): a normaliser taken only over the few queries that scored a key
  saturates (D / (alpha + D) ~ 1 for a key only this query scored) and then no longer tells good matches
  from bad ones, which leaves incoherent, blurred votes. Completeness, which decides the layout and the
  diversity, is thus enforced exactly at the coarse levels.
- levels finer than half the output size run ``fine_iterations`` (3) EM steps instead of T = 10: the
  coarser levels have fixed the structure, the fine steps only sharpen.

Randomness: one ``torch.Generator`` seeded ``seed`` (the noise, the tile shuffle, the random search); a
batch's item i uses ``seed + i`` (``generate``).
"""
from __future__ import annotations

import logging
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F

log = logging.getLogger("bench.peer_gpnn")

SCALE = 0.75


def check_reference(reference, out_h: int, out_w: int, min_side: int) -> torch.Tensor:
    """The shared input checks of the texture peers; returns the reference as float32 on the CPU."""
    if not isinstance(reference, torch.Tensor):
        raise ValueError(f"reference must be a torch.Tensor [3, H, W] in [0, 1], got {type(reference).__name__}")
    if reference.dim() != 3 or reference.shape[0] != 3:
        raise ValueError(f"reference must have shape [3, H, W], got {list(reference.shape)}")
    if not torch.is_floating_point(reference) or not bool(torch.isfinite(reference).all()):
        raise ValueError("reference must be a finite floating-point tensor with values in [0, 1]")
    lo, hi = float(reference.min()), float(reference.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"reference values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    if min(reference.shape[1:]) < min_side:
        raise ValueError(f"reference sides must be at least {min_side} px, got {list(reference.shape[1:])}")
    for name, value in (("out_h", out_h), ("out_w", out_w)):
        if not isinstance(value, int) or isinstance(value, bool) or value < min_side:
            raise ValueError(f"{name} must be an int >= {min_side}, got {value!r}")
    return reference.detach().float().cpu().clamp(0, 1)


def _resize(img: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    down = size[0] < img.shape[-2] or size[1] < img.shape[-1]
    return F.interpolate(img[None], size=size, mode="bilinear", align_corners=False, antialias=down)[0]


def _patches(img: torch.Tensor, p: int, stride: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Patches [n, 3*p*p] at the grid positions (stride ``stride``, the last row/column always included)
    and the flat pixel indices [n, p*p] each patch covers."""
    _, h, w = img.shape
    ys = _positions(h - p + 1, stride)
    xs = _positions(w - p + 1, stride)
    offs = (torch.arange(p)[:, None] * w + torch.arange(p)[None, :]).reshape(-1)  # [p*p]
    starts = (ys[:, None] * w + xs[None, :]).reshape(-1)  # [n]
    index = starts[:, None] + offs[None, :]  # [n, p*p]
    flat = img.reshape(3, -1)
    return flat[:, index].permute(1, 0, 2).reshape(len(starts), -1), index


def _positions(n: int, stride: int) -> torch.Tensor:
    pos = torch.arange(0, n, stride)
    if int(pos[-1]) != n - 1:
        pos = torch.cat([pos, torch.tensor([n - 1])])
    return pos


def _nearest(queries: torch.Tensor, keys: torch.Tensor, alpha: float,
             chunk_bytes: int = 1 << 27) -> torch.Tensor:
    """Exact search: index of the key with the least normalised score D(q, k) / (alpha + min_q' D(q', k)) for
    every query, D the Euclidean distance. Two chunked passes of one matrix product each (the per-key minimum
    first); the squared norms ride in two extra columns of the product."""
    ones_q, ones_k = torch.ones(len(queries), 1), torch.ones(len(keys), 1)
    q_aug = torch.cat([queries, (queries * queries).sum(1, keepdim=True), ones_q], 1)
    k_aug = torch.cat([-2 * keys, ones_k, (keys * keys).sum(1, keepdim=True)], 1)
    rows = max(1, chunk_bytes // (4 * len(keys)))
    key_min = torch.full((len(keys),), float("inf"))
    for start in range(0, len(queries), rows):
        key_min = torch.minimum(key_min, (q_aug[start:start + rows] @ k_aug.T).amin(0))
    inv = 1.0 / (alpha + key_min.clamp(min=0).sqrt())
    out = torch.empty(len(queries), dtype=torch.long)
    for start in range(0, len(queries), rows):
        d = (q_aug[start:start + rows] @ k_aug.T).clamp_(min=0).sqrt_()
        out[start:start + rows] = d.mul_(inv).argmin(1)
    return out


def _local(queries: torch.Tensor, keys: torch.Tensor, field: torch.Tensor, qshape: Tuple[int, int],
           kshape: Tuple[int, int], alpha: float, g: torch.Generator,
           chunk: int = 8192) -> torch.Tensor:
    """Approximate search for large levels (a PatchMatch-style round, Barnes et al. 2009, run in parallel):
    each query scores its current match ``field`` [nq, 2] (key row, column) and its 4 neighbours, the
    matches of the queries 1, 2, 4, 8 and 16 steps away along each axis shifted back by that step
    (propagation), and random offsets at halving radii (random search). The normalised score uses, per key,
    the least distance among the queries that scored it. Returns the new field."""
    qh, qw = qshape
    kh, kw = kshape
    f = field.reshape(qh, qw, 2)
    cands = [f + torch.tensor([dy, dx]) for dy, dx in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]
    for step in (1, 2, 4, 8, 16):
        for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step)):
            ys = (torch.arange(qh) + dy).clamp(0, qh - 1)
            xs = (torch.arange(qw) + dx).clamp(0, qw - 1)
            cands.append(f[ys][:, xs] - torch.tensor([dy, dx]))  # at the border: a nearby key, still valid
    radius = max(kh, kw)
    while radius >= 2:
        cands.append(f + torch.randint(-radius, radius + 1, (qh, qw, 2), generator=g))
        radius //= 2
    cand = torch.stack(cands, 2).reshape(qh * qw, -1, 2)
    cand[..., 0].clamp_(0, kh - 1)
    cand[..., 1].clamp_(0, kw - 1)
    idx = cand[..., 0] * kw + cand[..., 1]  # [nq, C]
    dist = torch.empty(idx.shape)
    for start in range(0, len(queries), chunk):
        diff = keys[idx[start:start + chunk]] - queries[start:start + chunk, None, :]
        dist[start:start + chunk] = (diff * diff).sum(2).sqrt_()
    if alpha == float("inf"):
        best = dist.argmin(1)
    else:
        key_min = torch.full((len(keys),), float("inf"))
        key_min.scatter_reduce_(0, idx.reshape(-1), dist.reshape(-1), reduce="amin")
        best = (dist / (alpha + key_min[idx])).argmin(1)
    return cand[torch.arange(len(cand)), best]


def _pnn(query_img: torch.Tensor, key_img: torch.Tensor, value_img: torch.Tensor, p: int, alpha: float,
         exact_limit: float, basis, field, g: torch.Generator, local_alpha: float = float("inf")):
    """One EM step: match every query patch, then vote the winners' value patches into a picture. Returns
    the picture and the match field [nq, 2] (key row, column of every query position)."""
    qshape = (query_img.shape[1] - p + 1, query_img.shape[2] - p + 1)
    kshape = (key_img.shape[1] - p + 1, key_img.shape[2] - p + 1)
    queries, index = _patches(query_img, p)
    keys, _ = _patches(key_img, p)
    values, _ = _patches(value_img, p)
    if qshape[0] * qshape[1] * kshape[0] * kshape[1] <= exact_limit or field is None:
        nn = _nearest(queries, keys, alpha)
        field = torch.stack([nn // kshape[1], nn % kshape[1]], 1)
    else:
        if basis is not None:
            keys, queries = keys @ basis, queries @ basis
        field = _local(queries, keys, field, qshape, kshape, local_alpha, g)
        nn = field[:, 0] * kshape[1] + field[:, 1]
    _, h, w = query_img.shape
    chosen = values[nn].reshape(len(nn), 3, p * p)
    acc = torch.zeros(3, h * w)
    acc.index_add_(1, index.reshape(-1), chosen.permute(1, 0, 2).reshape(3, -1))
    count = torch.bincount(index.reshape(-1), minlength=h * w).clamp(min=1)
    return (acc / count).reshape(3, h, w), field


def _pca_basis(img: torch.Tensor, p: int, dims: int):
    """The top ``dims`` principal directions [3*p*p, dims] of the patches of ``img`` (None: no reduction)."""
    patches, _ = _patches(img, p)
    if dims >= patches.shape[1]:
        return None
    patches = patches - patches.mean(0)
    cov = (patches.T @ patches).double()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 147x147 eigh: threads only add (large) synchronisation costs
    try:
        _, vecs = torch.linalg.eigh(cov)
    finally:
        torch.set_num_threads(threads)
    return vecs[:, -dims:].float()


def _upsample_field(field: torch.Tensor, old_q: Tuple[int, int], new_q: Tuple[int, int],
                    old_k: Tuple[int, int], new_k: Tuple[int, int]) -> torch.Tensor:
    """The match field of a coarser level carried to a finer one (positions and matches scaled)."""
    f = field.reshape(old_q[0], old_q[1], 2).float()
    ys = (torch.arange(new_q[0]) * old_q[0] / new_q[0]).long().clamp(max=old_q[0] - 1)
    xs = (torch.arange(new_q[1]) * old_q[1] / new_q[1]).long().clamp(max=old_q[1] - 1)
    f = f[ys][:, xs]
    out = torch.stack([(f[..., 0] * new_k[0] / old_k[0]).round().clamp(0, new_k[0] - 1),
                       (f[..., 1] * new_k[1] / old_k[1]).round().clamp(0, new_k[1] - 1)], -1)
    return out.long().reshape(-1, 2)


def _grid(size: Tuple[int, int], p: int) -> Tuple[int, int]:
    return size[0] - p + 1, size[1] - p + 1


def _sizes(h: int, w: int, levels: int) -> List[Tuple[int, int]]:
    return [(max(1, round(h * SCALE ** k)), max(1, round(w * SCALE ** k))) for k in range(levels + 1)]


def gpnn(reference: torch.Tensor, out_h: int, out_w: int, seed: int, *, layout: bool = True, patch: int = 7,
         coarsest: int = 14, noise: float = 0.75, alpha: float = 5e-3, iterations: int = 10,
         fine_iterations: int = 3, pca_dims: int = 16, exact_limit: float = 1.2e7,
         local_alpha: float = math.inf) -> torch.Tensor:
    """Generate one picture [3, out_h, out_w] in [0, 1] from ``reference`` [3, H, W] in [0, 1] by GPNN
    (Granot et al., CVPR 2022); the steps, parameters and deviations are in this module's docstring."""
    ref = check_reference(reference, out_h, out_w, min_side=patch + 2)
    if not isinstance(patch, int) or patch < 2:
        raise ValueError(f"patch must be an int >= 2, got {patch!r}")
    if not isinstance(coarsest, int) or coarsest < patch + 1:
        raise ValueError(f"coarsest must be an int >= patch + 1 = {patch + 1}, got {coarsest!r}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite std >= 0, got {noise!r}")
    for name, value in (("alpha", alpha), ("local_alpha", local_alpha)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0 (inf: plain nearest neighbour), got {value!r}")
    for name, value in (("iterations", iterations), ("fine_iterations", fine_iterations)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    short = min(ref.shape[1], ref.shape[2], out_h, out_w)
    levels = max(0, round(math.log(coarsest / short) / math.log(SCALE))) if short > coarsest else 0
    ref_sizes = _sizes(ref.shape[1], ref.shape[2], levels)
    out_sizes = _sizes(out_h, out_w, levels)
    refs = [_resize(ref, s) for s in ref_sizes]
    g = torch.Generator().manual_seed(int(seed))

    coarse = refs[levels]
    if not layout:
        coarse = _shuffle_tiles(coarse, out_sizes[levels], patch, g)
    y = _resize(coarse, out_sizes[levels])
    y = y + noise * torch.randn((1,) + tuple(y.shape[1:]), generator=g)  # grey noise, as the authors' code
    log.debug("gpnn: %d levels, coarsest ref %s out %s", levels + 1, ref_sizes[levels], out_sizes[levels])
    field = None
    for k in range(levels, -1, -1):
        if k < levels:
            y = _resize(y, out_sizes[k])
            keys = _resize(refs[k + 1], ref_sizes[k])  # the blurred reference at this level
            field = _upsample_field(field, _grid(out_sizes[k + 1], patch), _grid(out_sizes[k], patch),
                                    _grid(ref_sizes[k + 1], patch), _grid(ref_sizes[k], patch))
        else:
            keys = refs[k]
        steps = fine_iterations if SCALE ** k > 0.5 and levels > 0 else iterations
        pairs = math.prod(_grid(out_sizes[k], patch)) * math.prod(_grid(ref_sizes[k], patch))
        basis = _pca_basis(refs[k], patch, pca_dims) if pairs > exact_limit else None
        for t in range(steps):
            y, field = _pnn(y, keys if t == 0 else refs[k], refs[k], patch, alpha, exact_limit, basis, field, g,
                            local_alpha)
    return y.clamp(0, 1)


def _shuffle_tiles(img: torch.Tensor, size: Tuple[int, int], tile: int, g: torch.Generator) -> torch.Tensor:
    """A picture of ``size`` tiled with random ``tile``-px squares of ``img`` (the ``layout=False`` start)."""
    _, h, w = img.shape
    out = torch.empty(3, size[0], size[1])
    for y0 in range(0, size[0], tile):
        for x0 in range(0, size[1], tile):
            th, tw = min(tile, size[0] - y0), min(tile, size[1] - x0)
            sy = int(torch.randint(0, h - th + 1, (1,), generator=g))
            sx = int(torch.randint(0, w - tw + 1, (1,), generator=g))
            out[:, y0:y0 + th, x0:x0 + tw] = img[:, sy:sy + th, sx:sx + tw]
    return out


def generate(reference: torch.Tensor, out_h: int, out_w: int, seed: int, count: int = 1, **options) -> torch.Tensor:
    """``count`` pictures [count, 3, out_h, out_w]; item i uses seed ``seed + i``."""
    return torch.stack([gpnn(reference, out_h, out_w, seed + i, **options) for i in range(count)])
