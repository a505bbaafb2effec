"""The pixel power spectrum of pictures, radially averaged: the second-order statistic the feature encoders
leave loose.

Feature Gram matrices average second moments over space, so a picture can match them with dense fine noise in
place of the reference's few sharp edges (the `random` encoder's Julesz ensemble is full of per-pixel colour
noise). The power spectrum pins how the picture's variance spreads over spatial frequencies; adding it to a
style energy is the spectrum constraint of Liu, Gousseau & Xia (2016, "Texture synthesis through convolutional
neural networks and spectrum constraints"), here in the size-free radial form: the log of the mean power in
BINS rings of frequency (0 .. 0.5 cycles per pixel, equal width), each picture's channels mean-removed and
averaged, orthonormal FFT (a ring's mean power is a variance density, the same for a picture and a crop).
"""
from __future__ import annotations

from typing import Sequence

import torch

BINS = 24
FLOOR = 1e-4  # added to each ring's power before the log: white noise of std 0.01 (a walk's sigma_min), invisible


def _rings(height: int, width: int, device) -> torch.Tensor:
    """Each FFT coefficient's ring index, [H * W]; BINS for the zero frequency (the mean, removed: no ring)."""
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)
    radius = (fy[:, None].square() + fx[None].square()).sqrt().flatten()
    rings = (radius * (2 * BINS)).long().clamp(max=BINS - 1)
    rings[0] = BINS
    return rings


def _ring_power_and_count(x: torch.Tensor):
    """Mean power per ring of each picture, [B, BINS], and how many coefficients each ring holds, [BINS]."""
    if x.ndim != 4 or min(x.shape[-2:]) < 2:
        raise ValueError(f"spectrum: pictures of shape {list(x.shape)}; expected [B, C, H, W] with H, W >= 2")
    b, _, h, w = x.shape
    coefficients = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True), norm="ortho")
    power = (coefficients.real.square() + coefficients.imag.square()).mean(1).flatten(1)  # [B, H * W]
    rings = _rings(h, w, x.device)
    total = x.new_zeros(b, BINS + 1).index_add_(1, rings, power)
    count = x.new_zeros(BINS + 1).index_add_(0, rings, torch.ones_like(rings, dtype=x.dtype))
    return (total / count.clamp_min(1))[:, :BINS], count[:BINS]


def ring_power(x: torch.Tensor) -> torch.Tensor:
    """Mean power per frequency ring of each picture x [B, C, H, W] (channels averaged), [B, BINS];
    differentiable. Rings no frequency falls into (pictures under 2 * BINS px) get 0."""
    return _ring_power_and_count(x)[0]


def log_spectrum(pictures: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """The references' log ring power, [BINS]: each picture's ring power averaged with ``weights``, then the log."""
    power = ring_power(pictures.float())
    mixed = sum(power[i] * float(w) for i, w in enumerate(weights))
    return (mixed + FLOOR).log()


def spectrum_distance(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rings of the squared log-power difference of each picture x [B, C, H, W] to ``target``
    [BINS], [B]; differentiable. Rings empty at x's size are skipped."""
    power, count = _ring_power_and_count(x)
    diff = ((power + FLOOR).log() - target.to(power)).square()
    return diff[:, count > 0].mean(1)
