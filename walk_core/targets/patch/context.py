"""The context term of the patch posterior: a level's patch also answers for its parent one level up.

A pixel's posterior at pyramid level l sees only the patch around it, so each pixel re-decides the layout on its
own once the walk reaches that level, from a picture whose noise there is still large: the arrangement the
coarser level had set (brick courses, a painting's large areas) breaks into a mosaic. With ``context`` c > 0 the
logit of bank patch j for query pixel i also gets

    c * (q'_i . P'_j - |P'_j|^2 / 2) / s'^2

where q'_i is the query's patch one level coarser around i's parent pixel, P'_j the reference's patch around j's
parent, and s' = sigma * noise_factor(l + 1) the noise there: Wei & Levoy 2000's multiresolution neighbourhood
as a likelihood. The coarse patch spans twice the width, so a patch is chosen for the surroundings it came from.
c = 1 counts the coarse pixels' noise as independent; the pyramid's blur correlates it (denoiser.py), so the
coarse term is overconfident and c < 1 discounts it.

The parent of level-l pixel (y, x) is the level-(l+1) pixel ((y + 1) // 2, (x + 1) // 2): the coarse pixel whose
blurred value centres on it (blur_down keeps the even pixels), clamped at the edges or wrapped (periodic query).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .bank import PatchBank, patches
from .pyramid import noise_factor


def parent_index(height: int, width: int, coarse_height: int, coarse_width: int, count: int, periodic: bool,
                 device) -> torch.Tensor:
    """[count * height * width] raster indices (image, y, x) of a level -> their parents' raster indices in the
    level above (``coarse_height`` x ``coarse_width`` per image)."""
    y = torch.arange(height, device=device)
    x = torch.arange(width, device=device)
    py, px = (y + 1) // 2, (x + 1) // 2
    if periodic:
        py, px = py % coarse_height, px % coarse_width
    else:
        py, px = py.clamp(max=coarse_height - 1), px.clamp(max=coarse_width - 1)
    within = (py[:, None] * coarse_width + px[None, :]).reshape(-1)  # [H * W]
    image = torch.arange(count, device=device)[:, None] * (coarse_height * coarse_width)
    return (image + within[None, :]).reshape(-1)


@dataclass(frozen=True)
class ContextTerm:
    """The coarse level's part of one level's logits, for one query picture."""

    query: torch.Tensor  # [Nc, k]: the query's coarse patches, in the coarse bank's PCA basis
    coarse: PatchBank
    scale: float  # context * sharpness / s'^2
    query_parent: torch.Tensor  # [N]: each query pixel's parent (index into the coarse query)
    bank_parent: torch.Tensor  # [M]: each bank patch's parent (index into the coarse bank)

    def dense(self, rows: slice) -> torch.Tensor:
        """The term [n, M] for query ``rows`` against every bank patch."""
        parents = self.query_parent[rows]
        used = torch.unique(parents, return_inverse=True)
        coarse = torch.addmm(self.coarse.sq_norms, self.query[used[0]], self.coarse.coords.T, beta=-0.5,
                             alpha=1.0) * self.scale  # [distinct parents, Mc]
        return coarse[used[1]][:, self.bank_parent]

    def sparse(self, rows: slice, index: torch.Tensor) -> torch.Tensor:
        """The term [n, K] for query ``rows`` against their candidates ``index`` [n, K]."""
        parents = self.bank_parent[index]
        q = self.query[self.query_parent[rows]]
        return (torch.einsum("nk,nck->nc", q, self.coarse.coords[parents]) - 0.5 * self.coarse.sq_norms[parents]
                ) * self.scale


def context_term(bank: PatchBank, coarse: PatchBank, coarse_picture: torch.Tensor, fine_hw, level: int,
                 sigma: float, sharpness: float, weight: float, periodic: bool) -> ContextTerm:
    """The context term of ``bank`` (level ``level``) from the level above: ``coarse`` its bank, ``coarse_picture``
    [1, C, h, w] the query picture there, ``fine_hw`` the query's size at ``level``; ``sigma`` the walk's."""
    dev = coarse_picture.device
    hc, wc = coarse_picture.shape[-2:]
    query = coarse.embed(patches(coarse_picture, coarse.p, periodic)[0])
    s = max(sigma * noise_factor(level + 1), 1e-8)
    count = bank.size // (bank.height * bank.width)
    return ContextTerm(query, coarse, weight * sharpness / s ** 2,
                       parent_index(fine_hw[0], fine_hw[1], hc, wc, 1, periodic, dev),
                       parent_index(bank.height, bank.width, coarse.height, coarse.width, count, False, dev))
