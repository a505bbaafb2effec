"""bench/sweep_throughput.py: its report says what was measured and judges the goals from the figures given."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import sweep_throughput

    return sweep_throughput


def _figures(workers_wall: float, steady_ms: float):
    modes = {name: {"wall": wall, "job_seconds": 1.0, "same_as": [], "load": "0.1 -> 0.2"}
             for name, wall in (("sequential", 100.0), ("workers 2", workers_wall), ("ray 2 CPUs", 60.0))}
    trivial = {"jobs": 1000, "load": "0.1 -> 0.3", "planning_ms": 3.0, "planning_wall_s": 3.0, "start_s": 4.0,
               "wall_ms": 30.0, "steady_ms": steady_ms, "worker_job_ms": 10.0, "driver_cpu_ms": 5.0, "rss_before_mb": 300.0,
               "rss_after_mb": 310.0, "rss_peak_mb": 320.0}
    return modes, trivial


def test_the_report_judges_the_goals_from_the_figures(bench):
    args = argparse.Namespace(command="bench/sweep_throughput.py", jobs=32, size=128)
    met = bench.report(args, *_figures(workers_wall=50.0, steady_ms=20.0), job_s=0.01)
    assert "met (2.00x)" in met and "| 30.0 ms (goal <= 50: met) |" in met
    missed = bench.report(args, *_figures(workers_wall=80.0, steady_ms=40.0), job_s=0.01)
    assert "not met (1.25x)" in missed and "| 70.0 ms (goal <= 50: not met) |" in missed
    assert "300 -> 310 MB (10 KB per job" in met


def test_the_options_are_checked(bench):
    with pytest.raises(SystemExit):
        bench.main(["--jobs", "1"])
