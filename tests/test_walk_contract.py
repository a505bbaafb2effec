"""Contract tests parametrised over the walk registry: every walk keeps the shared signature and rules."""
import inspect
import math
import re

import pytest
import torch

from rwalk.walk_core.errors import WalkDivergedError
from rwalk.walk_core.schedules import make_sigmas
from rwalk.walk_core.targets import GaussianMixture
from rwalk.walk_core.walks import WALKS, steps_for_nfe

NAMES = WALKS.names()
STEP_KEYS = {"x", "i", "sigma", "sigma_hat", "denoised"}


def small_mixture(shape, seed=0):
    """A 2-component mixture over ``shape`` (the exact denoiser keeps the input dtype)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn((2,) + tuple(shape), generator=g, dtype=torch.float64) * 0.5
    return GaussianMixture([1.0, 2.0], means, 0.05)


def start(shape, sigma_max, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * sigma_max).to(dtype)


class Counting:
    """A denoiser wrapper recording every call's sigma and keyword arguments."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.calls = []

    def __call__(self, x, sigma, **extra):
        self.calls.append({"sigma": sigma.detach().clone(), "extra": dict(extra), "shape": tuple(x.shape)})
        return self.denoiser(x, sigma, **extra)


def sigmas_for(steps, sigma_min=0.01, sigma_max=10.0):
    return make_sigmas("karras", steps, sigma_min, sigma_max)


# ---------------------------------------------------------------- signature


@pytest.mark.parametrize("name", NAMES)
def test_shared_signature(name):
    params = list(inspect.signature(WALKS[name].fn).parameters.values())
    assert [p.name for p in params[:6]] == ["model", "x", "sigmas", "extra_args", "callback", "disable"]
    for p in params[3:6]:
        assert p.default is None, f"{name}: {p.name} must default to None"
    for p in params[6:]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: option {p.name} must be keyword-only"
        assert p.default is not inspect.Parameter.empty, f"{name}: option {p.name} needs a default"


@pytest.mark.parametrize("name", NAMES)
def test_spec_options_are_the_keyword_defaults(name):
    spec = WALKS[name]
    params = inspect.signature(spec.fn).parameters
    for option, default in spec.options.items():
        assert params[option].default == default
    assert isinstance(spec.doc, str) and spec.doc.strip()
    assert isinstance(spec.stochastic, bool)


# ---------------------------------------------------------------- shapes, dtypes, callback


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 2), (3, 3, 4, 4), (1, 3, 1, 1)])
def test_output_shape_and_dtype_equal_input(name, dtype, shape):
    mixture = small_mixture(shape[1:])
    sigmas = sigmas_for(4)
    x = start(shape, float(sigmas[0]), dtype)
    out = WALKS[name].fn(mixture.denoise, x, sigmas)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_callback_once_per_step_in_order(name, steps):
    mixture = small_mixture((2,))
    sigmas = sigmas_for(steps)
    x = start((3, 2), float(sigmas[0]))
    seen = []
    out = WALKS[name].fn(mixture.denoise, x, sigmas, callback=seen.append)
    assert [info["i"] for info in seen] == list(range(steps))
    for i, info in enumerate(seen):
        assert STEP_KEYS <= set(info), f"missing keys {STEP_KEYS - set(info)}"
        assert info["x"].shape == x.shape and info["denoised"].shape == x.shape
        assert math.isclose(float(info["sigma"]), float(sigmas[i]), rel_tol=1e-6)
        assert float(info["sigma_hat"]) >= float(info["sigma"]) * (1 - 1e-6)
    assert torch.equal(seen[-1]["x"], out), "the last callback must see the returned state"


@pytest.mark.parametrize("name", NAMES)
def test_one_step_schedule(name):
    mixture = small_mixture((2,))
    sigmas = torch.tensor([5.0, 0.0], dtype=torch.float64)
    x = start((4, 2), 5.0)
    seen = []
    out = WALKS[name].fn(mixture.denoise, x, sigmas, callback=seen.append)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    assert [info["i"] for info in seen] == [0]


@pytest.mark.parametrize("name", NAMES)
def test_constant_schedule(name):
    """sigma_min == sigma_max gives a run of equal levels: allowed, and still finite."""
    mixture = small_mixture((2,))
    sigmas = make_sigmas("karras", 4, 0.5, 0.5)
    x = start((4, 2), 0.5)
    out = WALKS[name].fn(mixture.denoise, x, sigmas)
    assert bool(torch.isfinite(out).all())


# ---------------------------------------------------------------- evaluation count


def option_variants(name):
    """The walk's defaults, plus a few corrector counts where the walk has that option."""
    variants = [{}]
    if "corrector_steps" in WALKS[name].options:
        low = 1 if name == "langevin" else 0
        variants += [{"corrector_steps": c} for c in sorted({low, 2, 3})]
    return variants


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_denoiser_calls_equal_declared_nfe(name, steps):
    spec = WALKS[name]
    mixture = small_mixture((2,))
    sigmas = sigmas_for(steps)
    for overrides in option_variants(name):
        options = {**spec.options, **overrides}
        counting = Counting(mixture.denoise)
        WALKS[name].fn(counting, start((2, 2), float(sigmas[0])), sigmas, **overrides)
        assert len(counting.calls) == spec.nfe(steps, **options), (overrides, len(counting.calls))


@pytest.mark.parametrize("name", NAMES)
def test_steps_for_nfe_is_the_largest_within_budget(name):
    spec = WALKS[name]
    for overrides in option_variants(name):
        options = {**spec.options, **overrides}
        for budget in range(1, 40):
            steps = steps_for_nfe(name, budget, **overrides)
            fitting = [s for s in range(1, budget + 2) if spec.nfe(s, **options) <= budget]
            assert steps == (max(fitting) if fitting else 1), (overrides, budget, steps)


# ---------------------------------------------------------------- the model call


@pytest.mark.parametrize("name", NAMES)
def test_extra_args_reach_the_model(name):
    mixture = small_mixture((2,))
    sigmas = sigmas_for(3)
    marker = object()
    counting = Counting(mixture.denoise)
    WALKS[name].fn(counting, start((2, 2), float(sigmas[0])), sigmas, extra_args={"seed": 11, "custom": marker})
    assert counting.calls
    for call in counting.calls:
        assert call["extra"].get("seed") == 11
        assert call["extra"].get("custom") is marker


@pytest.mark.parametrize("name", NAMES)
def test_model_sees_a_per_item_sigma(name):
    mixture = small_mixture((2,))
    sigmas = sigmas_for(3)
    counting = Counting(mixture.denoise)
    WALKS[name].fn(counting, start((4, 2), float(sigmas[0])), sigmas)
    for call in counting.calls:
        assert tuple(call["sigma"].shape) == (4,)
        assert call["shape"] == (4, 2)
        assert bool((call["sigma"] > 0).all())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad_step", [0, 2])
def test_non_finite_denoiser_stops_with_step_and_sigma(name, bad_step):
    mixture = small_mixture((2,))
    sigmas = sigmas_for(4)
    done = []

    def poisoned(x, sigma, **extra):
        out = mixture.denoise(x, sigma, **extra)
        return torch.full_like(out, float("nan")) if len(done) == bad_step else out

    with pytest.raises(WalkDivergedError) as info:
        WALKS[name].fn(poisoned, start((2, 2), float(sigmas[0])), sigmas, callback=done.append)
    error = info.value
    assert len(done) == bad_step, "the walk reported a non-finite step as if it were fine"
    assert error.step == bad_step
    assert math.isclose(error.sigma, float(sigmas[bad_step]), rel_tol=1e-5)
    message = str(error)
    assert f"step {bad_step}" in message
    numbers = [float(t) for t in re.findall(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", message)]
    assert any(math.isclose(v, float(sigmas[bad_step]), rel_tol=1e-4) for v in numbers), message
    assert name in message


# ---------------------------------------------------------------- schedule and option validation


BAD_SIGMAS = {
    "not ending in 0": [10.0, 1.0, 0.1],
    "increasing": [1.0, 10.0, 0.0],
    "negative": [1.0, -0.5, 0.0],
    "single value": [0.0],
    "two-dimensional": [[1.0, 0.0]],
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", list(BAD_SIGMAS))
def test_bad_sigmas_raise_before_any_model_call(name, case):
    def never(x, sigma, **extra):
        raise AssertionError("the model was called before the schedule was checked")

    with pytest.raises(ValueError):
        WALKS[name].fn(never, torch.zeros(2, 2), torch.tensor(BAD_SIGMAS[case], dtype=torch.float64))


NUMERIC_OPTIONS = [
    (name, option) for name in NAMES for option, default in WALKS[name].options.items()
    if isinstance(default, (int, float)) and not isinstance(default, bool)
]


@pytest.mark.parametrize("name, option", NUMERIC_OPTIONS)
@pytest.mark.parametrize("value", [-1.0, -1e-3, math.nan])
def test_negative_or_nan_option_raises_before_any_model_call(name, option, value):
    """Every walk option is a non-negative amount (eta, s_noise, churn, snr, step counts, ratios)."""

    def never(x, sigma, **extra):
        raise AssertionError("the model was called before the options were checked")

    with pytest.raises(ValueError, match=option):
        WALKS[name].fn(never, torch.zeros(2, 2), sigmas_for(3), **{option: value})


def test_unknown_walk_lists_every_name():
    with pytest.raises((KeyError, ValueError)) as info:
        WALKS["no-such-walk"]
    message = str(info.value)
    assert "no-such-walk" in message
    for name in NAMES:
        assert name in message


def test_unknown_walk_in_run_walk_lists_every_name():
    from rwalk.walk_core.sample import WalkRequest, run_walk
    from rwalk.walk_core.targets import WalkTarget

    mixture = small_mixture((2,))
    target = WalkTarget("toy", mixture.denoise, "latent", 0.01, 10.0, (2,))
    with pytest.raises((KeyError, ValueError)) as info:
        run_walk(target, WalkRequest(walk="no-such-walk"))
    for name in NAMES:
        assert name in str(info.value)


def test_register_refuses_a_taken_name():
    from rwalk.walk_core.walks import register_walk

    with pytest.raises(ValueError, match=NAMES[0]):
        register_walk(NAMES[0], nfe=lambda steps, **_: steps, stochastic=False)(WALKS[NAMES[0]].fn)


# ---------------------------------------------------------------- sanity on an exact Gaussian


MU = torch.tensor([1.5, -0.7, 0.3, 2.0], dtype=torch.float64)
STD = 0.5
N_ITEMS = 4000


@pytest.mark.parametrize("name", NAMES)
def test_mean_of_an_exact_gaussian_target(name):
    """N(mu, s^2 I) as a one-component mixture: every walk lands around mu.

    The sampling error of the mean is std / sqrt(n) per coordinate; 5 of those (over 4 coordinates) plus
    a discretisation allowance of 0.1 s keep a correct walk well inside, while a walk that loses or
    doubles the mean (a sign error, a missing step) is off by O(|mu|).
    """
    gaussian = GaussianMixture([1.0], MU[None], STD**2)
    sigmas = make_sigmas("karras", 30, 0.002, 80.0)
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(N_ITEMS, MU.numel(), generator=g, dtype=torch.float64) * float(sigmas[0])
    out = WALKS[name].fn(gaussian.denoise, x, sigmas, extra_args={"seed": 99})
    assert bool(torch.isfinite(out).all())
    mean, std = out.mean(0), out.std(0)
    tolerance = 5 * std / math.sqrt(N_ITEMS) + 0.1 * STD
    assert bool(((mean - MU).abs() <= tolerance).all()), (mean - MU, tolerance)
    # spread: the right order of magnitude. Few-step annealed Langevin overshoots the variance (~1.8 s at
    # 30 levels, converging with more); a collapsed (std ~ 0) or exploded (std ~ sigma_max) walk fails.
    assert bool(((std > 0.5 * STD) & (std < 2.5 * STD)).all()), std


@pytest.mark.parametrize("name", [n for n in NAMES if not WALKS[n].stochastic])
def test_deterministic_walks_converge_to_the_exact_flow(name):
    """For N(mu, s^2) the probability-flow ODE is solved in closed form:
    x(sigma') - mu = (x(sigma) - mu) sqrt((s^2 + sigma'^2) / (s^2 + sigma^2)).
    A consistent solver's error must shrink with the step count: 4x the steps at least halves it (first order
    gives ~1/4, second order ~1/16); a wrong step size or slope leaves a fixed error.
    """
    mu, s = 1.0, 0.5

    def exact_denoiser(x, sigma, **_):  # E[x0 | x] for a Gaussian, independent of GaussianMixture
        sigma = sigma.reshape([-1] + [1] * (x.ndim - 1))
        return mu + s**2 / (s**2 + sigma**2) * (x - mu)

    x = start((256, 2), 80.0, torch.float64, seed=5)
    exact = mu + (x - mu) * s / math.sqrt(s**2 + 80.0**2)
    errors = []
    for steps in (20, 80):
        out = WALKS[name].fn(exact_denoiser, x, make_sigmas("karras", steps, 0.002, 80.0))
        errors.append(float((out - exact).abs().max()))
    assert errors[1] <= 0.5 * errors[0], errors


@pytest.mark.parametrize("name", WALKS.names())
def test_registry_entry_is_callable_as_the_walk(name):
    """WALKS maps a name to something callable with the shared signature (DESIGN: name -> function)."""
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([2.0, 1.0, 0.0])
    model = lambda x, s, **k: x * 0.5  # noqa: E731
    via_spec = WALKS[name](model, x.clone(), sigmas, extra_args={"seed": 3})
    via_fn = WALKS[name].fn(model, x.clone(), sigmas, extra_args={"seed": 3})
    assert torch.equal(via_spec, via_fn)
