"""The benchmark's metrics: exact samples sit at their floors, distorted samples do not, and the fast exact
denoiser agrees with GaussianMixture's."""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.bench.fast_exact import LowRankExact
from rwalk.bench.guidance_metrics import class_precision, in_class_tv, spread
from rwalk.bench.metrics import _relative_cov_error, component_errors, exact_samples
from rwalk.bench.scoring import METRICS, Scorer, within
from rwalk.bench.targets import class_target, image_target, ring_target

N = 400


@pytest.fixture(scope="module")
def image():
    return image_target(components=4, size=8, rank=3)


@pytest.fixture(scope="module")
def image_scorer(image):
    return Scorer(image, N, directions=32, floor_repeats=8)


@pytest.mark.parametrize("make", [ring_target, lambda: image_target(components=4, size=8, rank=3)])
def test_fast_exact_matches_the_mixture(make):
    target = make()
    mixture, fast = target.mixture, LowRankExact(target.mixture)
    g = torch.Generator().manual_seed(0)
    for sigma in (80.0, 3.0, 0.5, 0.05, 0.002):
        x = mixture.sample(64, g, sigma=sigma)
        assert torch.allclose(fast.denoise(x, torch.full((64,), sigma, dtype=torch.float64)),
                              mixture.denoise(x, sigma), rtol=1e-9, atol=1e-9)
        assert torch.allclose(fast.responsibilities(x, sigma), mixture.responsibilities(x, sigma), atol=1e-9)
    per_item = torch.rand(64, generator=g, dtype=torch.float64) * 4 + 0.01
    x = mixture.sample(64, g, sigma=1.0)
    assert torch.allclose(fast.denoise(x, per_item), mixture.denoise(x, per_item), rtol=1e-9, atol=1e-9)
    x32 = x.float()
    assert fast.denoise(x32, per_item.float()).dtype == torch.float32


def test_fast_exact_refuses_anisotropic_variances():
    from rwalk.walk_core import GaussianMixture

    mixture = GaussianMixture([1, 1], [[0.0, 0.0], [1.0, 1.0]], [[0.1, 0.2], [0.1, 0.1]])
    with pytest.raises(ValueError, match="isotropic"):
        LowRankExact(mixture)


def test_relative_covariance_error_equals_the_dense_formula():
    g = torch.Generator().manual_seed(1)
    var = torch.rand(30, generator=g, dtype=torch.float64) + 0.1
    u = torch.randn(30, 2, generator=g, dtype=torch.float64)
    dev = torch.randn(12, 30, generator=g, dtype=torch.float64)
    dense_s = torch.diag(var) + u @ u.T
    dense_c = dev.T @ dev / 11
    assert _relative_cov_error(dev, var, u) == pytest.approx(float((dense_c - dense_s).norm() / dense_s.norm()),
                                                             rel=1e-10)


def test_exact_samples_are_at_their_floors(image, image_scorer):
    fresh = exact_samples(image.mixture, N, seed=777)
    status, _, values = image_scorer.evaluate(fresh)
    assert status == "ok"
    for key, value in values.items():
        assert within(value, image_scorer.floors[key], 3.5, METRICS[key].kind), (key, value, image_scorer.floors[key])
    assert values["detail"] == pytest.approx(1.0, abs=0.05)


def test_a_shrunk_sample_set_loses_detail_and_covariance(image, image_scorer):
    """Samples pulled 30 % towards their component's mean: detail ratio ~0.49 and a covariance error well above
    the floor."""
    x, components = image.mixture.sample(N, torch.Generator().manual_seed(5), return_components=True)
    means = image.mixture.means[components].reshape(x.shape)
    shrunk = means + 0.7 * (x - means)
    _, _, values = image_scorer.evaluate(shrunk)
    assert values["detail"] < 0.6
    floor = image_scorer.floors["cov_err"]
    assert values["cov_err"] > floor.mean + 4 * floor.sd
    assert values["mean_err"] <= image_scorer.floors["mean_err"].mean + 4 * image_scorer.floors["mean_err"].sd


def test_component_errors_are_weighted_over_components_with_samples(image):
    x, components = image.mixture.sample(200, torch.Generator().manual_seed(2), return_components=True)
    mean_err, cov_err = component_errors(image.mixture, x, components)
    assert 0 < mean_err < 1 and 0 < cov_err < 5
    only_first = torch.zeros_like(components)
    mean_one, _ = component_errors(image.mixture, x[components == 0], only_first[components == 0])
    assert math.isfinite(mean_one)


def test_guidance_metrics_on_the_exact_conditional():
    target = class_target(components=6, size=8, rank=3, classes=2, label=1)
    scorer = Scorer(target, 300, directions=16, floor_repeats=6)
    conditional = exact_samples(target.sampled, 300, seed=99)
    components = target.exact.assign(conditional)
    assert class_precision(target.mixture, components, 1) >= 0.99
    status, _, values = scorer.evaluate(conditional)
    assert status == "ok"
    assert values["precision"] >= 0.99
    assert values["diversity"] == pytest.approx(1.0, abs=0.15)
    assert within(values["class_tv"], scorer.floors["class_tv"], 3.5, "error")
    # one component only: the in-class proportions are off and the spread shrinks
    one = conditional[components == components.mode().values]
    assert spread(one) < spread(conditional)
    assert in_class_tv(target.mixture, target.exact.assign(one), 1) > 0.2


def test_divergence_is_flagged_not_raised(image, image_scorer):
    x = exact_samples(image.mixture, N, seed=3)
    nan = x.clone()
    nan[0, 0] = float("nan")
    assert image_scorer.evaluate(nan)[:2] == ("diverged", "non-finite samples")
    status, why, values = image_scorer.evaluate(x * 1e5)
    assert status == "diverged" and "samples up to" in why and not values
    noisy = x + 3.0 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=x.dtype)
    status, why, values = image_scorer.evaluate(noisy)
    assert status == "off-target" and "farther from every mode" in why and values["detail"] > 100
