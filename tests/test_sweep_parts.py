"""The sweep's parts: axes from the command line, job names, the executor registry, jobs that never write, and
the local executor's worker processes giving the sequential run's bits."""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import pytest

import sweep_fakes
from cli_module import load_cli

ROOT = Path(__file__).resolve().parents[1]

axes = importlib.import_module("rwalk.walk_core.sweep.axes")
jobs = importlib.import_module("rwalk.walk_core.sweep.jobs")
base = importlib.import_module("rwalk.walk_core.sweep.executors.base")
errors = importlib.import_module("rwalk.walk_core.runner.errors")


@pytest.mark.parametrize("text, values", [
    ("10:50:10", ["10", "20", "30", "40", "50"]),
    ("0.5:1:0.25", ["0.5", "0.75", "1"]),
    ("0.1:0.3:0.1", ["0.1", "0.2", "0.3"]),  # no 0.30000000000000004, and the end is reached
    ("3:1:-1", ["3", "2", "1"]),
    ("1:10:4", ["1", "5", "9"]),  # the end is not a step: stops before it
    ("euler, adams,er_sde", ["euler", "adams", "er_sde"]),
    ("4,10:30:10", ["4", "10", "20", "30"]),
])
def test_values_and_ranges(text, values):
    assert axes.split_values(text) == values


@pytest.mark.parametrize("text", ["10:50:10", "0.1:0.3:0.1", "3:1:-1", "1:4", "0.5:1:0.25"])
def test_the_sweep_and_the_xy_plot_read_a_range_alike(text):
    """One range reader (walk_core/value_ranges.py) for --vary and the XY Plot Axis node."""
    spec_module = importlib.import_module("rwalk.walk_core.runner.spec")
    axis_values = importlib.import_module("rwalk.walk_core.axis_values")
    spec = spec_module.InputSpec("eta", "FLOAT", {"min": -100.0, "max": 100.0})
    assert [float(v) for v in axes.split_values(text)] == list(axis_values.parse_values(spec, text))


def test_seeds_ranges_and_lists():
    assert axes.parse_seeds("0-15") == tuple(range(16))
    assert axes.parse_seeds("3,7,9") == (3, 7, 9)
    assert axes.parse_seeds("0-2,10") == (0, 1, 2, 10)
    for bad in ("x", "-1", "3-", "1,1", ""):
        with pytest.raises(errors.WorkflowError):
            axes.parse_seeds(bad)


def test_a_range_that_never_ends_is_refused():
    with pytest.raises(ValueError, match="never reaches"):
        axes.split_values("1:10:-1")
    with pytest.raises(ValueError, match="at most"):
        axes.split_values("0:1:0.00001")


def test_job_ids_are_deterministic_file_names_and_distinct():
    plain = jobs.job_id_for((("WalkSampler", "steps", "10"), ("2", "walk", "euler")), 3)
    assert plain == "WalkSampler.steps-10__2.walk-euler__seed-3"
    assert plain == jobs.job_id_for((("WalkSampler", "steps", "10"), ("2", "walk", "euler")), 3)
    odd = [jobs.job_id_for((("5", "text", value),), None) for value in ("a/b", "a b", "a_b", "../x", "x" * 300)]
    assert len(set(odd)) == len(odd)
    for name in odd:
        assert "/" not in name and " " not in name and not name.startswith(".") and len(name) <= 130


def test_the_registry_loads_an_executor_only_when_asked():
    assert set(base.EXECUTORS) == {"local", "ray", "comfyui"}
    local = base.make_executor("local", argparse.Namespace(workers=None))
    assert local.name == "local" and local.workers == 1
    with pytest.raises(ValueError, match="expected one of local, ray, comfyui"):
        base.make_executor("slurm", argparse.Namespace())


def test_run_job_writes_nothing_and_captures_failures(tmp_path, monkeypatch):
    cli = load_cli()
    table = {**sweep_fakes.FAKE_NODES, **cli.load_runner().IO_NODE_CLASSES}
    plan = importlib.import_module("rwalk.walk_core.sweep.plan")
    runner = cli.load_runner()
    api, ui = runner.load_workflow(json.dumps(sweep_fakes.ui_workflow()), table)
    monkeypatch.chdir(tmp_path)
    sweep = plan.plan_sweep(api, ui, table, varies=[axes.parse_vary("Paint.mode=plain,fail")],
                            paths=runner.RunnerPaths(tmp_path / "in", tmp_path / "out"))
    jobs.install_node_table(table)
    try:
        done, failed = (jobs.run_job(job) for job in sweep.jobs)
    finally:
        jobs.install_node_table(None)
    assert list(tmp_path.iterdir()) == []
    assert done.status == "done" and done.error is None and done.outputs[0][0] == done.job_id + ".png"
    assert done.outputs[0][1].startswith(b"\x89PNG")
    assert failed.status == "failed" and failed.outputs == () and "paint refuses width 8" in failed.error


def test_worker_processes_give_the_sequential_pictures_bit_for_bit(tmp_path):
    """The real weight-free mixture walk at 32 px: --workers 2 (spawned, 1 torch thread each here) vs in-process."""
    cli = load_cli()
    workflow = str(ROOT / "workflows" / "exact_mixture.json")
    common = ["sweep", workflow, "--set", "WalkSampler.width=32", "--set", "WalkSampler.height=32", "--vary",
              "WalkSampler.steps=1,2", "--seeds", "4,9", "-q"]
    assert cli.main(common + ["--output-dir", str(tmp_path / "one")]) == 0
    assert cli.main(common + ["--output-dir", str(tmp_path / "two"), "--workers", "2"]) == 0
    pictures = sorted(p.name for p in (tmp_path / "one").glob("*.png"))
    assert len(pictures) == 5  # four jobs and the contact sheet
    assert pictures == sorted(p.name for p in (tmp_path / "two").glob("*.png"))
    for name in pictures:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_every_local_job_runs_with_the_threads_per_job_and_the_process_keeps_its_own(monkeypatch):
    """A thread count can change a picture's last bits, so the in-process run uses --cpus-per-job threads (default 1),
    as every worker process and Ray task does, and gives the process its own count back afterwards."""
    import torch

    local = importlib.import_module("rwalk.walk_core.sweep.executors.local")
    seen = []
    monkeypatch.setattr(local, "run_job", lambda job: seen.append(torch.get_num_threads()) or job)
    before = torch.get_num_threads()
    results = []
    local.create(argparse.Namespace(workers=None, cpus_per_job=None)).run(["a", "b"], results.append)
    assert seen == [1, 1] and results == ["a", "b"] and torch.get_num_threads() == before
    seen.clear()
    local.create(argparse.Namespace(workers=1, cpus_per_job=2.0)).run(["a"], results.append)
    assert seen == [2] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="cpus-per-job 1.5: .*whole number"):
        local.create(argparse.Namespace(workers=1, cpus_per_job=1.5))


def test_a_contact_sheet_too_large_to_look_at_is_not_drawn():
    contact = importlib.import_module("rwalk.walk_core.sweep.contact")
    from PIL import Image

    def axis(n):
        return axes.Axis("seed", tuple(str(i) for i in range(n)), tuple(() for _ in range(n)), tuple(range(n)))

    small, large = Image.new("RGB", (32, 32)), Image.new("RGB", (1024, 1024))
    assert contact._fits(axis(100), None, small) and contact._fits(axis(20), axis(20), small)
    assert not contact._fits(axis(101), None, small)  # a strip of 101 values
    assert contact._fits(axis(7), axis(8), large) and not contact._fits(axis(8), axis(8), large)  # 56 vs 64 MP
