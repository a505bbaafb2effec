"""The patch target: a WALK_TARGET whose denoiser is computed from reference pictures, with no weights.

``PatchSpec`` says how to build it; ``patch_target(spec, width, height)`` makes it at a size (any size: the
patches keep the references' pixel scale, so a bigger canvas holds more of the texture, not a zoomed one).
With a content picture it becomes a texture-transfer target (photo style transfer): the patch posterior also
prefers reference patches whose luminance structure matches the content's (Image Analogies, Hertzmann et al.
2001; Efros & Freeman 2001), and the walk is meant to start from the noised content (WalkSampler's init + denoise).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ...guidance.energy import MAX_WEIGHT, MovedEnergy, PaletteEnergy, descend
from ..base import WalkTarget
from . import coherent
from .bank import build_bank, reference_blocks
from .content import ContentGuide, content_guide
from .denoiser import PatchLevels, denoise
from .pyramid import max_levels, pyramid

log = logging.getLogger(__name__)

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0  # EDM's range for [-1, 1] pixels (a dense high-sigma start matters)
COARSEST = 16  # the coarsest pyramid level keeps at least this many pixels on its shorter side
FINE_LEVELS = 3  # the finest levels (0, 1, 2; never the coarsest) match fine_patch_size patches, the others patch_size
MAX_REFERENCE_PIXELS = 512 * 512  # the bank bound: bigger references are scaled down to this many pixels
# The walk this target is measured and shipped with (bench/patch.py, the example workflows): annealed Langevin
# dynamics over 15 noise levels (16 evaluations), each fresh noise draw scaled by WALK_S_NOISE (EDM's S_noise; also
# what the control nodes use, WalkTarget.walk_s_noise). The patch posterior keeps less fine detail than the
# references; more fresh noise per step gives some of it back, and its pictures measure more novel than those of
# 30 euler_ancestral steps at 1.15 -- with the palette hold below keeping the colours, which that noise alone lets
# drift (bench/patch.py's trade-off table).
WALK, STEPS, WALK_S_NOISE = "langevin", 15, 1.5
# The palette hold: one step of the references' palette energy (walk_core.guidance.energy, sliced Wasserstein of
# the pixel colours) on every estimate at sigma >= PALETTE_SIGMA -- the first 70 % of an EDM-range walk, in log
# sigma -- so the picture keeps the references' colours (the local posterior alone drifts: marble a shade off,
# foliage short of its dark gaps) while the fine detail is left to the patches (bench/patch.py).
PALETTE, PALETTE_SIGMA = 1.0, 0.05
# How the denoiser picks patches (coherent.py, denoiser.py): "layout" and "texture" take hard nearest-neighbour
# fields coarse to fine with voting (GPNN-style; layout also keeps the references' arrangement at the coarsest
# level), "posterior" the soft patch posterior of every level (the earlier default: mosaics, see docs/weight-free.md).
MODES = ("layout", "texture", "posterior")
LAYOUT_WIDTH = 0.1  # layout mode: std of the coarsest level's position prior, as a fraction of the picture


@dataclass(frozen=True)
class PatchSpec:
    """How to build a patch target. ``images``: references [K, 3, H, W] in [-1, 1] (walk units)."""

    images: torch.Tensor = field(compare=False)
    weights: Optional[Tuple[float, ...]] = None  # per reference (None: equal)
    patch_size: int = 7  # pixels per side at the coarse pyramid levels (FINE_LEVELS and up, and the coarsest; odd)
    fine_patch_size: int = 5  # at the FINE_LEVELS finest levels but the coarsest (odd; = patch_size: one size)
    level_sigma: float = 1.0  # a pyramid level is used while its own noise std is at most this (bench/patch.py)
    sharpness: float = 1.0  # multiplies the patch log-likelihood
    candidates: int = 8  # best matches handed from each level to the next finer one
    dense_max: int = 4096  # levels with at most this many patches get a dense posterior
    pca_dims: int = 32
    balance: float = 1.0  # dense levels: discount over-used bank patches by their usage ratio (denoiser.py); 0 = off
    context: float = 0.0  # weight of the coarser level's patch likelihood in each level's posterior (context.py)
    tileable: bool = False  # periodic output: its left/right and top/bottom edges join seamlessly
    max_reference_pixels: int = MAX_REFERENCE_PIXELS
    content: Optional[torch.Tensor] = field(default=None, compare=False)  # [1, 3, H, W] in [-1, 1]
    content_weight: float = 0.0  # how strongly patch choices follow the content's luminance structure
    palette: float = PALETTE  # weight of the palette hold's step (0 = off; 1 = the whole way along each direction)
    palette_sigma: float = PALETTE_SIGMA  # the hold acts on estimates at sigma >= this
    mode: str = "layout"  # one of MODES
    layout_width: float = LAYOUT_WIDTH  # layout mode: how far (fraction of the picture) a coarse patch may move
    alpha: float = 0.005  # coherent modes: GPNN's completeness normalisation (smaller = every patch used)
    iterations: int = 2  # coherent modes: nearest-neighbour + vote rounds per level and evaluation
    variation: float = 1.0  # coherent modes: > 1 lets the walk's noise choose the finer levels' patches more
    name: str = "reference"


def _check(spec: PatchSpec) -> None:
    who = "TargetDistributionPatches"
    imgs = spec.images
    if not isinstance(imgs, torch.Tensor) or imgs.ndim != 4 or imgs.shape[0] < 1 or imgs.shape[1] != 3:
        shown = tuple(imgs.shape) if isinstance(imgs, torch.Tensor) else type(imgs).__name__
        raise ValueError(f"{who}: images {shown}; expected a non-empty batch of RGB pictures [K, 3, H, W]")
    if not bool(torch.isfinite(imgs).all()):
        raise ValueError(f"{who}: the reference images contain non-finite pixels (NaN or inf); expected finite values")
    for name in ("patch_size", "fine_patch_size"):
        if getattr(spec, name) < 3 or getattr(spec, name) % 2 == 0:
            raise ValueError(f"{who}: {name}={getattr(spec, name)}; expected an odd number >= 3")
    name, need = largest_patch(spec)
    if min(imgs.shape[-2:]) < need:
        raise ValueError(f"{who}: the reference is {imgs.shape[-1]}x{imgs.shape[-2]} px, smaller than "
                         f"{name}={need}; expected at least {need} px per side")
    if spec.weights is not None and (len(spec.weights) != imgs.shape[0] or min(spec.weights) <= 0):
        raise ValueError(f"{who}: weights={spec.weights}; expected {imgs.shape[0]} positive numbers")
    for name, lo in (("level_sigma", 1e-4), ("sharpness", 1e-4)):
        if not getattr(spec, name) >= lo:
            raise ValueError(f"{who}: {name}={getattr(spec, name)}; expected >= {lo}")
    for name in ("balance", "context"):
        if not (math.isfinite(getattr(spec, name)) and getattr(spec, name) >= 0):
            raise ValueError(f"{who}: {name}={getattr(spec, name)}; expected a finite number >= 0 (0 = off)")
    if spec.candidates < 1 or spec.dense_max < 16 or spec.pca_dims < 1:
        raise ValueError(f"{who}: candidates={spec.candidates}, dense_max={spec.dense_max}, pca_dims="
                         f"{spec.pca_dims}; expected >= 1, >= 16, >= 1")
    if spec.mode not in MODES:
        raise ValueError(f"{who}: mode={spec.mode!r}; expected one of {', '.join(MODES)}")
    if not (math.isfinite(spec.layout_width) and spec.layout_width > 0):
        raise ValueError(f"{who}: layout_width={spec.layout_width}; expected a finite number > 0")
    if not (math.isfinite(spec.alpha) and spec.alpha > 0) or not 1 <= spec.iterations <= 10 or not (
            math.isfinite(spec.variation) and spec.variation > 0):
        raise ValueError(f"{who}: alpha={spec.alpha}, iterations={spec.iterations}, variation={spec.variation}; "
                         "expected alpha > 0, iterations 1..10 and variation > 0")
    if spec.content is not None:
        c = spec.content
        if c.ndim != 4 or c.shape[0] != 1 or c.shape[1] != 3:
            raise ValueError(f"{who}: content of shape {list(c.shape)}; expected one RGB picture [1, 3, H, W]")
        if not bool(torch.isfinite(c).all()):
            raise ValueError(f"{who}: the content picture has non-finite pixels (NaN or inf); expected finite values")
    if spec.content_weight < 0:
        raise ValueError(f"{who}: content_weight={spec.content_weight}; expected >= 0")
    if not 0 <= spec.palette <= MAX_WEIGHT:
        raise ValueError(f"{who}: palette={spec.palette}; expected 0..{MAX_WEIGHT:g} (0 = off)")
    if not (math.isfinite(spec.palette_sigma) and spec.palette_sigma >= 0):
        raise ValueError(f"{who}: palette_sigma={spec.palette_sigma}; expected a finite sigma >= 0")


def level_patch_size(spec: PatchSpec, level: int, depth: int) -> int:
    """The patch side used at pyramid ``level`` of a pyramid with levels 0..``depth``: fine_patch_size on the
    FINE_LEVELS finest, patch_size above them and always on the coarsest level (which sets the layout)."""
    return spec.fine_patch_size if level < min(FINE_LEVELS, depth) else spec.patch_size


def largest_patch(spec: PatchSpec) -> Tuple[str, int]:
    """(name, side) of the larger of the two patch sizes: what a reference and an output must at least hold."""
    return max(("patch_size", spec.patch_size), ("fine_patch_size", spec.fine_patch_size), key=lambda t: t[1])


def bounded_references(spec: PatchSpec) -> Tuple[torch.Tensor, float]:
    """The references scaled down (antialiased) so that each has at most ``max_reference_pixels``; the factor."""
    imgs = spec.images.float()
    h, w = imgs.shape[-2:]
    if h * w <= spec.max_reference_pixels:
        return imgs, 1.0
    factor = math.sqrt(spec.max_reference_pixels / (h * w))
    least = largest_patch(spec)[1]
    size = (max(least, int(h * factor)), max(least, int(w * factor)))
    log.warning("patch target: the %dx%d reference is above the bank bound of %d pixels; using it at %dx%d",
                w, h, spec.max_reference_pixels, size[1], size[0])
    return F.interpolate(imgs, size=size, mode="bilinear", antialias=True, align_corners=False), factor


class _Banks:
    """The per-level banks of a spec, built once per pyramid depth and shared by every size of the target."""

    def __init__(self, spec: PatchSpec):
        self.spec = spec
        self.references, self.scale = bounded_references(spec)
        w = torch.ones(self.references.shape[0]) if spec.weights is None else torch.tensor(spec.weights)
        # the references' (weighted) mean colour [C, 1, 1]: where walks from pure noise are centred
        self.mean = (self.references.mean(dim=(2, 3)) * (w / w.sum())[:, None]).sum(0).view(-1, 1, 1)
        self.by_depth: Dict[int, tuple] = {}
        self.coherent_by_depth: Dict[int, list] = {}

    def coherent_levels(self, depth: int) -> list:
        if depth not in self.coherent_by_depth:
            self.coherent_by_depth[depth] = coherent.build_levels(self.references, depth, self.spec.patch_size,
                                                                  coherent.PCA_DIMS)
        return self.coherent_by_depth[depth]

    def levels(self, depth: int):
        if depth not in self.by_depth:
            spec = self.spec
            refs = self.references
            pyr = pyramid(refs, depth, False)
            weights = None if spec.weights is None else torch.tensor(spec.weights)
            banks = [build_bank(r, level_patch_size(spec, level, depth), spec.pca_dims, seed=level, weights=weights)
                     for level, r in enumerate(pyr)]
            blocks = [reference_blocks(refs, level, *r.shape[-2:]) for level, r in enumerate(pyr)]
            self.by_depth[depth] = (banks, blocks, pyr)
        return self.by_depth[depth]


class _PaletteHold:
    """The palette hold of a target of ``shape``: one step of weight ``spec.palette`` of the palette energy against
    the (bounded) references on each item's estimate at sigma >= ``spec.palette_sigma``, item by item (so an item's
    walk is bit-identical in any batch)."""

    def __init__(self, spec: PatchSpec, references: torch.Tensor, shape: Tuple[int, ...]):
        self.weight, self.sigma = spec.palette, spec.palette_sigma
        self.energy = MovedEnergy(PaletteEnergy.of(references, shape)) if spec.palette > 0 else None

    def __call__(self, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.energy is None:
            return denoised
        held = sigma.reshape(-1).to(denoised.device) >= self.sigma  # [B]
        if not bool(held.any()):
            return denoised
        energy = self.energy.on(denoised)
        out = denoised.clone()
        for i in held.nonzero().flatten().tolist():  # one at a time: a batched step is not bit-identical per item
            out[i:i + 1] = descend(energy, denoised[i:i + 1], self.weight).to(out.dtype)
        return out


def denoiser_mode(spec: PatchSpec) -> str:
    """The denoiser a spec gets: its mode, except that photo style transfer (a content picture with a weight) is
    the posterior's (its content term lives there)."""
    return "posterior" if spec.content is not None and spec.content_weight > 0 else spec.mode


def _posterior_levels(spec: PatchSpec, banks: "_Banks", width: int, height: int, info: dict):
    """The soft posterior denoiser's levels (denoiser.py) and whether a content guide is on; fills ``info``."""
    ref_h, ref_w = banks.references.shape[-2:]
    depth = max(0, min(max_levels(ref_h, ref_w, COARSEST), max_levels(height, width, COARSEST)))
    bank_list, blocks, pyr = banks.levels(depth)
    guide: Optional[ContentGuide] = None
    if spec.content is not None and spec.content_weight > 0:
        guide = content_guide(spec.content, pyr, [b.p for b in bank_list], width, height, depth, spec.tileable,
                              spec.content_weight)
    info.update(levels=depth + 1, bank_sizes=[b.size for b in bank_list], patch_sizes=[b.p for b in bank_list],
                context=spec.context)
    return PatchLevels(bank_list, blocks, spec.level_sigma, spec.sharpness, spec.tileable, spec.dense_max,
                       spec.candidates, guide, spec.balance, spec.context), guide is not None


def _coherent_model(spec: PatchSpec, banks: "_Banks", width: int, height: int, info: dict):
    """The coherent denoiser's model (coherent.py) at this output size; fills ``info``."""
    depth = coherent.depth_for(banks.references.shape[-2:], (height, width), spec.patch_size)
    levels = banks.coherent_levels(depth)
    info.update(levels=depth + 1, bank_sizes=[int(lv.values.shape[0]) for lv in levels],
                patch_sizes=[spec.patch_size] * (depth + 1))
    weights = None if spec.weights is None else torch.tensor(spec.weights, dtype=torch.float32)
    return coherent.CoherentModel(
        levels=levels, out_sizes=[coherent.level_size(height, width, level) for level in range(depth + 1)],
        patch=spec.patch_size, alpha=spec.alpha, layout=spec.layout_width if spec.mode == "layout" else 0.0,
        periodic=spec.tileable, iterations=spec.iterations, variation=spec.variation,
        log_prior=None if weights is None else (weights / weights.sum()).log())


def patch_target(spec: PatchSpec, width: int, height: int, _banks: Optional[_Banks] = None) -> WalkTarget:
    """A WALK_TARGET over [3, height, width] pixels sampling pictures made of the references' patches."""
    _check(spec)
    name, need = largest_patch(spec)
    if min(width, height) < need:
        raise ValueError(f"TargetDistributionPatches: output {width}x{height} px is smaller than {name}={need}; "
                         f"expected at least {need} px per side")
    banks = _banks or _Banks(spec)
    ref_h, ref_w = banks.references.shape[-2:]
    info = {"references": int(spec.images.shape[0]), "reference_size": (int(ref_w), int(ref_h)),
            "reference_scale": banks.scale, "tileable": spec.tileable, "content": spec.content is not None,
            "palette": spec.palette, "palette_sigma": spec.palette_sigma, "mode": denoiser_mode(spec)}
    if info["mode"] == "posterior":
        levels, guided = _posterior_levels(spec, banks, width, height, info)
        step = denoise
    else:
        levels, guided = _coherent_model(spec, banks, width, height, info), False
        step = coherent.denoise
    name = f"patches of {spec.name}" + (" (tileable)" if spec.tileable else "") + (
        ", content-guided" if guided else "")
    on_device = {torch.device("cpu"): levels}
    # the coherent modes vote the references' own pixels: the hold changed nothing there (tests/test_patch_palette.py)
    hold = _PaletteHold(spec if info["mode"] == "posterior" else replace(spec, palette=0.0), banks.references,
                        (3, height, width))

    def denoiser(x, sigma, **extra):
        if x.device not in on_device:  # banks are built on the CPU; copied once per device
            on_device[x.device] = levels.to(x.device)
        return hold(step(on_device[x.device], x, sigma), sigma)

    return WalkTarget(
        name=name, denoiser=denoiser, space="pixels",
        sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, shape=(3, height, width),
        resize=lambda w, h: patch_target(spec, w, h, banks), info=info, start_mean=banks.mean,
        tiled=lambda: patch_target(replace(spec, tileable=True), width, height, banks),  # banks: edge-independent
        walk_s_noise=WALK_S_NOISE)
