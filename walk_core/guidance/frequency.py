"""Guidance split by spatial frequency: frequency-decoupled guidance (FDG) and FreSca.

Both act on the guidance difference D_c - D_u over the last two dimensions of pictures and latents
([B, C, H, W]); they refuse targets without two spatial dimensions. Both are linear in that difference, so
FreSca commutes with a cfg term (FreSca then cfg = cfg then FreSca), and FDG with equal band weights is cfg.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, List

import torch
import torch.nn.functional as F

from .chain import GuidanceContext, GuidanceTerm
from .terms import invalid, needs_branch, register_term, weight_unused

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # Burt & Adelson's 5-tap kernel, / 16


def needs_pictures(term: GuidanceTerm, target) -> None:
    """The check of terms that split frequencies: the target's samples need two spatial dimensions."""
    if len(target.shape) < 3:
        raise ValueError(f"GuidanceStep ({term.kind}): target {target.name!r} has samples of shape "
                         f"{tuple(target.shape)}; this term splits spatial frequencies and needs pictures or latents "
                         "([channels, height, width])")


def _blur(x: torch.Tensor) -> torch.Tensor:
    """The separable binomial blur of the last two dimensions of x [B, C, H, W] (edges replicated)."""
    kernel = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16.0
    b, c, h, w = x.shape
    flat = x.reshape(b * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kernel.view(1, 1, 1, 5))
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kernel.view(1, 1, 5, 1))
    return flat.reshape(b, c, h, w)


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    """Laplacian pyramid (Burt & Adelson 1983) of x [B, C, H, W]: ``levels`` bands, finest first; the last is
    the image blurred and halved levels - 1 times. Stops early where a side would drop below 2."""
    bands, current = [], x
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 2:
            break
        low = _blur(current)[..., ::2, ::2]
        bands.append(current - _up(low, current.shape[-2:]))
        current = low
    bands.append(current)
    return bands


def from_pyramid(bands: List[torch.Tensor]) -> torch.Tensor:
    """The inverse of :func:`laplacian_pyramid` (exact: each band holds what the upsampling left out)."""
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = _up(image, band.shape[-2:]) + band
    return image


def _as_pictures(t: torch.Tensor) -> torch.Tensor:
    """[B, ..., H, W] -> [B, C', H, W] (extra leading dimensions folded into channels)."""
    return t.reshape(t.shape[0], -1, t.shape[-2], t.shape[-1])


@register_term
@dataclass(frozen=True)
class FDG(GuidanceTerm):
    """Frequency-decoupled guidance (Sadat, Kansy, Hilliges & Weber 2025, "Guidance in the Frequency Domain
    Enables High-Fidelity Sampling at Low CFG Scales", arXiv:2506.19713): cfg on each band of a Laplacian pyramid
    with a weight of its own, then the bands put back together.

        c_l, u_l = band l of D_c and D_u          (levels - 1 fine bands and one coarse band)
        g_l      = u_l + w_l (c_l - u_l)          (w_l = ``weight`` on the fine bands, ``low_weight`` on the coarse)
        D        = the pyramid g put back together

    The paper finds that the low frequencies carry the colours and layout -- a high scale there over-saturates and
    costs diversity -- while the high ones carry the detail a high scale improves; it recommends a low scale on the
    coarse band and a high one on the fine bands (e.g. 5 and 10 for SDXL, two levels). ``levels`` = 2 splits off
    one octave (the finest detail); more levels put more of the picture into the fine bands (for pixel targets,
    whose detail spans more octaves than a latent's). Equal weights are exactly cfg with that scale; weight 1 and
    low_weight 1 the conditional prediction. Pictures and latents only.
    """

    kind: ClassVar[str] = "fdg"
    uses_unconditional: ClassVar[bool] = True
    weight: float = 8.0
    low_weight: float = 4.0
    levels: int = 2

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.levels, int) and 2 <= self.levels <= 8):
            raise invalid(self, "levels", self.levels, "an integer 2..8 (pyramid levels: 2 = one octave of detail)")
        if not math.isfinite(self.low_weight):
            raise invalid(self, "low_weight", self.low_weight, "a finite value")

    def check(self, target) -> None:
        needs_branch(self, target)
        needs_pictures(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        uncond = ctx.unconditional
        cond_bands = laplacian_pyramid(_as_pictures(denoised), self.levels)
        uncond_bands = laplacian_pyramid(_as_pictures(uncond), self.levels)
        last = len(cond_bands) - 1
        guided = [u + (self.low_weight if i == last else self.weight) * (c - u)
                  for i, (c, u) in enumerate(zip(cond_bands, uncond_bands))]
        return from_pyramid(guided).reshape(denoised.shape)


def low_frequency_mask(height: int, width: int, cutoff: int, device=None) -> torch.Tensor:
    """[H, W] booleans over torch.fft's frequency grid: True where both frequency indices (cycles per picture)
    are below ``cutoff`` in magnitude; an axis with cutoff >= half its size is low throughout."""

    def axis(n: int) -> torch.Tensor:
        k = torch.fft.fftfreq(n, d=1.0 / n, device=device).abs()  # integer frequency indices
        return torch.ones(n, dtype=torch.bool, device=device) if 2 * cutoff >= n else k < cutoff

    return axis(height)[:, None] & axis(width)[None, :]


@register_term
@dataclass(frozen=True)
class FreSca(GuidanceTerm):
    """FreSca (Huang, Liang, Tang, Ma, Tian & Xu 2025, "FreSca: Scaling in Frequency Space Enhances Diffusion
    Models", arXiv:2504.02154): the guidance difference scaled separately below and above a frequency cutoff.

        delta = D - D_u                                       (D the running estimate)
        D     = D_u + IFFT( FFT(delta) * (l on the low box, h elsewhere) )   (per item and channel, last 2 dims)

    l = ``scale_low``, h = ``scale_high``; the low box holds the frequencies with both indices below
    ``freq_cutoff`` (cycles per picture; a cutoff at half a side or more makes that whole axis low). The paper
    (and ComfyUI's FreSca node: 1, 1.25, 20) boosts the high frequencies for detail. l = h = 1 changes nothing; the
    term is linear in delta, so it may go before or after a cfg term with the same result. ComfyUI's node counts
    the one frequency -cutoff as low too (an unsymmetric box whose imaginary leftovers it drops); the box here is
    symmetric. No weight of its own (``weight`` must stay 1); its interval and strength schedule apply.
    """

    kind: ClassVar[str] = "fresca"
    uses_unconditional: ClassVar[bool] = True
    scale_low: float = 1.0
    scale_high: float = 1.25
    freq_cutoff: int = 20

    def __post_init__(self):
        super().__post_init__()
        weight_unused(self)
        for name in ("scale_low", "scale_high"):
            value = getattr(self, name)
            if not (0.0 <= value <= 10.0):
                raise invalid(self, name, value, "0 <= value <= 10 (1 = unchanged)")
        if not (isinstance(self.freq_cutoff, int) and self.freq_cutoff >= 1):
            raise invalid(self, "freq_cutoff", self.freq_cutoff,
                          "an integer >= 1 (a frequency index: cycles per picture)")

    def check(self, target) -> None:
        needs_branch(self, target)
        needs_pictures(self, target)

    def apply(self, ctx: GuidanceContext, denoised: torch.Tensor, state) -> torch.Tensor:
        uncond = ctx.unconditional
        delta = denoised - uncond  # [B, ..., H, W]
        height, width = delta.shape[-2:]
        low = low_frequency_mask(height, width, self.freq_cutoff, delta.device)
        gain = torch.where(low, self.scale_low, self.scale_high).to(delta.dtype)  # [H, W]
        work = delta if delta.dtype in (torch.float32, torch.float64) else delta.float()
        filtered = torch.fft.ifft2(torch.fft.fft2(work) * gain).real  # a symmetric gain keeps the result real
        return uncond + filtered.to(delta.dtype)
