"""Learned schedules (issue 31 §1): the parameterisation, the search against a many-step teacher, the files the
schedule registry loads by name, and -- on exact targets, with held-out noise -- never worse than the best fixed
schedule at equal NFE."""
import math

import pytest
import torch

from dataclasses import replace

from exact_targets import image_3x16x16, ring_2d
from rwalk.bench.fast_exact import LowRankExact
from rwalk.walk_core import SCHEDULES, WalkRequest, make_sigmas, run_walk
from rwalk.walk_core.registry import UnknownNameError
from rwalk.walk_core.schedule_learning import LearnSpec, learn_schedule, sigmas_from_logits, warp_positions
from rwalk.walk_core.schedule_learning.files import ENV, load_schedule, save_schedule
from rwalk.walk_core.schedule_learning.learn import FIXED, WalkBatch, distance, start_noise
from rwalk.walk_core.schedule_learning.parameters import logits_from_sigmas, positions
from rwalk.walk_core.targets import exact_target
from rwalk.walk_core.walks import WalkSpec

TEST_SEED = 2_000_000_011  # the test's own noise, far from the training (0 + i) and validation (1e9 + i) items
# (all below 2**32: torch's CPU generator keeps the low 32 bits of a seed)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    return tmp_path


def test_every_logit_vector_is_a_schedule_inside_the_range():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5, 12):
        for _ in range(20):
            sigmas = sigmas_from_logits(torch.randn(n, generator=g, dtype=torch.float64) * 4, 0.002, 80.0)
            assert sigmas.shape == (n + 1,) and float(sigmas[-1]) == 0 and float(sigmas[0]) == pytest.approx(80.0)
            assert bool((sigmas[1:] < sigmas[:-1]).all())
            assert bool((sigmas[:-1] >= 0.002 * (1 - 1e-12)).all())


def test_logits_of_a_fixed_schedule_give_it_back():
    karras = make_sigmas("karras", 8, 0.002, 80.0)
    back = sigmas_from_logits(logits_from_sigmas(karras, 0.002, 80.0), 0.002, 80.0)
    assert torch.allclose(back[:-1].log(), karras[:-1].log(), atol=2e-3)  # the slack floor moves sigma_min a hair


def test_warp_keeps_the_learned_levels_and_stays_monotone():
    u = positions(make_sigmas("karras", 6, 0.002, 80.0), 0.002, 80.0)
    assert torch.allclose(warp_positions(u, 6, 0.002, 80.0), make_sigmas("karras", 6, 0.002, 80.0), rtol=1e-9)
    for n in (1, 2, 3, 11):
        sigmas = warp_positions(u, n, 0.01, 20.0)
        assert sigmas.shape == (n + 1,) and float(sigmas[0]) == 20.0 and float(sigmas[-1]) == 0
        assert bool((sigmas[1:] <= sigmas[:-1]).all()) and bool((sigmas[:-1] >= 0.01 * (1 - 1e-9)).all())


def _test_errors(target, walk, sigmas, count=768, teacher_steps=80):
    """[count] per-item RMS distance to the teacher on the test's own noise (what the learning minimises)."""
    from rwalk.walk_core import WALKS

    x, seeds = start_noise(target, count, TEST_SEED, target.sigma_max)
    teacher = WalkBatch(WALKS["adams"], target.denoiser, x, seeds, {}).run(
        make_sigmas("karras", teacher_steps, target.sigma_min, target.sigma_max))
    out = WalkBatch(WALKS[walk], target.denoiser, x, seeds, {}).run(sigmas)
    return distance(out, teacher)


@pytest.mark.parametrize("mixture, walk, nfe, count", [(ring_2d, "adams", 5, 512), (ring_2d, "euler", 10, 512),
                                                        (image_3x16x16, "adams", 5, 256)])
def test_learned_schedule_is_never_worse_than_the_best_fixed_one_on_held_out_noise(mixture, walk, nfe, count):
    exact = mixture()
    target = replace(exact_target(exact), denoiser=LowRankExact(exact).denoise)  # the same denoiser, closed form
    learned = learn_schedule(target, LearnSpec(walk=walk, nfe=nfe, train_samples=count // 6, val_samples=64,
                                               evaluations=80))
    assert learned.method == "simplex" and learned.sigmas.shape == (learned.steps + 1,)
    assert learned.train_rms <= min(learned.fixed_train.values()) + 1e-12  # starts from the best, keeps the best
    errors = {name: _test_errors(target, walk, make_sigmas(name, learned.steps, 0.002, 80.0), count) for name in FIXED}
    best = min(errors, key=lambda name: float(errors[name].mean()))
    ours = _test_errors(target, walk, learned.sigmas, count)
    diff = ours - errors[best]  # paired: the same noise, the same teacher
    # one-sided: the learned mean error may exceed the best fixed one's only by 3 standard errors of the difference
    tolerance = 3 * float(diff.std()) / math.sqrt(diff.numel())
    assert float(diff.mean()) <= tolerance, (float(ours.mean()), best, float(errors[best].mean()), tolerance)


def test_saved_schedule_loads_by_name_and_walks(folder):
    target = exact_target(ring_2d())
    learned = learn_schedule(target, LearnSpec(nfe=4, train_samples=32, val_samples=32, evaluations=20))
    path = save_schedule(learned, "ring_nfe4")
    again = save_schedule(learned, "ring_nfe4")
    assert path.name == "ring_nfe4.safetensors" and again.name == "ring_nfe4_2.safetensors"  # never overwritten
    assert "learned:ring_nfe4" in SCHEDULES.learned_names() and "learned:ring_nfe4" in SCHEDULES
    assert torch.allclose(make_sigmas("learned:ring_nfe4", 4, 0.002, 80.0), learned.sigmas, rtol=1e-9)
    assert load_schedule(path).metadata["walk"] == "adams"
    result = run_walk(target, WalkRequest(walk="adams", schedule="learned:ring_nfe4", steps=4, batch_size=3))
    assert torch.allclose(result.sigmas.double(), learned.sigmas, rtol=1e-6) and bool(torch.isfinite(result.x).all())


def test_unknown_or_malformed_files_are_one_clear_error(folder):
    with pytest.raises(UnknownNameError, match="no file nope.safetensors.*learn-schedule"):
        SCHEDULES["learned:nope"]
    with pytest.raises(UnknownNameError, match="learned:<name>"):
        SCHEDULES["nope"]
    (folder / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors"):
        make_sigmas("learned:junk", 4, 0.002, 80.0)
    from safetensors.torch import save_file

    meta = {"format": "walk-learned-schedule", "version": "1", "steps": "2", "sigma_min": "0.002", "sigma_max": "80"}
    save_file({"sigmas": torch.tensor([1.0, 5.0, 0.0], dtype=torch.float64),
               "positions": torch.tensor([0.0, 0.5], dtype=torch.float64)}, str(folder / "rising.safetensors"),
              metadata=meta)
    with pytest.raises(ValueError, match="rising.safetensors.*not a schedule"):
        SCHEDULES["learned:rising"]
    save_file({"sigmas": torch.zeros(3)}, str(folder / "other.safetensors"), metadata={"format": "style"})
    with pytest.raises(ValueError, match="other.safetensors.*expected format"):
        SCHEDULES["learned:other"]
    with pytest.raises(ValueError, match="name='../up'"):
        save_schedule(None, "../up")


def test_stochastic_walks_and_impossible_gradients_are_refused():
    target = exact_target(ring_2d())
    with pytest.raises(ValueError, match="euler_ancestral.*stochastic.*adams"):
        learn_schedule(target, LearnSpec(walk="euler_ancestral"))
    with pytest.raises(ValueError, match="method='gradient'.*no gradient"):
        learn_schedule(target, LearnSpec(nfe=3, train_samples=4, val_samples=4, method="gradient"))


def _differentiable_euler(model, x, sigmas, extra_args=None, callback=None, disable=None, noise=None):
    """Euler on the probability-flow ODE in plain torch ops, so gradients reach the sigmas."""
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i] * x.new_ones(x.shape[0])
        denoised = model(x, sigma)
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def _gaussian(x, sigma, **_):
    """Exact denoiser of N(0, diag(4, 0.01)) in torch ops: differentiable in x and sigma."""
    variance = x.new_tensor([4.0, 0.01])
    return x * variance / (variance + sigma[:, None] ** 2)


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # the mixture's float(sigma), on purpose
def test_a_differentiable_walk_is_fitted_by_gradient_descent():
    target = replace(exact_target(ring_2d()), denoiser=_gaussian, name="gaussian")
    walk = WalkSpec(_differentiable_euler, lambda steps, **_: steps, False, "test euler", {})
    learned = learn_schedule(target, LearnSpec(walk="euler", nfe=5, train_samples=32, val_samples=32,
                                               teacher_steps=40, evaluations=20), walk=walk)
    assert learned.method == "gradient"
    assert learned.train_rms < min(learned.fixed_train.values())  # the gradient steps improved on the start
    # the exact mixture reads sigma as a Python number: gradients pass the walk's steps but not the denoiser, so
    # autograd's slope disagrees with a finite difference and the derivative-free search is used instead
    partial = learn_schedule(exact_target(ring_2d()), LearnSpec(walk="euler", nfe=3, train_samples=8, val_samples=8,
                                                                teacher_steps=20, evaluations=5), walk=walk)
    assert partial.method == "simplex"


def test_node_outputs_sigmas_and_a_name_the_registry_loads(folder):
    from rwalk.nodes.schedule_learn import LearnWalkSchedule

    sigmas, name, report = LearnWalkSchedule().learn(
        exact_target(ring_2d()), "adams", 4, "node_ring", 16, 10, 0.0, 16, 0, 64, 64, 0.0, 0.0)
    assert name == "learned:node_ring" and sigmas.dtype == torch.float32 and sigmas.shape == (5,)
    assert torch.allclose(make_sigmas(name, 4, 0.002, 80.0).float(), sigmas) and "held-out" in report
    with pytest.raises(ValueError, match="LearnWalkSchedule: name='a/b'"):
        LearnWalkSchedule().learn(exact_target(ring_2d()), "adams", 4, "a/b", 16, 10, 0.0, 16, 0, 64, 64, 0.0, 0.0)


def test_cli_learn_schedule_writes_the_file(tmp_path, monkeypatch, capsys):
    from cli_module import load_cli

    cli = load_cli()

    monkeypatch.delenv(ENV, raising=False)
    code = cli.main(["learn-schedule", "--mixture", "--size", "8", "--nfe", "2", "--samples", "2", "--evaluations",
                     "3", "--teacher-steps", "4", "--name", "tiny", "--output-dir", str(tmp_path), "-q"])
    assert code == 0
    path = tmp_path / "walk_schedules" / "tiny.safetensors"
    assert capsys.readouterr().out.strip() == str(path) and load_schedule(path).metadata["nfe"] == "2"
    assert cli.main(["learn-schedule", "--mixture", "--name", "bad/name", "-q"]) == 2
