"""The radial power spectrum of style codes (walk_core/style/spectrum.py) and its place in saved codes."""
from __future__ import annotations

import pytest
import torch

from rwalk.walk_core.guidance.energy import gaussian_blur
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.style import encode_style, load_style, save_style
from rwalk.walk_core.style.spectrum import BINS, _rings, log_spectrum, ring_power, spectrum_distance


def test_white_noise_has_the_same_power_in_every_ring():
    """Orthonormal FFT: a coefficient of white noise of std s has mean power s^2 whatever its frequency. A ring of
    N coefficients, channels averaged, estimates it with a relative sd of at most sqrt(2 / (3 N)) (conjugate
    pairs halve the independent ones); every ring must lie within 5 of those sds."""
    s, size = 0.3, 128
    x = s * torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    power = ring_power(x)[0]
    count = torch.bincount(_rings(size, size, "cpu"), minlength=BINS + 1)[:BINS].double()
    tolerance = 5 * (2 / (3 * count)).sqrt()
    assert bool(((power / s**2 - 1).abs() <= tolerance).all()), (power / s**2, tolerance)


def test_smooth_pictures_put_their_power_at_low_frequencies_and_the_mean_does_not_count():
    g = torch.Generator().manual_seed(1)
    smooth = gaussian_blur(torch.randn(1, 3, 64, 64, generator=g), 2.0)
    power = ring_power(smooth)[0]
    assert float(power[-1]) < 1e-3 * float(power[1])
    assert torch.allclose(ring_power(smooth + 0.7), ring_power(smooth), atol=1e-7)


def test_a_crop_has_the_spectrum_of_its_picture_and_noise_does_not():
    """Ring power is a density: the 64 px corner of a 128 px reference sits near its spectrum (0.01-0.13 measured
    for marble, painting, bricks, foliage), white noise far from it (4.3-8.1)."""
    for name in ("marble", "bricks"):
        big = reference_image(name, 128, 128, 0)[None] * 2 - 1
        target = log_spectrum(big, (1.0,))
        crop = spectrum_distance(big[..., :64, :64], target)
        noise = spectrum_distance(0.3 * torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)), target)
        assert float(spectrum_distance(big, target)) < 1e-10
        assert float(crop) < 0.05 * float(noise), (name, float(crop), float(noise))


def test_the_distance_is_differentiable_and_skips_rings_empty_at_small_sizes():
    target = log_spectrum(reference_image("marble", 64, 64, 0)[None] * 2 - 1, (1.0,))
    x = (0.2 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))).requires_grad_(True)
    d = spectrum_distance(x, target)
    (grad,) = torch.autograd.grad(d.sum(), x)
    assert d.shape == (2,) and bool(torch.isfinite(d).all()) and bool(torch.isfinite(grad).all())
    assert float(grad.abs().sum()) > 0


def test_weights_mix_the_references_power_before_the_log():
    a = reference_image("marble", 64, 64, 0)[None] * 2 - 1
    b = reference_image("bricks", 64, 64, 0)[None] * 2 - 1
    mixed = log_spectrum(torch.cat([a, b]), (0.25, 0.75))
    expected = (0.25 * ring_power(a)[0] + 0.75 * ring_power(b)[0] + 1e-4).log()
    assert torch.allclose(mixed, expected, atol=1e-6)
    code = encode_style(torch.cat([a, b]), weights=(1.0, 3.0))
    assert torch.allclose(code.spectrum, mixed, atol=1e-6)


def test_saved_codes_keep_the_spectrum_and_older_files_load_without_one(tmp_path):
    code = encode_style(reference_image("marble", 32, 32, 0)[None] * 2 - 1)
    back = load_style(save_style(code, tmp_path / "style.safetensors"))
    assert torch.equal(back.spectrum, code.spectrum)
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(tmp_path / "style.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(tmp_path / "style.safetensors"))
    older = {k: v for k, v in tensors.items() if k != "spectrum"}
    save_file(older, str(tmp_path / "older.safetensors"), metadata=metadata)
    assert load_style(tmp_path / "older.safetensors").spectrum is None
    save_file({**older, "spectrum": torch.zeros(5)}, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match=rf"key spectrum has shape \(5,\); expected \({BINS},\)"):
        load_style(tmp_path / "bad.safetensors")
