"""``cli.py sweep --executor ray`` on a real Ray instance: started once for this module on this machine
(``num_cpus=2``, node address 127.0.0.1, the pack as its working_dir, as the executor itself would start one) and
stopped after. The sweep is the shipped default workflow at 32 px with 4 steps: 8 seeds."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from cli_module import load_cli

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--set", "1.width=32", "--set", "1.height=32", "--set", "3.width=32", "--set", "3.height=32",
         "--set", "3.steps=4"]  # node 1: the reference picture, node 3: the WalkSampler
JOBS = 8


def sweep(out: Path, *extra: str) -> int:
    return load_cli().main(["sweep", str(ROOT / "workflows" / "default.json"), *SMALL, "--seeds", f"0-{JOBS - 1}",
                            "--output-dir", str(out), "-q", *extra])


def manifest(folder: Path) -> list:
    return [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines()]


def pictures(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_without_ray_the_executor_is_one_error_saying_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where it is not installed
    assert sweep(tmp_path / "out", "--executor", "ray") == 2
    err = capsys.readouterr().err
    assert "--executor ray" in err and "pip install 'ray==" in err
    assert not (tmp_path / "out" / "sweep.jsonl").exists()


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="ray is a dev requirement (requirements-dev.txt; scripts/env.sh)")
    from rwalk.walk_core.sweep.executors.ray_executor import EXCLUDES

    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env={"working_dir": str(ROOT), "excludes": EXCLUDES}, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_pictures(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    assert sweep(out) == 0
    return pictures(out)


def test_ray_gives_the_pictures_local_gives_bit_for_bit(ray_instance, local_pictures, tmp_path):
    assert sweep(tmp_path / "ray", "--executor", "ray") == 0
    entries = manifest(tmp_path / "ray")
    assert len(entries) == JOBS and {e["status"] for e in entries} == {"done"}
    assert len(local_pictures) == JOBS + 1  # the jobs' pictures and the contact sheet
    assert pictures(tmp_path / "ray") == local_pictures


def _ours(pid: int) -> bool:
    """A process of this test's Ray instance: this process is among its ancestors (raylet -> worker)."""
    for _ in range(4):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == os.getpid():
            return True
    return False


def _kill_one_running_job(killed: list, stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen running a sweep job (its title is ray::rwalk_sweep_job)."""
    from rwalk.walk_core.sweep.executors.ray_executor import TASK_NAME

    title = f"ray::{TASK_NAME}".encode()
    while not stop.is_set() and not killed:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                running = Path(f"/proc/{entry}/cmdline").read_bytes().startswith(title)
            except OSError:
                continue
            if running and _ours(int(entry)):
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
                return
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker through /proc")
def test_a_worker_killed_mid_job_is_retried_and_the_sweep_completes(ray_instance, local_pictures, tmp_path):
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_one_running_job, args=(killed, stop), daemon=True)
    killer.start()
    try:
        code = sweep(tmp_path / "ray", "--executor", "ray")
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running a job"
    assert code == 0
    out = tmp_path / "ray"
    assert [e["status"] for e in manifest(out)] == ["done"] * JOBS
    assert pictures(out) == local_pictures  # the retried job gave the same bits
    assert sorted(p.name for p in out.iterdir()) == sorted(list(local_pictures) + ["sweep.jsonl"])


def test_resume_after_ctrl_c_runs_only_the_missing_jobs(ray_instance, local_pictures, tmp_path, monkeypatch):
    from rwalk.walk_core.sweep.executors import ray_executor

    given = []  # the job ids each run handed to Ray
    run = ray_executor.RayExecutor.run

    def noting_run(self, jobs, on_result):
        given.append([job.job_id for job in jobs])
        if len(given) > 1:
            return run(self, jobs, on_result)
        recorded = []

        def ctrl_c_after_two(result):  # Ctrl-C while the driver waits, once it has recorded two jobs
            on_result(result)
            recorded.append(result)
            if len(recorded) == 2:
                raise KeyboardInterrupt

        return run(self, jobs, ctrl_c_after_two)

    monkeypatch.setattr(ray_executor.RayExecutor, "run", noting_run)
    out = tmp_path / "ray"
    assert sweep(out, "--executor", "ray") == 130
    before = manifest(out)
    assert 2 <= len(before) < JOBS and {e["status"] for e in before} == {"done"}
    # what the manifest lists is there, whole; nothing else is (no temporary file, no contact sheet yet)
    assert sorted(p.name for p in out.iterdir()) == sorted([e["outputs"][0] for e in before] + ["sweep.jsonl"])
    for entry in before:
        assert (out / entry["outputs"][0]).read_bytes() == local_pictures[entry["outputs"][0]]
        Image.open(out / entry["outputs"][0]).load()

    assert sweep(out, "--executor", "ray", "--resume") == 0
    done_before = {e["job_id"] for e in before}
    assert sorted(given[1]) == sorted({e["job_id"] for e in manifest(out)} - done_before)
    assert len(given[1]) == JOBS - len(before)
    assert pictures(out) == local_pictures


def test_more_gpus_than_the_cluster_has_is_one_error(ray_instance, tmp_path, capsys):
    assert sweep(tmp_path / "gpu", "--executor", "ray", "--gpus-per-job", "1") == 2
    err = capsys.readouterr().err
    assert "--gpus-per-job 1" in err and "0 GPU" in err
