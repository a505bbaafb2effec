"""The coherent patch denoiser: hard nearest-neighbour patch fields, coarse to fine, with voting.

The posterior-mean denoiser (denoiser.py) lets every pixel re-decide from its own noisy patch at every level, so
the arrangement a coarse level sets breaks into a mosaic further down, and soft means blur what they cannot decide.
This one follows GPNN (Granot et al. 2022) inside each evaluation D(x, sigma):

1. A pyramid of scale ``SCALE`` per level (0.75, as GPNN) of the references and of the noisy picture, down to a
   coarsest level of about a tenth of the references' shorter side (``COARSEST_FRACTION``), never above
   ``COARSEST`` px (the coarsest level's posterior is dense: queries x keys).
2. Coarsest level: the exact patch posterior (a dense softmax over every coarsest patch of the references, at that
   level's noise std), optionally times a *layout* prior that prefers patches from the same relative position in
   the reference (so sky stays above land; SinGAN/GPNN keep the arrangement the same way, from the reference's
   coarsest level); its posterior mean of centre colours is the coarsest estimate.
3. Every finer level k: the query is the coarser estimate brought up plus the noisy picture's own detail band at
   level k, shrunk by its Wiener gain a = t^2 / (t^2 + s_k^2) (t^2 the references' detail power there, s_k the
   level's noise std); keys are the references' patches made the same way (their blurred coarser level plus a
   times their detail), so query and key see the same band. Each query takes its *nearest* key among candidates
   propagated from the coarser level's field (the parent's match and its neighbours', at a +-1 px jitter, as
   coherence search does; Ashikhmin 2001) plus a few fixed random ones, scored with GPNN's completeness
   normalisation d / (alpha + min over queries of d) so no key is everybody's nearest. The winners' sharp patches
   are averaged where they overlap (voting): coherent neighbours agree, so the estimate stays sharp.
4. The finest level's vote is D(x, sigma). Votes are the winners' central VOTE_SIZE x VOTE_SIZE pixels under a
   Gaussian window, so where two winners disagree the nearer centre wins (a seam, not a double exposure).

Details that measured better: keys whose patch leaves the reference are never used on the finer levels (an edge
patch is half mirror; they made streaks); in layout mode the levels up to LAYOUT_SCALE of full size also pay for a
key taken from elsewhere (|du|^2 / 2 w^2), the finer ones recombine freely; levels whose gain is below GAIN_MIN are
skipped at high sigma (the estimate is the coarser one brought up: the posterior mean is smooth there anyway);
where the queries outnumber the keys (an output larger than the references) the completeness normalisation is
weakened by (queries / keys)^3, which had left flat blobs.

At high sigma the detail bands carry nothing (a ~ 0) and the finer levels are GPNN's upsampling of the coarse
estimate; as sigma falls a -> 1 and the fields follow the picture the walk has made, so the walk settles on a
picture whose patches are the references' own, arranged coherently. Deterministic: the random candidates come
from a generator seeded by the level.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from .bank import principal_basis

SCALE = 0.75  # side ratio between pyramid levels (GPNN's)
COARSEST = 24  # the references' coarsest level is at most about this many px on the shorter side (a 256 px one: 24)
COARSEST_FRACTION = 0.1  # ... and about this fraction of it (a 128 px one: 13 px; at 24 px it was one blurred mush)
RANDOM_CANDIDATES = 6  # fixed random keys tried by every query on top of the propagated ones
EXACT_PAIRS = 2 ** 22  # a level with queries x keys up to this is searched exhaustively
ROWS = 8192  # queries scored at once
PCA_DIMS = 16  # key coordinates per patch
LAYOUT_SCALE = 0.25  # layout mode holds patches near their place on levels at most this fraction of full size
VOTE_STD = 0.25  # the voting window's std, as a fraction of the patch side
VOTE_PATCH = 7  # the window's std is VOTE_STD x this many pixels (the default patch side)
VOTE_SIZE = 5  # the winners vote with their central VOTE_SIZE x VOTE_SIZE pixels (the window's rim weighs little)
PRIOR_COST = 0.1  # finer levels: a key pays this x (log of the largest reference share - log of its reference's)
GAIN_MIN = 0.02  # finer levels whose detail gain is below this carry no information yet: the estimate stops there


def level_size(height: int, width: int, level: int) -> Tuple[int, int]:
    return max(1, round(height * SCALE ** level)), max(1, round(width * SCALE ** level))


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Antialiased bilinear resize [B, C, H, W] -> [B, C, *size] (the pyramid's down and up step)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=down)


@lru_cache(maxsize=None)
def noise_factor(level: int) -> float:
    """Std of unit white noise after resizing to level ``level`` (measured once on a 512 px field)."""
    if level == 0:
        return 1.0
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 1, 512, 512, generator=g, dtype=torch.float64)
    small = resize(noise, level_size(512, 512, level))
    return float(small[..., 4:-4, 4:-4].std())


def depth_for(ref_hw, out_hw, patch: int) -> int:
    """The coarsest level index: the references' shorter side stays >= min(COARSEST, COARSEST_FRACTION x itself)
    and >= 2 patch sides (so the coarsest patches can still be rearranged), and the output's >= patch + 2."""
    least = max(2 * patch, min(COARSEST, COARSEST_FRACTION * min(ref_hw)))
    depth = 0
    while (min(level_size(*ref_hw, depth + 1)) >= least and min(level_size(*out_hw, depth + 1)) >= patch + 2):
        depth += 1
    return depth


def unfold(x: torch.Tensor, p: int, periodic: bool = False) -> torch.Tensor:
    """Every p x p patch of x [B, C, H, W] (edges mirrored or wrapped): [B*H*W, C*p*p]."""
    half = p // 2
    mode = "circular" if periodic else ("reflect" if min(x.shape[-2:]) > half else "replicate")
    cols = F.unfold(F.pad(x, (half,) * 4, mode=mode), p)  # [B, C*p*p, H*W]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def vote(values: torch.Tensor, hw, channels: int, p: int, periodic: bool) -> torch.Tensor:
    """Patches [H*W, C*p*p] centred on every pixel -> [1, C, H, W], each pixel the window-weighted mean of the
    patches over it (a Gaussian window of std VOTE_STD * p: where two winners disagree the nearer centre wins,
    a seam rather than a double exposure)."""
    h, w = hw
    half = p // 2
    t = torch.arange(p, dtype=values.dtype, device=values.device) - half
    g = torch.exp(-0.5 * (t / (VOTE_STD * VOTE_PATCH)) ** 2)
    win = torch.outer(g, g).reshape(1, -1, 1)  # [1, p*p, 1]
    cols = (values.T.unsqueeze(0).view(1, channels, p * p, -1) * win).view(1, channels * p * p, -1)
    full = (h + 2 * half, w + 2 * half)
    summed = F.fold(cols, full, p)
    counts = F.fold(win.expand(1, p * p, h * w), full, p)
    if periodic:  # wrap the margins back onto the opposite edges
        summed, counts = _wrap(summed, half), _wrap(counts, half)
    else:
        summed, counts = summed[..., half:half + h, half:half + w], counts[..., half:half + h, half:half + w]
    return summed / counts


def _wrap(x: torch.Tensor, half: int) -> torch.Tensor:
    if half == 0:
        return x
    x = x.clone()
    x[..., half:2 * half, :] += x[..., -half:, :]
    x[..., -2 * half:-half, :] += x[..., :half, :]
    x = x[..., half:-half, :]
    x[..., :, half:2 * half] += x[..., :, -half:]
    x[..., :, -2 * half:-half] += x[..., :, :half]
    return x[..., :, half:-half]


@dataclass(frozen=True)
class KeyLevel:
    """One pyramid level of the references: sharp patches (the votes), keys in a PCA basis."""

    size: Tuple[int, int]  # of each reference at this level
    values: torch.Tensor  # [M, C*v*v] the sharp patches' central v x v pixels (v = vote_size), M = K * h * w
    vote_size: int
    centres: torch.Tensor  # [M, C]
    blur: torch.Tensor  # [M, k] coordinates of the blurred (coarser level brought up) patches
    detail: torch.Tensor  # [M, k] coordinates of the detail (sharp - blurred) patches, without the mean
    basis: torch.Tensor  # [C*p*p, k]
    mean: torch.Tensor  # [k]
    detail_power: float  # mean square of the references' detail band at this level
    positions: torch.Tensor  # [M, 2] (row, col) of each patch's centre in its reference, in [0, 1]
    margin: int  # finer levels use only keys this far inside the reference: an edge patch is half mirror

    def interior(self) -> torch.Tensor:
        """[M] True for the keys whose whole patch lies inside its reference."""
        h, w = self.size
        ys = torch.arange(h, device=self.values.device)
        xs = torch.arange(w, device=self.values.device)
        inside = ((ys >= self.margin) & (ys < h - self.margin))[:, None] & (
            (xs >= self.margin) & (xs < w - self.margin))[None, :]
        return inside.reshape(-1).repeat(self.values.shape[0] // (h * w))

    def to(self, device) -> "KeyLevel":
        return replace(self, **{f: getattr(self, f).to(device) for f in
                                ("values", "centres", "blur", "detail", "basis", "mean", "positions")})

    def keys(self, gain: float) -> torch.Tensor:
        return self.blur + gain * self.detail


def _positions(k: int, h: int, w: int) -> torch.Tensor:
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    return grid.repeat(k, 1)


def _crop(patches_: torch.Tensor, c: int, p: int, v: int) -> torch.Tensor:
    """[M, C*p*p] -> [M, C*v*v]: the central v x v pixels of every patch."""
    lo = (p - v) // 2
    return patches_.view(-1, c, p, p)[:, :, lo:lo + v, lo:lo + v].reshape(patches_.shape[0], -1).contiguous()


def build_levels(references: torch.Tensor, depth: int, patch: int, dims: int) -> List[KeyLevel]:
    """The key levels 0..depth of references [K, C, H, W] (walk units)."""
    k_refs, c, h, w = references.shape
    vote = min(patch, VOTE_SIZE)
    refs = [resize(references.float(), level_size(h, w, level)) for level in range(depth + 1)]
    out = []
    for level, ref in enumerate(refs):
        size = tuple(ref.shape[-2:])
        blurred = resize(refs[level + 1], size) if level < depth else ref.mean((2, 3), keepdim=True).expand_as(ref)
        sharp = unfold(ref, patch)
        soft = unfold(blurred, patch)
        g = torch.Generator().manual_seed(level)
        sample = sharp if sharp.shape[0] <= 8192 else sharp[torch.randperm(sharp.shape[0], generator=g)[:8192]]
        mean = sample.mean(0)
        basis = principal_basis(sample - mean, dims)
        centre = (patch * patch) // 2
        out.append(KeyLevel(
            size=size, values=_crop(sharp, c, patch, vote), vote_size=vote,
            centres=sharp.view(-1, c, patch * patch)[:, :, centre].contiguous(),
            blur=(soft - mean) @ basis, detail=(sharp - soft) @ basis, basis=basis, mean=mean @ basis,
            detail_power=float((ref - blurred).square().mean()), positions=_positions(k_refs, *size),
            margin=min(patch // 2, (min(size) - 1) // 2)))
    return out


@dataclass(frozen=True)
class CoherentModel:
    """Everything the coherent denoiser needs for one output size."""

    levels: List[KeyLevel]  # reference side, index = level
    out_sizes: List[Tuple[int, int]]  # output side, index = level
    patch: int
    alpha: float  # completeness normalisation, relative to the median nearest distance
    layout: float  # width of the coarsest level's position prior (fraction of the picture); 0 = none
    periodic: bool
    iterations: int  # nearest-neighbour + vote rounds per level
    log_prior: Optional[torch.Tensor] = None  # [K] log share of each reference (None: equal)
    variation: float = 1.0  # multiplies the detail power the gain assumes: > 1 lets the walk's noise choose more
    place_cache: dict = field(default_factory=dict, compare=False, repr=False)  # layout costs per exact level

    def to(self, device) -> "CoherentModel":
        return replace(self, levels=[lv.to(device) for lv in self.levels],
                       log_prior=None if self.log_prior is None else self.log_prior.to(device))


def _coarsest(model: CoherentModel, x: torch.Tensor, sigma: float):
    """Coarsest level: exact posterior (+ layout prior); (estimate [1, C, h, w], best key per pixel [N])."""
    lv = model.levels[-1]
    hw = model.out_sizes[-1]
    q = (unfold(x, model.patch, model.periodic) @ lv.basis) - lv.mean  # [N, k]
    keys = lv.keys(1.0)
    s = max(sigma * noise_factor(len(model.levels) - 1), 1e-4)
    logits = (q @ keys.T - 0.5 * keys.square().sum(1)) / s ** 2  # [N, M]
    if model.layout > 0:
        mine = _positions(1, *hw).to(x.device)
        logits = logits - torch.cdist(mine, lv.positions).square() / (2 * model.layout ** 2)
    if model.log_prior is not None:  # each key's reference's share
        h, w = lv.size
        logits = logits + model.log_prior.repeat_interleave(h * w)[None]
    weights = torch.softmax(logits, dim=1)
    est = (weights @ lv.centres).T.reshape(1, -1, *hw)
    return est, logits.argmax(1)


def _candidates(parent: torch.Tensor, child: KeyLevel, parent_lv: KeyLevel, out_hw, parent_hw, level: int,
                n_keys: int) -> torch.Tensor:
    """Candidate keys [N, C] for every output pixel of a level from the coarser level's best keys ``parent`` [Np]."""
    dev = parent.device
    h, w = out_hw
    hp, wp = parent_hw
    ys = torch.arange(h, device=dev)
    xs = torch.arange(w, device=dev)
    py = ((ys.float() + 0.5) * hp / h - 0.5).round().long().clamp(0, hp - 1)
    px = ((xs.float() + 0.5) * wp / w - 0.5).round().long().clamp(0, wp - 1)
    oy = (ys.float() - (py.float() + 0.5) * h / hp + 0.5)[:, None].expand(h, w).reshape(-1, 1)  # offset to parent
    ox = (xs.float() - (px.float() + 0.5) * w / wp + 0.5)[None, :].expand(h, w).reshape(-1, 1)
    ph, pw = parent_lv.size
    ch, cw = child.size
    per_parent, per_child = ph * pw, ch * cw
    m = child.margin
    cands = []
    for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
        qy, qx = (py + dy).clamp(0, hp - 1), (px + dx).clamp(0, wp - 1)
        best = parent[(qy[:, None] * wp + qx[None, :]).reshape(-1)]  # [N]
        ref = best // per_parent
        my, mx = (best % per_parent) // pw, best % pw
        # the match's centre one level finer, moved back by the neighbour's step and on by our offset
        cy = ((my - dy).float() + 0.5) * ch / ph - 0.5 + oy[:, 0]
        cx = ((mx - dx).float() + 0.5) * cw / pw - 0.5 + ox[:, 0]
        jit = (-1, 0, 1) if (dy, dx) == (0, 0) else (0,)
        for jy in jit:
            for jx in jit:
                yy = (cy + jy).round().long().clamp(m, ch - 1 - m)
                xx = (cx + jx).round().long().clamp(m, cw - 1 - m)
                cands.append(ref * per_child + yy * cw + xx)
    g = torch.Generator().manual_seed(1000 + level)
    k_refs = n_keys // per_child
    ry = torch.randint(m, ch - m, (RANDOM_CANDIDATES,), generator=g)
    rx = torch.randint(m, cw - m, (RANDOM_CANDIDATES,), generator=g)
    rr = torch.randint(0, k_refs, (RANDOM_CANDIDATES,), generator=g)
    rand = (rr * per_child + ry * cw + rx).to(dev)[None].expand(h * w, -1)
    return torch.cat([torch.stack(cands, 1), rand], 1)


def _propagated(best: torch.Tensor, lv: KeyLevel, hw) -> torch.Tensor:
    """Candidates [N, 9] from the same level's field: each pixel's own match and its four neighbours' matches
    continued (PatchMatch's propagation), the own match also at a +-1 px jitter."""
    h, w = hw
    ch, cw = lv.size
    per = ch * cw
    field = best.view(h, w)
    cands = []
    for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
        src = field.roll((-dy, -dx), dims=(0, 1)).reshape(-1)  # neighbour (y+dy, x+dx)'s match
        ref, my, mx = src // per, (src % per) // cw, src % cw
        for jy, jx in (((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)) if (dy, dx) == (0, 0) else ((0, 0),)):
            yy = (my - dy + jy).clamp(lv.margin, ch - 1 - lv.margin)
            xx = (mx - dx + jx).clamp(lv.margin, cw - 1 - lv.margin)
            cands.append(ref * per + yy * cw + xx)
    return torch.stack(cands, 1)


@dataclass(frozen=True)
class _Place:
    """Layout mode's cost for a query taking a key from elsewhere in the reference: |u_q - u_key|^2 / (2 w^2),
    u the relative positions in [0, 1]^2 (added to the normalised score, whose good matches sit near 1)."""

    mine: torch.Tensor  # [N, 2]
    keys: torch.Tensor  # [M, 2]
    width: float
    cache: dict  # the dense cost, made once per level and output size (it depends on nothing else)

    def dense(self) -> torch.Tensor:
        key = (self.mine.shape[0], self.keys.shape[0], self.width, str(self.mine.device))
        if key not in self.cache:
            self.cache[key] = torch.cdist(self.mine, self.keys).square() / (2 * self.width ** 2)
        return self.cache[key]

    def sparse(self, cands: torch.Tensor) -> torch.Tensor:
        return (self.keys[cands] - self.mine[:, None]).square().sum(-1) / (2 * self.width ** 2)


def _nearest(q: torch.Tensor, keys: torch.Tensor, cands: Optional[torch.Tensor], alpha: float,
             allowed: Optional[torch.Tensor] = None, place: Optional["_Place"] = None,
             key_cost: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Best key per query [N] by GPNN's normalised score d / (alpha * mean(m) + m_key), m_key the smallest
    distance any query has to that key; ``cands`` [N, C] or None (every key; ``allowed`` [M] masks keys);
    ``key_cost`` [M] is added to every key's score (the references' weights)."""
    n = q.shape[0]
    if cands is None:
        d = torch.cdist(q, keys).square()  # [N, M]
        if allowed is not None:
            d[:, ~allowed] = float("inf")
        m = d.min(0).values
        scale = alpha * float(m[torch.isfinite(m)].mean()) + 1e-12
        score = d / (scale + m)
        if place is not None:
            score += place.dense()
        if key_cost is not None:
            score += key_cost[None]
        if allowed is not None:
            score[:, ~allowed] = float("inf")  # inf / inf would be NaN, which argmin takes
        return score.argmin(1)
    d = torch.empty(cands.shape, dtype=q.dtype, device=q.device)
    for start in range(0, n, ROWS):
        rows = slice(start, start + ROWS)
        d[rows] = (keys[cands[rows]] - q[rows, None]).square().sum(-1)
    m = torch.full((keys.shape[0],), float("inf"), dtype=d.dtype, device=d.device)
    m.scatter_reduce_(0, cands.reshape(-1), d.reshape(-1), reduce="amin")
    scale = alpha * float(d[:, 0].mean()) + 1e-12  # the parent's own continued match: a typical distance
    score = d / (scale + m[cands])
    if place is not None:
        score += place.sparse(cands)
    if key_cost is not None:
        score += key_cost[cands]
    pick = score.argmin(1)
    return cands.gather(1, pick[:, None])[:, 0]


def completeness_alpha(alpha: float, queries: int, keys: int) -> float:
    """GPNN's completeness normalisation spreads the queries over the keys; with more queries than keys (an output
    larger than the references) every key must serve several, and the plain normalisation left flat blobs (each
    key's patch pulled over more pixels than it fits): weakened by (queries / keys)^3 there."""
    return alpha * max(1.0, queries / keys) ** 3


def _key_cost(model: CoherentModel, lv: KeyLevel) -> Optional[torch.Tensor]:
    """[M] what a finer level's key pays for its reference's weight (None when the references weigh the same): the
    coarsest level's posterior has the weights as its prior, and without this the finer levels' nearest search
    drew freely from a reference weighted 10^-4."""
    if model.log_prior is None:
        return None
    h, w = lv.size
    return (PRIOR_COST * (model.log_prior.max() - model.log_prior)).repeat_interleave(h * w)


def coherent_denoise(model: CoherentModel, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """D(x, sigma) for one item x [1, C, H, W] (walk units)."""
    depth = len(model.levels) - 1
    sizes = model.out_sizes
    xs = [resize(x, sizes[level]) for level in range(depth + 1)]
    est, best = _coarsest(model, xs[-1], sigma)
    c = x.shape[1]
    for level in range(depth - 1, -1, -1):
        lv, hw = model.levels[level], sizes[level]
        s = sigma * noise_factor(level)
        power = lv.detail_power * model.variation
        gain = power / (power + s * s)
        if gain < GAIN_MIN:  # nothing of this level's detail is known yet: the smooth estimate is the mean
            break
        query = resize(est, hw) + gain * (xs[level] - resize(resize(xs[level], sizes[level + 1]), hw))
        keys = lv.keys(gain)
        q = unfold(query, model.patch, model.periodic) @ lv.basis - lv.mean
        exact = q.shape[0] * keys.shape[0] <= EXACT_PAIRS
        cands = None if exact else _candidates(best, lv, model.levels[level + 1], hw, sizes[level + 1], level,
                                               keys.shape[0])
        allowed = lv.interior() if exact else None
        place = _Place(_positions(1, *hw).to(x.device), lv.positions, model.layout, model.place_cache) if (
            model.layout > 0 and SCALE ** level <= LAYOUT_SCALE) else None
        alpha = completeness_alpha(model.alpha, q.shape[0], keys.shape[0])
        cost = _key_cost(model, lv)
        best = _nearest(q, keys, cands, alpha, allowed, place, cost)
        est = vote(lv.values[best], hw, c, lv.vote_size, model.periodic)
        for _ in range(model.iterations - 1):  # EM rounds: the vote is the next query, against the sharp keys
            q = unfold(est, model.patch, model.periodic) @ lv.basis - lv.mean
            best = _nearest(q, lv.keys(1.0), None if exact else torch.cat(
                [_propagated(best, lv, hw), cands[:, -RANDOM_CANDIDATES:]], 1), alpha, allowed, place, cost)
            est = vote(lv.values[best], hw, c, lv.vote_size, model.periodic)
    return resize(est, sizes[0])


def denoise(model: CoherentModel, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """D(x, sigma) for walk tensors x [B, C, H, W], sigma [B], item by item."""
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        out[i:i + 1] = coherent_denoise(model, x[i:i + 1].float(), float(sigma[i])).to(x.dtype)
    return out
