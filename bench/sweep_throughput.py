"""Sweep throughput on this machine, and what Ray costs per job (issue 30 §4). Writes docs/bench/sweep_throughput.md.

    .venv/bin/python bench/sweep_throughput.py                       # about 10 minutes on 2 quiet cores
    .venv/bin/python bench/sweep_throughput.py --jobs 8 --trivial 100 --out quick.md   # a quick look, not into docs/

1. **Throughput**: one sweep of ``--jobs`` seeds of the default weight-free walk (workflows/default.json, the walk at
   ``--size`` px) run three ways, each a fresh ``cli.py sweep`` process: the local executor sequential (in-process,
   torch on all cores), ``--workers 2`` (two processes, one torch thread each) and ``--executor ray --workers 2``
   (a local Ray instance with 2 CPUs, started and stopped by the sweep, so its start-up is in its time). Ratios are
   sequential time over each one's. The three give the same pictures; the script checks it.
2. **Ray per job**, on ``--trivial`` jobs of a trivial workflow (exact_mixture.json at 8 px, 1 step) through a
   local Ray instance with 2 CPUs, driven by ``cli.py sweep``'s own code in this process: the wall time per job;
   the overhead per task (CPU-seconds of the 2 slots per job minus the job's own time in-process); the driver's CPU
   per job split into planning (building and validating every job's graph) and running (Ray submission, result
   transfer, writing each picture and the manifest); the driver's peak memory growth.

The machine's load average is recorded before and after each part: on a shared machine the ratios are only as
good as that load was even.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "sweep_throughput.md"
GOAL_OVERHEAD_MS = 50.0  # issue 30: Ray's per-task overhead
GOAL_WORKERS = 1.7  # issue 30: --workers 2 over sequential, on 2 cores
log = logging.getLogger("bench.sweep_throughput")

MODES = {  # name -> the sweep's extra options
    "sequential": ["--cpus-per-job", str(os.cpu_count() or 1)],  # the sequential run at its fastest: all cores
    "workers 2": ["--workers", "2"],
    "ray 2 CPUs": ["--executor", "ray", "--workers", "2"],
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def sweep_args(size: int, jobs: int) -> List[str]:
    return ["sweep", str(ROOT / "workflows" / "default.json"), "--set", f"3.width={size}", "--set",
            f"3.height={size}", "--seeds", f"0-{jobs - 1}", "-q"]


def throughput(size: int, jobs: int, folder: Path) -> Dict[str, dict]:
    """Each mode once, as its own process; wall seconds and the jobs' own seconds from the manifest."""
    out = {}
    for name, extra in MODES.items():
        target = folder / name.replace(" ", "_")
        before = load()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *sweep_args(size, jobs), *extra,
                               "--output-dir", str(target)], capture_output=True, text=True, timeout=7200)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{name}: cli.py sweep failed ({done.returncode}): {done.stderr[-2000:]}")
        entries = [json.loads(line) for line in (target / "sweep.jsonl").read_text().splitlines()]
        pictures = {p.name: p.read_bytes() for p in target.glob("*.png")}
        out[name] = {"wall": wall, "job_seconds": sum(e["seconds"] for e in entries), "pictures": pictures,
                     "load": f"{before} -> {load()}"}
        log.info("%s: %.1f s for %d jobs (load %s)", name, wall, jobs, out[name]["load"])
    for name, result in out.items():  # which other modes gave these very bytes (job pictures and contact sheet)
        result["same_as"] = [other for other in out if other != name and out[other]["pictures"] == result["pictures"]]
    for result in out.values():
        del result["pictures"]
    return out


TRIVIAL = ["--set", "2.width=8", "--set", "2.height=8", "--set", "2.steps=1"]


def trivial_job_seconds(repeats: int = 20) -> float:
    """Median in-process time of one trivial job (what a task does besides Ray's own work)."""
    from rwalk.walk_core.runner import load_workflow
    from rwalk.walk_core.runner.overrides import apply_overrides
    from rwalk.walk_core.sweep.jobs import SweepJob, node_table, run_job

    logging.getLogger("rwalk").setLevel(logging.WARNING)  # the jobs' own log lines, as a sweep keeps them quiet
    table = node_table()
    api, ui = load_workflow((ROOT / "workflows" / "exact_mixture.json").read_text(), table)
    prompt = apply_overrides(api, [t for t in TRIVIAL if t != "--set"], table)
    job = SweepJob("trivial", 0, (), None, prompt, None)
    run_job(job)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        assert run_job(job).status == "done"
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ray_per_job(count: int, folder: Path) -> dict:
    """``count`` trivial jobs through a local Ray instance (2 CPUs) with cli.py's sweep code, timed in parts."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rwalk_cli", ROOT / "cli.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    from rwalk.walk_core.sweep import driver
    from rwalk.walk_core.sweep.executors import ray_executor

    parts = {}
    run_sweep, run = driver.run_sweep, ray_executor.RayExecutor.run

    def timed_sweep(plan, executor, *args, **kw):  # everything before this is planning (and loading the pack)
        parts["planned_cpu"], parts["planned_wall"] = time.process_time(), time.perf_counter()
        return run_sweep(plan, executor, *args, **kw)

    def timed_run(self, jobs, on_result):
        with ray_executor.ray_session(ray_executor.import_ray(), self.settings) as where:
            parts["ray_started_wall"], parts["ray_started_cpu"] = time.perf_counter(), time.process_time()
            parts["rss_before_mb"] = rss_mb()
            arrivals = parts.setdefault("arrivals", [])

            def noted(result):
                arrivals.append(time.perf_counter())
                on_result(result)

            run(self, jobs, noted)  # the session is open: run() uses it as it is
            parts["ran_wall"], parts["ran_cpu"] = time.perf_counter(), time.process_time()
            parts["rss_after_mb"] = rss_mb()

    driver.run_sweep, ray_executor.RayExecutor.run = timed_sweep, timed_run
    try:
        cpu0, wall0, before = time.process_time(), time.perf_counter(), load()
        code = cli.main(["sweep", str(ROOT / "workflows" / "exact_mixture.json"), *TRIVIAL, "--seeds",
                         f"0-{count - 1}", "--executor", "ray", "--workers", "2", "--output-dir",
                         str(folder / "trivial"), "-q"])
    finally:
        driver.run_sweep, ray_executor.RayExecutor.run = run_sweep, run
    if code != 0:
        raise RuntimeError(f"the trivial Ray sweep failed (exit {code})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    entries = [json.loads(line) for line in (folder / "trivial" / "sweep.jsonl").read_text().splitlines()]
    run_wall = parts["ran_wall"] - parts["ray_started_wall"]
    return {"jobs": count, "load": f"{before} -> {load()}",
            "planning_ms": 1000 * (parts["planned_cpu"] - cpu0) / count,
            "planning_wall_s": parts["planned_wall"] - wall0,
            "start_s": parts["ray_started_wall"] - parts["planned_wall"],
            "wall_ms": 1000 * run_wall / count,
            # once both workers have given a result (each has loaded torch and the pack): the steady state
            "steady_ms": 1000 * (parts["arrivals"][-1] - parts["arrivals"][1]) / (count - 2),
            "driver_cpu_ms": 1000 * (parts["ran_cpu"] - parts["ray_started_cpu"]) / count,
            # the job's own time as its worker measured it (run_job's seconds), beside the same load as the tasks
            "worker_job_ms": 1000 * statistics.mean(e["seconds"] for e in entries),
            "rss_before_mb": parts["rss_before_mb"], "rss_after_mb": parts["rss_after_mb"], "rss_peak_mb": peak_mb}


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def report(args, modes: Dict[str, dict], trivial: dict, job_s: float) -> str:
    seq = modes["sequential"]["wall"]
    overhead_ms = 2 * trivial["steady_ms"] - trivial["worker_job_ms"]  # 2 slots busy steady_ms per job, less the job
    growth_kb = 1024 * (trivial["rss_after_mb"] - trivial["rss_before_mb"]) / trivial["jobs"]
    lines = [
        "# Sweep throughput and Ray's cost per job",
        "",
        f"Written by `{args.command}` on {os.cpu_count()} cores. Part 1: {args.jobs} jobs of "
        f"workflows/default.json (the patch walk) at {args.size} px, each mode a fresh `cli.py sweep` process. "
        f"Part 2: {trivial['jobs']} jobs of exact_mixture.json at 8 px, 1 step, through a local Ray instance with "
        "2 CPUs. Load average before -> after each part is listed: other work on the machine slows whichever "
        "mode it overlaps.",
        "",
        "| mode | torch threads per job | wall s | jobs/s | speed-up over sequential | the same bytes as | load average |",
        "|---|---|---|---|---|---|---|",
    ]
    threads = {"sequential": f"{os.cpu_count()} (all cores)", "workers 2": f"{max(1, (os.cpu_count() or 1) // 2)}",
               "ray 2 CPUs": "1"}
    for name, r in modes.items():
        lines.append(f"| {name} | {threads[name]} | {r['wall']:.1f} | {args.jobs / r['wall']:.2f} | "
                     f"{seq / r['wall']:.2f}x | {', '.join(r['same_as']) or 'none'} | {r['load']} |")
    lines += [
        "",
        f"Goal: `--workers 2` >= {GOAL_WORKERS}x sequential on 2 cores: "
        f"{'met' if seq / modes['workers 2']['wall'] >= GOAL_WORKERS else 'not met'} "
        f"({seq / modes['workers 2']['wall']:.2f}x). Ray's time includes starting and stopping its local instance. "
        "A picture can depend on the torch thread count its job ran with (the patch walk's reductions are split "
        "across threads above about 100 px); modes with equal threads per job must give the same bytes.",
        "",
        "| Ray, trivial jobs | value |",
        "|---|---|",
        f"| jobs | {trivial['jobs']} (load average {trivial['load']}) |",
        f"| one job: in this process (median) / inside the Ray workers (mean) | {1000 * job_s:.1f} / "
        f"{trivial['worker_job_ms']:.1f} ms |",
        f"| wall per job, 2 CPUs: all jobs / once both workers are warm | {trivial['wall_ms']:.1f} / "
        f"{trivial['steady_ms']:.1f} ms |",
        f"| overhead per task (2 x warm wall per job - the job inside the worker) | {overhead_ms:.1f} ms "
        f"(goal <= {GOAL_OVERHEAD_MS:.0f}: {'met' if overhead_ms <= GOAL_OVERHEAD_MS else 'not met'}) |",
        "| driver CPU per job while running (submit, fetch, write picture and manifest) | "
        f"{trivial['driver_cpu_ms']:.1f} ms |",
        f"| driver CPU per job planning (build and validate its graph) | {trivial['planning_ms']:.1f} ms |",
        f"| starting the local Ray instance | {trivial['start_s']:.1f} s |",
        f"| driver memory (resident) after planning -> after running all jobs | {trivial['rss_before_mb']:.0f} -> "
        f"{trivial['rss_after_mb']:.0f} MB ({growth_kb:.0f} KB per job; peak {trivial['rss_peak_mb']:.0f} MB, torch "
        "and the pack included) |",
        "",
    ]
    per_job = trivial["driver_cpu_ms"] + trivial["planning_ms"]
    lines.append(f"On paper, a 100-GPU cluster: the driver spends about {per_job:.0f} ms of CPU per job, so it keeps "
                 f"up with {1000 / per_job:.0f} jobs/s; 100 GPUs each finishing a 5 s job ask for 20 jobs/s, "
                 f"{20 * per_job / 10:.0f} % of one driver core.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=32, help="jobs of the throughput sweep (default 32)")
    parser.add_argument("--size", type=int, default=128, help="the walk's width and height in px (default 128)")
    parser.add_argument("--trivial", type=int, default=1000, help="trivial jobs through Ray (default 1000)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the report (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    for name in ("jobs", "size", "trivial"):
        if getattr(args, name) < 2:
            parser.error(f"--{name}={getattr(args, name)} is not allowed; expected >= 2")
    args.command = ".venv/bin/python bench/sweep_throughput.py" + "".join(
        f" --{n} {getattr(args, n)}" for n, d in (("jobs", 32), ("size", 128), ("trivial", 1000))
        if getattr(args, n) != d)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    torch.set_num_threads(1)  # as a Ray task with 1 CPU runs the job
    from rwalk.walk_core.atomic_files import write_text_replace

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as temp:
        modes = throughput(args.size, args.jobs, Path(temp))
        job_s = trivial_job_seconds()
        trivial = ray_per_job(args.trivial, Path(temp))
    text = report(args, modes, trivial, job_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_replace(args.out, text)
    print(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
