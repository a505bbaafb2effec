"""Energy (gradient) guidance: gradient steps on the denoised estimate that lower a differentiable energy.

Universal guidance (Bansal et al. 2023) steers a sampler with the gradient of a loss measured on the
denoised estimate x0 = D(x, sigma). This term is its x0-space form: the gradient is taken with respect
to x0 itself, not back-propagated through the denoiser to x as the paper's forward guidance does (no
backward pass through the model, no extra evaluation), and the guided x0 replaces the estimate the walk
uses -- in spirit the paper's backward guidance, which also takes gradient steps on x0:

    x0 <- x0 - weight * n * grad_x0 E(x0)        repeated ``steps`` times, per evaluation

where E is the per-item energy, an *average* over the item's values (so its value compares across
sizes), and n the number of values of one item. Multiplying by n undoes the average: for the energies
below, weight 1 lands exactly on the minimum (content: the picture; colour: the reference's per-channel
mean and std) and weight w covers the fraction w of the remaining way per step, at any image size
(``steps`` = k leaves (1 - w)^k of it). With ``content_blur`` the fraction holds for the coarsest
structure and finer scales move less; palette (the whole colour distribution, sliced Wasserstein) is not
quadratic: a step moves each pixel by its residual averaged over the directions, and a distribution far from
the reference's takes several steps. Weights above 2 would overshoot further than they started and are
refused.

The step does not depend on sigma: when and how strongly the term acts is set by the chain's
start/end percent and strength schedule. ``steps`` is *not* universal guidance's self-recurrence (which
re-noises z_{t-1} back to z_t and denoises again, at one network call per repeat); it only repeats the
x0 step, which matters for energies that are not quadratic.

Per-item energies are summed before the gradient, so item i's step depends on item i alone.
Energies are chosen by name from ``ENERGIES``; one energy per term -- several energies are combined by
chaining several terms, each with its own weight, interval and schedule.

Extension point: an energy is a class registered in ``ENERGIES`` with ``takes`` (what its reference
is: "image" for a walk-space picture, "style" for a StyleCode), ``validate(term)``, ``check(term, target)``, ``prepare(term, shape) -> energy``,
``energy(x0) -> [B]`` and ``energy.to(like)``. ``style`` (WALK_STYLE statistics, E = style_distance(code, x0)) is one such class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

import torch
import torch.nn.functional as F

from ..registry import Registry
from ..style import StyleCode, style_distance
from ..style.encoders import MIN_SIZE
from .chain import GuidanceContext, GuidanceTerm
from .terms import register_term

MAX_STEPS = 20
MAX_WEIGHT = 2.0  # a Newton fraction above 2 diverges on a quadratic energy
STD_EPS = 1e-12
LATENT_STEP = 0.1  # latent targets: RMS of one gradient step per unit weight, in the model's (scaled) latent units
PALETTE_FRAMES, PALETTE_SEED = 11, 7  # palette: random orthonormal colour frames of C directions (not quality's)
STYLE_MAX_STEP = 0.1  # style: RMS cap of one gradient step per unit weight, in walk units ([-1, 1] pixels)  # keeps the gradient of a standard deviation finite on a flat picture

ENERGIES: Registry[Type["ImageEnergy"]] = Registry("energy")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of x [B, C, H, W] with std ``sigma`` pixels (edges replicated); differentiable."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()  # [2r+1]
    c = x.shape[1]
    x = F.pad(x, (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)  # along W
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)  # along H


def measured(who: str, target) -> Tuple[str, Tuple[int, ...]]:
    """(space, shape) of what the energy measures: the target's own, or for a latent target the pictures its
    decoder makes (an error naming the missing VAE when it has none)."""
    if target.space != "latent":
        return target.space, tuple(target.shape)
    if getattr(target, "decoder", None) is None:
        raise ValueError(f"{who}: target {target.name!r} lives in a latent space and has no decoder; the energy "
                         "measures pixels -- connect a VAE to the target node (TargetDistributionModel's 'vae' "
                         "input) or use a pixel target")
    return "pixels", tuple(target.decoder.pixel_shape(target.shape))


class ImageEnergy:
    """Base of the energies whose reference is a walk-space picture [N, C, H, W] in [-1, 1]."""

    name: ClassVar[str] = "image"
    takes: ClassVar[str] = "image"
    max_step: ClassVar[Optional[float]] = None  # caps the RMS of one item's step at weight * max_step (None: no cap)

    @classmethod
    def check(cls, term: "EnergyTerm", target) -> None:
        """Pixel targets with the reference's channels; vector targets of exactly the reference's shape."""
        who = f"GuidanceStep (energy {cls.name})"
        ref = term.reference
        space, shape = measured(who, target)
        if len(shape) != 3 or shape[0] != ref.shape[1]:
            raise ValueError(f"{who}: the reference has {ref.shape[1]} channels but target {target.name!r} has "
                             f"shape {shape}; expected [C, H, W] with C = {ref.shape[1]}")
        if space == "vector" and tuple(ref.shape[1:]) != shape:
            raise ValueError(f"{who}: reference of shape {tuple(ref.shape[1:])} on the vector target "
                             f"{target.name!r} of shape {shape}; expected the same shape")

    @classmethod
    def validate(cls, term: "EnergyTerm") -> None:
        """The term's reference is a finite walk-space picture batch [N, C, H, W]."""
        who = f"GuidanceStep ({term.kind})"
        ref = term.reference
        if not isinstance(ref, torch.Tensor) or ref.ndim != 4 or min(ref.shape) < 1 or not ref.is_floating_point():
            shown = tuple(ref.shape) if isinstance(ref, torch.Tensor) else type(ref).__name__
            raise ValueError(f"{who}: reference {shown}; expected a walk-space picture batch [N, C, H, W] (floats)")
        if not bool(torch.isfinite(ref).all()):
            raise ValueError(f"{who}: the reference picture has non-finite values")

    @classmethod
    def prepare(cls, term: "EnergyTerm", shape: Tuple[int, ...]) -> "ImageEnergy":
        raise NotImplementedError

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to(self, like: torch.Tensor) -> "ImageEnergy":
        """A copy whose tensors are fresh (never inference-mode) tensors on ``like``'s device and dtype."""
        moved = {f: getattr(self, f).to(device=like.device, dtype=like.dtype).clone() for f in self.tensors}
        return replace(self, **moved)


@ENERGIES.register("content")
@dataclass(frozen=True)
class ContentEnergy(ImageEnergy):
    """E = 1/2 mean (G x0 - G c)^2: squared error to the content picture c, both blurred by G (std
    ``blur`` pixels, 0 = none) so that only structure is matched."""

    name: ClassVar[str] = "content"
    tensors: ClassVar[Tuple[str, ...]] = ("content",)
    content: torch.Tensor = field(compare=False)  # [1 or B, C, H, W] at the walk's size, blurred
    blur: float = 0.0

    @classmethod
    def prepare(cls, term, shape):
        content = term.reference.float()
        if tuple(content.shape[-2:]) != tuple(shape[-2:]):
            content = F.interpolate(content, size=tuple(shape[-2:]), mode="bilinear", antialias=True,
                                    align_corners=False)
        return cls(gaussian_blur(content, term.content_blur), term.content_blur)

    def __call__(self, x0):
        if self.content.shape[0] not in (1, x0.shape[0]):
            raise ValueError(f"GuidanceStep (energy content): {self.content.shape[0]} content images for a batch "
                             f"of {x0.shape[0]}; expected 1 (shared) or one per item")
        return 0.5 * (gaussian_blur(x0, self.blur) - self.content).square().flatten(1).mean(1)


@ENERGIES.register("colour")
@dataclass(frozen=True)
class ColourEnergy(ImageEnergy):
    """E = 1/2 mean_c [(mu_c(x0) - m_c)^2 + (s_c(x0) - r_c)^2]: per-channel mean and std of each item against
    those of the reference (pooled over all its pictures)."""

    name: ClassVar[str] = "colour"
    tensors: ClassVar[Tuple[str, ...]] = ("mean", "std")
    mean: torch.Tensor = field(compare=False)  # [C]
    std: torch.Tensor = field(compare=False)  # [C]

    @classmethod
    def prepare(cls, term, shape):
        pixels = term.reference.float().transpose(0, 1).flatten(1)  # [C, N*H*W]
        return cls(pixels.mean(1), pixels.var(1, unbiased=False).sqrt())

    def __call__(self, x0):
        values = x0.flatten(2)  # [B, C, H*W]
        mean = values.mean(2)
        std = (values.var(2, unbiased=False) + STD_EPS).sqrt()
        return 0.5 * ((mean - self.mean).square() + (std - self.std).square()).mean(1)


@ENERGIES.register("palette")
@dataclass(frozen=True)
class PaletteEnergy(ImageEnergy):
    """E = 1/2 mean_(k, n) (sort(x0 . d_k)_n - q_k(n))^2: the sliced Wasserstein-2 distance (Rabin et al. 2011)
    between the item's pixel colours and the reference's (pooled over its pictures) along K fixed unit
    directions d_k in colour space; q_k is the reference's quantile function along d_k read at the item's pixel
    count. The whole colour distribution -- how much of each colour -- not only its mean and std.

    The directions are PALETTE_FRAMES random orthonormal frames of C directions each (the random rotations of
    Pitie et al. 2007's distribution transfer), so sum_k d_k d_k^T = (K / C) I exactly: scaled by the item's
    C * H*W values, the gradient step moves each pixel by (C / K) sum_k d_k r_k (r_k: its residual along d_k),
    its residual averaged over the frames, equally strong in every colour direction. (With K unstructured random
    directions that sum is only about isotropic, and how strong the step was along a reference's narrow colour
    axes depended on the draw: guided marble walks measured 0.7 to 5.7 times their halves' Gram distance as the
    seed of the directions changed.) Each direction sorts the pixels on its own, so the residuals disagree where
    the distributions differ in shape and one step covers only part of the way (Gaussian pixels towards two
    colours: one step at weight 1 leaves about 0.4 of the energy; tests/test_guidance_energy.py)."""

    name: ClassVar[str] = "palette"
    tensors: ClassVar[Tuple[str, ...]] = ("directions", "quantiles")
    directions: torch.Tensor = field(compare=False)  # [C, K] unit columns
    quantiles: torch.Tensor = field(compare=False)  # [K, H*W] the reference's sorted projections, resampled

    @classmethod
    def prepare(cls, term, shape):
        return cls.of(term.reference, shape)

    @classmethod
    def of(cls, references: torch.Tensor, shape: Tuple[int, ...]) -> "PaletteEnergy":
        """The energy against the pooled pixel colours of ``references`` [N, C, H, W], for items of ``shape``."""
        pixels = references.float().transpose(0, 1).flatten(1)  # [C, N*H*W]
        g = torch.Generator().manual_seed(PALETTE_SEED)
        c = pixels.shape[0]
        directions = torch.cat([torch.linalg.qr(torch.randn(c, c, generator=g))[0] for _ in range(PALETTE_FRAMES)],
                               dim=1)  # [C, K]: orthonormal frames
        ordered = (directions.T @ pixels).sort(dim=1).values  # [K, M]
        m, n = ordered.shape[1], math.prod(shape[1:])
        pos = ((torch.arange(n, dtype=torch.float64) + 0.5) / n * m - 0.5).clamp(0, m - 1)
        lo = pos.floor().long()
        frac = (pos - lo).float()
        return cls(directions, torch.lerp(ordered[:, lo], ordered[:, (lo + 1).clamp(max=m - 1)], frac))

    def __call__(self, x0):
        directions = self.directions.to(x0.dtype)
        projected = torch.einsum("bcn,ck->bkn", x0.flatten(2), directions).sort(dim=2).values  # [B, K, H*W]
        return 0.5 * (projected - self.quantiles).square().flatten(1).mean(1)


@ENERGIES.register("style")
@dataclass(frozen=True)
class StyleEnergy(ImageEnergy):
    """E = style_distance(code, x0): the mean over layers and statistics of the relative squared distances
    between x0's feature statistics and the style code's (walk_core/style). Not quadratic in x0, so the
    weight is a step size rather than an exact fraction of the way, and each item's step is capped at an RMS
    of weight * STYLE_MAX_STEP (a trust region: the distance grows like the fourth power of the pixels, so an uncapped
    step far from the minimum overshoots and diverges); ``steps`` > 1 takes several capped steps."""

    name: ClassVar[str] = "style"
    takes: ClassVar[str] = "style"
    max_step: ClassVar[Optional[float]] = STYLE_MAX_STEP
    code: StyleCode = field(compare=False)

    @classmethod
    def validate(cls, term):
        if not isinstance(term.style, StyleCode):
            raise ValueError(f"GuidanceStep ({term.kind}): energy 'style' needs a style (a WALK_STYLE from "
                             f"StyleEncoder); got {type(term.style).__name__}")

    @classmethod
    def check(cls, term, target):
        who = "GuidanceStep (energy style)"
        space, shape = measured(who, target)
        if space != "pixels" or len(shape) != 3 or shape[0] != 3:
            raise ValueError(f"{who}: target {target.name!r} ({target.space}, shape {shape}) is not an RGB picture; "
                             "expected a pixel target of shape [3, H, W]")
        if min(shape[1:]) < MIN_SIZE:
            raise ValueError(f"{who}: target {target.name!r} is {shape[2]}x{shape[1]} px; the style encoder needs "
                             f"at least {MIN_SIZE} px per side")

    @classmethod
    def prepare(cls, term, shape):
        return cls(term.style)

    def __call__(self, x0):
        return style_distance(self.code, x0)

    def to(self, like):
        return replace(self, code=self.code.to(like.device, like.dtype))


def descend(energy: ImageEnergy, denoised: torch.Tensor, weight: float, steps: int = 1) -> torch.Tensor:
    """``steps`` steps of x0 <- x0 - weight * n * grad E(x0) from ``denoised`` [B, C, H, W] (n: values per item; a
    step's RMS per item capped at weight * ``energy.max_step`` where it has one). ``energy`` must already be on
    ``denoised``'s device and dtype, its tensors made outside inference mode. Works under no_grad and inference
    mode (walks run under them; ComfyUI under inference mode)."""
    n = denoised[0].numel()  # values per item: turns the mean-reduced gradient into a Newton step
    with torch.inference_mode(False), torch.enable_grad():  # the gradient needs normal tensors
        x0 = denoised.detach().clone()  # [B, C, H, W]
        for _ in range(steps):
            x0.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(x0).sum(), x0)  # sum: item i's gradient is its own
            step = (weight * n) * grad
            if energy.max_step is not None:  # trust region: RMS of each item's step <= weight * max_step
                rms = step.flatten(1).square().mean(1).sqrt()  # [B]
                shrink = (weight * energy.max_step / rms.clamp_min(1e-12)).clamp(max=1.0)
                step = step * shrink.view(-1, *(1,) * (step.ndim - 1))
            x0 = (x0 - step).detach()
    return x0


class MovedEnergy:
    """An energy prepared at a walk's shape, moved once per device and dtype (EnergyTerm's per-walk state, the patch
    target's palette hold). The copies are made outside inference mode: ``descend``'s gradient needs normal tensors."""

    def __init__(self, energy: ImageEnergy):
        self.energy = energy
        self.moved: Dict[Any, ImageEnergy] = {}

    def on(self, like: torch.Tensor) -> ImageEnergy:
        key = (like.device, like.dtype)
        if key not in self.moved:
            with torch.inference_mode(False):
                self.moved[key] = self.energy.to(like)
        return self.moved[key]


@register_term
@dataclass(frozen=True)
class EnergyTerm(GuidanceTerm):
    """Energy guidance in x0 space (see the module docstring): ``steps`` steps of
    x0 <- x0 - weight * n * grad E(x0), E = ``ENERGIES[energy]`` measured against ``reference``.

    ``reference`` is a walk-space picture [N, C, H, W] in [-1, 1]: the content image (N = 1, shared, or one
    per batch item; resized to the walk's size with antialiased bilinear interpolation) or the colour
    reference (statistics pooled over its N pictures). ``content_blur`` (pixels) is used by content only.
    """

    kind: ClassVar[str] = "energy"
    weight: float = 0.1
    energy: str = "content"
    reference: torch.Tensor = field(default=None, compare=False, repr=False)
    steps: int = 1
    content_blur: float = 0.0
    style: Optional[StyleCode] = field(default=None, compare=False, repr=False)  # energy "style" only

    def __post_init__(self):
        super().__post_init__()
        who = f"GuidanceStep ({self.kind})"
        ENERGIES[self.energy]  # an unknown name lists the valid ones
        if not 0.0 <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"{who}: weight={self.weight}; expected 0..{MAX_WEIGHT} "
                             "(the fraction of the way to the energy's minimum per step)")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"{who}: steps={self.steps!r}; expected an integer 1..{MAX_STEPS}")
        if not (math.isfinite(self.content_blur) and self.content_blur >= 0):
            raise ValueError(f"{who}: content_blur={self.content_blur}; expected >= 0 pixels (0 = no blur)")
        ENERGIES[self.energy].validate(self)

    def check(self, target) -> None:
        ENERGIES[self.energy].check(self, target)

    def start(self, target) -> MovedEnergy:
        _, shape = measured(f"GuidanceStep ({self.kind})", target)
        return MovedEnergy(ENERGIES[self.energy].prepare(self, shape))

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state: MovedEnergy) -> torch.Tensor:
        target = getattr(ctx, "target", None)
        if target is not None and target.space == "latent":
            return self._latent_steps(target.decoder, denoised, state)
        return descend(state.on(denoised), denoised, self.weight, self.steps)

    def _latent_steps(self, decoder, denoised: torch.Tensor, state: MovedEnergy) -> torch.Tensor:
        """On a latent target: the energy is measured on ``decoder(z)`` and each of the ``steps`` steps moves the
        latent estimate along its gradient by an RMS of ``weight * LATENT_STEP`` per item (normalised: through a
        decoder the pixel-space Newton fraction has no exact latent counterpart)."""
        with torch.inference_mode(False), torch.enable_grad():
            z = denoised.detach().clone()  # [B, C, h, w]
            for _ in range(self.steps):
                z.requires_grad_(True)
                pixels = decoder.decode(z)
                energy = state.on(pixels)
                (grad,) = torch.autograd.grad(energy(pixels.float()).sum(), z)
                rms = grad.flatten(1).square().mean(1).sqrt()  # [B]
                scale = torch.where(rms > 0, self.weight * LATENT_STEP / rms.clamp_min(1e-30), torch.zeros_like(rms))
                z = (z - grad * scale.view(-1, *(1,) * (grad.ndim - 1))).detach()
        return z.to(denoised.dtype)
