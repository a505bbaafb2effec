"""Restart sampling (Xu et al. 2023; walk_core/walks/restart.py): where it restarts, its noise (per item, seed + i),
and its samples against an exact target at a moderate number of evaluations."""
from __future__ import annotations

import math

import pytest
import torch

from rwalk.walk_core import WALKS, ItemNoise, make_sigmas, steps_for_nfe
from rwalk.walk_core.walks.restart import restart_index, restart_levels

from exact_targets import mode_weights, ring_2d, total_variation

Z_MAX = 4.5  # two-sided p ~ 7e-6 per comparison (as tests/test_walk_statistics.py)


class Recording:
    def __init__(self, denoiser):
        self.denoiser, self.sigmas = denoiser, []

    def __call__(self, x, sigma, **extra):
        self.sigmas.append(float(sigma[0]))
        return self.denoiser(x, sigma, **extra)


def test_restart_jumps_from_the_level_nearest_restart_min_to_restart_max():
    mixture = ring_2d()
    sigmas = make_sigmas("karras", 10, 0.002, 80.0)
    at = restart_index([float(s) for s in sigmas], 0.06)
    t_min = float(sigmas[at])
    model = Recording(mixture.denoise)
    x = ItemNoise.from_seed(0, 4).randn((4, 2), dtype=torch.float64) * 80.0
    WALKS["restart"].fn(model, x, sigmas, restart_min=t_min, restart_max=5 * t_min, restart_steps=2,
                        restart_count=3)
    assert len(model.sigmas) == WALKS["restart"].nfe(10, restart_steps=2, restart_count=3) == 19 + 12
    tops = [s for s in model.sigmas if math.isclose(s, 5 * t_min, rel_tol=1e-6)]
    assert len(tops) == 3  # one Heun step starts at t_max per restart
    inner = restart_levels(t_min, 5 * t_min, 2)
    assert inner[0] == pytest.approx(5 * t_min) and inner[-1] == t_min and inner[0] > inner[1] > inner[2]


@pytest.mark.parametrize("steps, count", [(1, 0), (3, 0), (4, 1), (6, 1), (7, 2), (20, 2)])
def test_the_restarts_never_take_more_evaluations_than_the_main_walk(steps, count):
    mixture = ring_2d()
    sigmas = make_sigmas("karras", steps, 0.002, 80.0)
    model = Recording(mixture.denoise)
    WALKS["restart"].fn(model, torch.zeros(2, 2, dtype=torch.float64) + 80.0, sigmas)
    main = max(2 * steps - 1, 1)
    assert len(model.sigmas) == main + 6 * count  # 3 Heun steps (6 evaluations) per restart
    assert 6 * count <= main


def test_without_restarts_it_is_the_heun_walk():
    mixture = ring_2d()
    sigmas = make_sigmas("karras", 12, 0.002, 80.0)
    x = ItemNoise.from_seed(3, 16).randn((16, 2), dtype=torch.float64) * 80.0
    ours = WALKS["restart"].fn(mixture.denoise, x, sigmas, restart_count=0)
    assert torch.equal(ours, WALKS["heun"].fn(mixture.denoise, x, sigmas))


def test_batch_item_i_is_the_single_run_with_seed_plus_i():
    mixture = ring_2d()
    sigmas = make_sigmas("karras", 10, 0.002, 80.0)
    x = ItemNoise.from_seed(40, 3).randn((3, 2), dtype=torch.float64) * 80.0
    batch = WALKS["restart"].fn(mixture.denoise, x, sigmas, noise=ItemNoise.from_seed(500, 3))
    for i in range(3):
        alone = WALKS["restart"].fn(mixture.denoise, x[i:i + 1], sigmas, noise=ItemNoise.from_seed(500 + i, 1))
        assert torch.allclose(batch[i:i + 1], alone, rtol=0, atol=1e-12)
    other = WALKS["restart"].fn(mixture.denoise, x, sigmas, noise=ItemNoise.from_seed(900, 3))
    assert not torch.allclose(batch, other)  # the restarts' noise is the walk's own


@pytest.mark.parametrize("option, value", [("restart_max", 0.01), ("restart_steps", 1.5), ("restart_count", 0.5),
                                           ("restart_min", 0.0)])
def test_bad_options_name_themselves(option, value):
    with pytest.raises(ValueError, match=option):
        WALKS["restart"].fn(lambda x, s: x, torch.zeros(2, 2), make_sigmas("karras", 8, 0.002, 80.0),
                            **{option: value})


def test_restart_samples_the_exact_ring_at_nfe_50():
    """4,000 samples at NFE 50 (19 Heun levels and two restarts): mode weights and per-mode means as exact
    samples of the same size give them."""
    mixture = ring_2d()
    n = 4000
    steps = steps_for_nfe("restart", 50)
    assert WALKS["restart"].nfe(steps) > 2 * steps - 1  # the restarts run
    noise = ItemNoise.from_seed(11, n)
    x = noise.randn((n, 2), dtype=torch.float64) * 80.0
    out = WALKS["restart"].fn(mixture.denoise, x, make_sigmas("karras", steps, 0.002, 80.0), noise=noise)
    exact = mixture.sample(n, torch.Generator().manual_seed(99))
    floor = total_variation(mode_weights(mixture, exact), mixture.weights)
    tv = total_variation(mode_weights(mixture, out), mixture.weights)
    assert tv < 0.05 and floor < 0.03, (tv, floor)
    got, ref = mixture.responsibilities(out, 0).argmax(1), mixture.responsibilities(exact, 0).argmax(1)
    for k in range(mixture.n_components):
        a, b = out[got == k], exact[ref == k]
        se = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
        z = ((a.mean(0) - b.mean(0)).abs() / se).max().item()
        assert z < Z_MAX, f"component {k} mean is {z:.1f} standard errors from the exact one"
