"""Measures of generated pictures against references: novel (not copied), faithful (same colours and
texture statistics), structure kept (SSIM). Used by the tests and the benchmarks.

Pictures are walk tensors [3, H, W] in [-1, 1]. The "halves" baselines split a reference into its left and
right halves and measure the same thing between them: how different two honest pieces of the same picture are.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from .style import encode_style, style_distance
from .targets.patch.content import luminance as patch_luminance

NOVELTY_PATCH = 16
SWD_DIRECTIONS = 64
COPY_CUT = 0.5  # copy_report: a patch nearer than this x the halves' novelty counts as copied


def _patch_set(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    return F.unfold(x[None].float(), size, stride=stride)[0].T  # [N, 3*size*size]


def nearest_patch_distances(out: torch.Tensor, ref: torch.Tensor, size: int = NOVELTY_PATCH, out_stride: int = 8,
                            ref_stride: int = 1) -> torch.Tensor:
    """RMS distance [N] from each of ``out``'s size x size patches (every ``out_stride`` pixels) to the nearest
    patch of ``ref``."""
    q = _patch_set(out, size, out_stride)
    bank = _patch_set(ref, size, ref_stride)
    best = torch.full((q.shape[0],), float("inf"))
    b_sq = bank.square().sum(1)
    for start in range(0, bank.shape[0], 8192):
        chunk = slice(start, start + 8192)
        d = q.square().sum(1, keepdim=True) - 2 * q @ bank[chunk].T + b_sq[chunk]
        best = torch.minimum(best, d.min(1).values)
    return (best.clamp_min(0) / q.shape[1]).sqrt()


def nearest_patch_median(out: torch.Tensor, ref: torch.Tensor, size: int = NOVELTY_PATCH, out_stride: int = 8,
                         ref_stride: int = 1) -> float:
    """Median over ``out``'s size x size patches of the RMS distance to the nearest patch of ``ref``."""
    return float(nearest_patch_distances(out, ref, size, out_stride, ref_stride).median())


def halves(ref: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    w = ref.shape[-1] // 2
    return ref[..., :w], ref[..., w:2 * w]


def colour_swd(a: torch.Tensor, b: torch.Tensor, directions: int = SWD_DIRECTIONS, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance between the pixel colours of two pictures (3-D point clouds)."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(3, directions, generator=g)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa = (a.reshape(3, -1).T.float() @ dirs).sort(0).values
    pb = (b.reshape(3, -1).T.float() @ dirs).sort(0).values
    n = min(pa.shape[0], pb.shape[0])
    levels = (torch.arange(n) + 0.5) / n
    qa = pa[(levels * pa.shape[0]).long()]
    qb = pb[(levels * pb.shape[0]).long()]
    return float((qa - qb).square().mean().sqrt())


def gram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Random-feature Gram distance (the `random` style encoder's statistics) of ``a`` to ``b``."""
    code = encode_style(b[None].float(), "random", "gram")
    with torch.no_grad():
        return float(style_distance(code, a[None].float())[0])


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004) of two single-channel pictures [1, H, W] in [-1, 1] (data range 2)."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    a, b = a[None].float(), b[None].float()
    mu = lambda t: F.avg_pool2d(t, window, 1)  # noqa: E731
    ma, mb = mu(a), mu(b)
    va, vb, cov = mu(a * a) - ma ** 2, mu(b * b) - mb ** 2, mu(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def luminance(x: torch.Tensor) -> torch.Tensor:
    """[3, H, W] -> [1, H, W] (the patch target's luminance, one picture)."""
    return patch_luminance(x[None])[0]


def patch_report(out: torch.Tensor, ref: torch.Tensor) -> Dict[str, float]:
    """Novelty and faithfulness of one output against its reference, each next to its halves baseline."""
    left, right = halves(ref)
    return {
        "novelty": nearest_patch_median(out, ref),
        "novelty_halves": nearest_patch_median(left, right),
        "colour_swd": colour_swd(out, ref),
        "colour_swd_halves": colour_swd(left, right),
        "gram": gram_distance(out, ref),
        "gram_halves": gram_distance(left, right),
    }


def copy_report(out: torch.Tensor, ref: torch.Tensor, cut: float = COPY_CUT) -> Dict[str, float]:
    """Is ``out`` copied, or new? Calibrates the novelty criterion (patch_report), which compares a distance to
    the whole reference with one to half of it (a bank half the size, so nearest patches sit further away).

    ``copied``: the fraction of out's 16x16 patches nearer to some reference patch than ``cut`` x the halves'
    novelty (a near-verbatim copy); ``copied_halves``: the same fraction for the left half against the right.
    ``novelty_half_bank``: out's novelty against each half of the reference in turn (a bank the size of the
    halves measure's), their mean -- the like-for-like counterpart of ``novelty_halves``."""
    left, right = halves(ref)
    between = nearest_patch_distances(left, right)
    threshold = cut * float(between.median())
    return {
        "copied": float((nearest_patch_distances(out, ref) < threshold).float().mean()),
        "copied_halves": float((between < threshold).float().mean()),
        "novelty_half_bank": 0.5 * (nearest_patch_median(out, left) + nearest_patch_median(out, right)),
        "novelty_halves": float(between.median()),
    }


def criteria(report: Dict[str, float], factor: float = 1.5) -> Dict[str, bool]:
    """Issue 3's criteria: novel (novelty >= halves) and faithful (each distance <= factor x halves)."""
    return {"novel": report["novelty"] >= report["novelty_halves"],
            "colour": report["colour_swd"] <= factor * report["colour_swd_halves"],
            "gram": report["gram"] <= factor * report["gram_halves"]}


def criteria_summary(reports) -> Dict[str, float]:
    """Several pictures' reports -> the mean of each measure, how many pass each criterion (``novel_pass``, ...),
    how many pass all three (``all_pass``) and how many there are (``n``)."""
    passed = [criteria(r) for r in reports]
    return {**{k: sum(r[k] for r in reports) / len(reports) for k in reports[0]},
            **{f"{k}_pass": sum(p[k] for p in passed) for k in passed[0]},
            "all_pass": sum(all(p.values()) for p in passed), "n": len(reports)}


__all__ = ["colour_swd", "copy_report", "criteria", "criteria_summary", "gram_distance", "halves", "luminance",
           "nearest_patch_distances", "nearest_patch_median", "patch_report", "ssim"]
