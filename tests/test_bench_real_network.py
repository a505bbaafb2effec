"""bench/real_network.py: its report judges the goals (NFE 5 against the best peer, NFE 10 against the converged
walk's own seed-to-seed spread) from the figures it is given, and leaves out what did not run."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import real_network

    real_network.register_pack()
    return real_network


def _row(sampler, group, nfe, fd, schedule="karras"):
    return dict(sampler=sampler, group=group, schedule=schedule, nfe=nfe, steps=nfe, calls=nfe, fd=fd, seconds=1.0)


def _result(rows, spread=10.0):
    return dict(rows=rows, spread=spread, pretrained=False, model="m.safetensors", peers_unavailable={},
                strips={"converged": None}, samples=64)


@pytest.mark.parametrize("ours, peer, met", [(6.0, 10.0, "yes"), (8.0, 10.0, "no")])
def test_nfe5_goal_is_the_pack_best_against_the_best_peer(bench, ours, peer, met):
    rows = [_row("adams", "pack", 5, ours), _row("euler", "pack", 5, 50.0), _row("kd:dpmpp_2m", "k-diffusion", 5, peer),
            _row("kd:heun", "k-diffusion", 5, math.inf)]  # a diverged peer is not the best peer
    text = bench.render(_result(rows), "cmd", "fig.png")
    line = next(l for l in text.splitlines() if l.startswith("| NFE 5"))
    assert f"{ours / peer:.2f}×" in line and line.endswith(f"| {met} |") and "kd:dpmpp_2m" in line
    assert "| kd:heun | karras | diverged |" in text


def test_nfe10_goal_is_the_pack_best_against_the_spread(bench):
    rows = [_row("adams", "pack", 10, 10.5), _row("er_sde", "pack", 10, 12.0), _row("kd:lms", "k-diffusion", 10, 9.0)]
    text = bench.render(_result(rows, spread=10.0), "cmd", "fig.png")
    line = next(l for l in text.splitlines() if l.startswith("| NFE 10"))
    assert "adams" in line and "1.05×" in line and line.endswith("| yes |")
    assert not any(l.startswith("| NFE 5") for l in text.splitlines())  # NFE 5 did not run: no goal row


def test_best_skips_other_groups_and_non_finite_runs(bench):
    rows = [_row("adams", "pack", 5, math.inf), _row("heun", "pack", 5, 30.0), _row("kd:lms", "k-diffusion", 5, 1.0)]
    assert bench.best(rows, 5, True)["sampler"] == "heun"
    assert bench.best(rows, 5, False)["sampler"] == "kd:lms"
    assert bench.best(rows, 10, True) is None
