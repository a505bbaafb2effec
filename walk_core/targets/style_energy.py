"""A target defined by an energy of style statistics (and optionally a content picture).

    p(x)  proportional to  exp(-n E(x) / T) * N(x; m, s^2 I),
    E(x) = style_distance(code, x) + u spectrum_distance(code, x) + w E_c(x)

over pictures x [3, H, W] in [-1, 1] with n = 3 H W values. E is the style distance to a WALK_STYLE (the mean
over layers and statistics of relative squared distances, walk_core/style), plus ``spectrum_weight`` u times
the distance of x's radial power spectrum to the references' (walk_core/style/spectrum.py: the feature
statistics alone are matched as well by dense per-pixel noise as by the reference's sharp edges, and the
Gaussian factor below is white, so without it the pictures come out as colour noise), plus ``content_weight``
w times the blurred squared error to a content picture (guidance/energy.py ContentEnergy); all are averages, so
n E / T makes the temperature T a per-value one that means the same at every size. This is a FRAME /
Julesz-ensemble model of texture (Zhu, Wu & Mumford 1998; Lu, Zhu & Wu 2016 with CNN filters): T -> 0
concentrates on the pictures whose statistics match the code. The Gaussian factor (mean m = the content
picture when one is given, else mid-grey; std s = ``prior_std``) keeps the density proper.

A stiff range term, RANGE_WEIGHT / 2 mean (|x| - 1)_+^2, is part of E: it is zero on pictures and keeps
the walk near [-1, 1], which the style statistics alone would not.

Its denoiser is the proximal (MAP) estimate of the clean picture under noise sigma,

    D(x, sigma) = argmin_y  f(y) = n E(y) / T + |y - m|^2 / (2 s^2) + |y - x|^2 / (2 sigma^2),

approximated with a *fixed* number K (``gradient_steps``) of gradient evaluations per call -- no line
search -- so every call costs exactly K style gradients. The steps start from the minimiser of the quadratic
part alone (the Gaussian posterior mean (s^2 x + sigma^2 m) / (s^2 + sigma^2), in closed form), are
preconditioned per value by the curvature of the quadratic parts (1/sigma^2 + 1/s^2 + w/T, plus RANGE_WEIGHT/T
where the range term is active), and are capped at an RMS of ``max_step`` per item: the trust region of
guidance/energy.py's StyleEnergy (the style distance is quartic in the pixels and an uncapped step far from
its minimum overshoots). The trust region is also checked at no extra cost: f comes with every gradient, so
a step that raised f is undone and retried from the best point with half the radius. At high sigma the
estimate is the prior mean moved at most K ``max_step`` towards a lower energy; at low sigma it stays within
sigma^2 |grad f| of x, so the score (D - x) / sigma^2 tends to the target's own score, -grad(-log p). The walk
(euler_ancestral, annealed Langevin, predictor-corrector) accumulates these steps: the energy is sampled by a
noise-annealed Langevin walk.

Every item is solved on its own, one at a time: item i of a batch is bit for bit a batch of one.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ..guidance.energy import STYLE_MAX_STEP, ContentEnergy, gaussian_blur
from ..style import StyleCode, style_distance
from ..style.spectrum import spectrum_distance
from ..style.encoders import MIN_SIZE
from .base import WalkTarget

log = logging.getLogger(__name__)

SIGMA_MIN = 0.01  # 1/200 of the picture range: finer noise is invisible
SIGMA_MAX_PER_STD = 12.0  # sigma_max = 12 prior_std: there the estimate is the prior mean (its weight on x < 1%)
MAX_STEP = STYLE_MAX_STEP  # RMS cap of one gradient step per item, in [-1, 1] pixel units
MAX_GRADIENT_STEPS = 32
MAX_SIZE = 4096
RANGE_WEIGHT = 100.0  # stiff: pictures stay within [-1, 1] to a few percent (the preconditioner absorbs it)
WHO = "style_energy_target"


@dataclass(frozen=True)
class StyleEnergySpec:
    """How to build the style-energy target at any size (see the module docstring for the maths).

    ``content`` is a walk-space picture [1, 3, H, W] in [-1, 1] (resized to the walk's size with antialiased
    bilinear interpolation) or None; ``content_blur`` is in pixels of the walk's size (0 = none)."""

    style: StyleCode = field(compare=False, repr=False)
    content: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)
    content_weight: float = 1.0  # used only with a content picture
    content_blur: float = 2.0
    spectrum_weight: float = 1.0  # the power-spectrum term; 0 = off (codes saved without a spectrum: off)
    temperature: float = 0.01
    prior_std: float = 0.25
    gradient_steps: int = 8
    max_step: float = MAX_STEP
    tileable: bool = False  # the style is also measured across the wrapped edges: pictures tile seamlessly

    def __post_init__(self):
        if not isinstance(self.style, StyleCode):
            raise ValueError(f"{WHO}: style is a {type(self.style).__name__}; expected a StyleCode (a WALK_STYLE "
                             "from StyleEncoder)")
        _positive("temperature", self.temperature)
        _positive("prior_std", self.prior_std)
        _positive("max_step", self.max_step)
        for name in ("content_weight", "content_blur", "spectrum_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                     and value >= 0):
                raise ValueError(f"{WHO}: {name}={value!r}; expected a finite number >= 0")
        k = self.gradient_steps
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_GRADIENT_STEPS:
            raise ValueError(f"{WHO}: gradient_steps={k!r}; expected an integer 1..{MAX_GRADIENT_STEPS} "
                             "(style-gradient evaluations per denoiser call)")
        if self.content is not None:
            c = self.content
            if (not isinstance(c, torch.Tensor) or c.ndim != 4 or c.shape[0] != 1 or c.shape[1] != 3
                    or min(c.shape[-2:]) < 1 or not c.is_floating_point()):
                shown = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
                raise ValueError(f"{WHO}: content {shown}; expected one walk-space picture [1, 3, H, W] (floats)")
            if not bool(torch.isfinite(c).all()):
                raise ValueError(f"{WHO}: the content picture has non-finite values (NaN or inf); expected finite "
                                 "values in [-1, 1]")


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{WHO}: {name}={value!r}; expected a finite number > 0")


def outside_range(x: torch.Tensor) -> torch.Tensor:
    """RANGE_WEIGHT/2 mean (|x| - 1)_+^2 per item, [B]: zero inside the picture range [-1, 1], quadratic outside."""
    return (0.5 * RANGE_WEIGHT) * (x.abs() - 1).clamp_min(0).square().flatten(1).mean(1)


class GradientCount:
    """How many denoiser calls and style-gradient evaluations a target has made (one evaluation = every item
    of the call's batch once)."""

    def __init__(self):
        self.calls = 0
        self.gradients = 0

    def __repr__(self):
        return f"GradientCount(calls={self.calls}, gradients={self.gradients})"


class StyleEnergy:
    """The energy prepared at one size: E(x), the negative log-density, and the fixed-budget denoiser."""

    def __init__(self, spec: StyleEnergySpec, width: int, height: int):
        self.spec, self.shape = spec, (3, height, width)
        self.n = 3 * height * width
        content = None
        if spec.content is not None:
            content = spec.content.detach().float()
            if tuple(content.shape[-2:]) != (height, width):
                content = F.interpolate(content, size=(height, width), mode="bilinear", antialias=True,
                                        align_corners=False)
        self.content = content  # [1, 3, H, W] or None
        self.count = GradientCount()
        self._moved: Dict[Any, Tuple[StyleCode, Optional[ContentEnergy], torch.Tensor]] = {}

    def on(self, like: torch.Tensor) -> Tuple[StyleCode, Optional[ContentEnergy], torch.Tensor]:
        """(style code, content energy or None, prior mean: [1, 1, 1, 1] grey or the content [1, 3, H, W]) as
        fresh tensors on ``like``'s device and dtype (never inference-mode tensors), made once per device and dtype."""
        key = (like.device, like.dtype)
        if key not in self._moved:
            with torch.inference_mode(False):
                code = self.spec.style.to(like.device, like.dtype)
                if self.content is None:
                    content, mean = None, torch.zeros(1, 1, 1, 1, device=like.device, dtype=like.dtype)
                else:
                    picture = self.content.to(device=like.device, dtype=like.dtype).clone()
                    blur = self.spec.content_blur
                    content, mean = ContentEnergy(gaussian_blur(picture, blur), blur), picture
            self._moved[key] = (code, content, mean)
        return self._moved[key]

    def check(self, x: torch.Tensor, who: str) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"{who}: x of shape {tuple(x.shape)}; expected [B, {', '.join(map(str, self.shape))}] "
                             "(the target's size)")

    def terms(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Per-item parts of E, each [B]: style distance, range, spectrum distance (when on), content error
        (with a content picture) and energy = style + range + u spectrum + w content. Differentiable in x."""
        self.check(x, f"{WHO} energy")
        code, content, _ = self.on(x)
        return self._terms(code, content, x)

    def _terms(self, code, content, x):
        seen = x
        if self.spec.tileable:  # wrap a margin around: features across the seam count like any others
            margin = max(1, min(x.shape[-2:]) // 4)
            seen = F.pad(x, (margin, margin, margin, margin), mode="circular")
        out = {"style": style_distance(code, seen), "range": outside_range(x)}
        out["energy"] = out["style"] + out["range"]
        if self.spec.spectrum_weight > 0 and code.spectrum is not None:  # periodic FFT: x itself, tileable or not
            out["spectrum"] = spectrum_distance(x, code.spectrum)
            out["energy"] = out["energy"] + self.spec.spectrum_weight * out["spectrum"]
        if content is not None:
            out["content"] = content(x)
            out["energy"] = out["energy"] + self.spec.content_weight * out["content"]
        return out

    def negative_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """n E(x) / T + |x - m|^2 / (2 s^2) per item, [B]: -log p(x) up to a constant; differentiable."""
        _, _, mean = self.on(x)
        prior = (x - mean).square().flatten(1).sum(1) / (2 * self.spec.prior_std ** 2)
        return self.n * self.terms(x)["energy"] / self.spec.temperature + prior

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
        """The K-step proximal estimate of the module docstring; returns [B, 3, H, W] in x's dtype.

        Items are solved one at a time, so item i is bit for bit the estimate of a batch of one: near grey the
        style gradient hangs on ReLUs at the edge of switching, where the rounding of batched convolutions
        differs from single ones, and the walk would grow those differences into a visibly different picture.
        On CUDA the solve runs in float64: there the backward passes of convolution and padding add in no fixed
        order, and in float32 the same seed gave visibly different pictures (measured on an H200; float64
        made them bit-identical, and equal to the CPU's float64 run)."""
        self.check(x, f"{WHO} denoiser")
        dtype = torch.float64 if x.device.type == "cuda" else x.dtype  # see the docstring
        # walks run under no_grad (ComfyUI: inference mode); the gradient needs normal tensors
        with torch.inference_mode(False), torch.enable_grad():
            work = x.detach().to(dtype).clone()
            sigma = torch.as_tensor(sigma).detach().clone().to(work).reshape(-1).expand(x.shape[0])
            out = torch.cat([self._solve(work[i:i + 1], float(sigma[i])) for i in range(x.shape[0])])
            self.count.calls += 1
            self.count.gradients += self.spec.gradient_steps
        return out.to(x.dtype)

    def _solve(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """One item x [1, 3, H, W]: K gradient evaluations of f from the Gaussian posterior mean."""
        spec = self.spec
        code, content, mean = self.on(x)
        a = 1.0 / max(sigma, 1e-12) ** 2
        b = 1.0 / spec.prior_std ** 2
        w = spec.content_weight if content is not None else 0.0

        def objective(y):
            """f(y) and its gradient: one style-gradient evaluation."""
            y = y.detach().requires_grad_(True)
            f = (self.n * self._terms(code, content, y)["energy"].sum() / spec.temperature
                 + (a * (y - x).square().sum() + b * (y - mean).square().sum()) / 2)
            (grad,) = torch.autograd.grad(f, y)
            return float(f.detach()), grad

        y = (a * x + b * mean) / (a + b)  # the Gaussian posterior mean: the minimiser of the quadratic part
        radius, tie = spec.max_step, 64 * torch.finfo(x.dtype).eps
        best = None
        for _ in range(spec.gradient_steps):
            f, grad = objective(y)
            if best is None or f <= best[1] + tie * abs(best[1]):  # ties within rounding count as better
                best = (y, f, grad)
            else:  # a worse point: step again from the best one with half the radius
                radius /= 2
            at, _, g = best
            step = g / (a + b + (w + RANGE_WEIGHT * (at.abs() > 1).to(at)) / spec.temperature)  # per value
            rms = float(step.square().mean().sqrt())
            y = at - step * min(1.0, radius / max(rms, 1e-30))
        return y.detach()


def style_energy_target(spec: StyleEnergySpec, width: int, height: int) -> WalkTarget:
    """The style-energy target over [3, height, width] pixels; its ``resize`` rebuilds it at another size."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIZE <= value <= MAX_SIZE:
            raise ValueError(f"{WHO}: {name}={value!r}; expected an integer {MIN_SIZE}..{MAX_SIZE} (the style "
                             f"encoder needs at least {MIN_SIZE} px per side)")
    if spec.spectrum_weight > 0 and spec.style.spectrum is None:
        log.warning("%s: the style code has no power spectrum (saved before the pack recorded one), so "
                    "spectrum_weight=%g has no effect; encode the references again to use it", WHO,
                    spec.spectrum_weight)
    energy = StyleEnergy(spec, width, height)
    name = f"style energy ({spec.style.encoder_name}, {spec.style.statistics}, T={spec.temperature:g}" + (
        f", content weight {spec.content_weight:g})" if spec.content is not None else ")")
    log.debug("%s at %dx%d: %d gradient steps per call", name, width, height, spec.gradient_steps)
    return WalkTarget(
        name=name,
        denoiser=energy.denoise,
        space="pixels",
        sigma_min=SIGMA_MIN,
        sigma_max=max(SIGMA_MAX_PER_STD * spec.prior_std, 2 * SIGMA_MIN),
        shape=energy.shape,
        resize=lambda w, h: style_energy_target(spec, w, h),
        tiled=lambda: style_energy_target(replace(spec, tileable=True), width, height),
        energy=energy.negative_log_density,
        info={"source": "style energy", "terms": energy.terms, "count": energy.count,
              "gradient_steps": spec.gradient_steps, "temperature": spec.temperature,
              "prior_std": spec.prior_std, "content_weight": spec.content_weight,
              "spectrum_weight": spec.spectrum_weight,
              # walk state copies of working memory (walk_core.limits), measured on the CPU: the encoder's
              # activations and their gradients; VGG-19's are 3x the random encoder's
              "memory_factor": 110.0 if spec.style.encoder_name == "random" else 330.0},
    )
