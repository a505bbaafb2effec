"""Contract tests for the schedule registry: every entry of SCHEDULES obeys the same rules."""
import math

import pytest
import torch

from rwalk.walk_core.schedules import SCHEDULES, make_sigmas

NAMES = SCHEDULES.names()

# (n, sigma_min, sigma_max): a typical pixel range, a narrow one, a very wide one, many steps.
RANGES = [
    (2, 0.002, 80.0),
    (10, 0.002, 80.0),
    (37, 0.3, 1.7),
    (25, 1e-3, 1e3),
    (1000, 0.01, 14.6),
]


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


def test_registry_is_not_empty():
    assert len(NAMES) >= 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n, sigma_min, sigma_max", RANGES)
def test_shape_dtype_and_endpoints(name, n, sigma_min, sigma_max):
    sigmas = make_sigmas(name, n, sigma_min, sigma_max)
    assert isinstance(sigmas, torch.Tensor)
    assert sigmas.dtype == torch.float64
    assert tuple(sigmas.shape) == (n + 1,)
    assert float(sigmas[-1]) == 0.0
    assert close(float(sigmas[0]), sigma_max), (float(sigmas[0]), sigma_max)
    assert close(float(sigmas[-2]), sigma_min), (float(sigmas[-2]), sigma_min)
    assert bool(torch.isfinite(sigmas).all())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n, sigma_min, sigma_max", RANGES)
def test_descending_and_positive_before_the_end(name, n, sigma_min, sigma_max):
    sigmas = make_sigmas(name, n, sigma_min, sigma_max)
    levels = sigmas[:-1]
    assert bool((levels > 0).all())
    assert bool((levels[1:] <= levels[:-1]).all()), "not non-increasing"
    # with a real range every level is distinct: no step is wasted at a repeated sigma
    assert bool((levels[1:] < levels[:-1]).all()), "repeated sigma inside a non-degenerate range"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sigma_min, sigma_max", [(0.002, 80.0), (1.0, 1.0), (1e-3, 1e3)])
def test_one_step_is_sigma_max_then_zero(name, sigma_min, sigma_max):
    sigmas = make_sigmas(name, 1, sigma_min, sigma_max)
    assert tuple(sigmas.shape) == (2,)
    assert close(float(sigmas[0]), sigma_max)
    assert float(sigmas[1]) == 0.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("sigma", [0.002, 1.0, 80.0])
def test_equal_range_is_a_constant_run_then_zero(name, n, sigma):
    sigmas = make_sigmas(name, n, sigma, sigma)
    assert tuple(sigmas.shape) == (n + 1,)
    assert float(sigmas[-1]) == 0.0
    for value in sigmas[:-1].tolist():
        assert close(value, sigma), (value, sigma)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_bad_step_count_raises_naming_the_schedule(name, n):
    with pytest.raises(ValueError, match=name):
        make_sigmas(name, n, 0.002, 80.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "sigma_min, sigma_max",
    [(80.0, 0.002), (0.0, 80.0), (-1.0, 80.0), (0.002, math.inf), (math.inf, math.inf),
     (0.002, math.nan), (math.nan, 80.0)],
)
def test_bad_range_raises_naming_the_schedule(name, sigma_min, sigma_max):
    with pytest.raises(ValueError, match=name):
        make_sigmas(name, 10, sigma_min, sigma_max)


def test_unknown_name_lists_every_valid_name():
    with pytest.raises((KeyError, ValueError)) as info:
        make_sigmas("no-such-schedule", 10, 0.002, 80.0)
    message = str(info.value)
    assert "no-such-schedule" in message
    for name in NAMES:
        assert name in message


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_raises(name):
    with pytest.raises(ValueError, match="bogus_param"):
        make_sigmas(name, 10, 0.002, 80.0, bogus_param=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_declared_parameter_defaults_are_the_function_defaults(name):
    spec = SCHEDULES[name]
    plain = make_sigmas(name, 12, 0.002, 80.0)
    explicit = make_sigmas(name, 12, 0.002, 80.0, **spec.params)
    assert torch.equal(plain, explicit)


@pytest.mark.parametrize("name", [n for n in NAMES if "rho" in SCHEDULES[n].params])
def test_rho_must_be_positive(name):
    with pytest.raises(ValueError, match=name):
        make_sigmas(name, 10, 0.002, 80.0, rho=0.0)


@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_karras_with_rho_one_is_linear(n):
    karras = make_sigmas("karras", n, 0.002, 80.0, rho=1.0)
    linear = make_sigmas("linear", n, 0.002, 80.0)
    torch.testing.assert_close(karras, linear, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_polyexponential_with_rho_one_is_exponential(n):
    poly = make_sigmas("polyexponential", n, 0.002, 80.0, rho=1.0)
    expo = make_sigmas("exponential", n, 0.002, 80.0)
    torch.testing.assert_close(poly, expo, rtol=1e-12, atol=1e-12)


def test_exponential_is_uniform_in_log_sigma():
    sigmas = make_sigmas("exponential", 20, 0.002, 80.0)
    ratios = sigmas[1:-1] / sigmas[:-2]
    torch.testing.assert_close(ratios, torch.full_like(ratios, float(ratios[0])), rtol=1e-10, atol=0)


def test_linear_is_uniform_in_sigma():
    sigmas = make_sigmas("linear", 20, 0.002, 80.0)
    gaps = sigmas[:-2] - sigmas[1:-1]
    torch.testing.assert_close(gaps, torch.full_like(gaps, float(gaps[0])), rtol=1e-10, atol=0)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_registry_entry_is_callable_as_the_schedule(name):
    assert torch.equal(SCHEDULES[name](5, 0.1, 10.0), make_sigmas(name, 5, 0.1, 10.0))
