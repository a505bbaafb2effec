"""Learned schedules (issue 31 §1): how long learning takes for an own model at NFE 8, and how a learned schedule
compares with the best fixed one on the exact targets at NFE 5 and 10.

    .venv/bin/python bench/learned_schedules.py timing              # own model, NFE 8, 2 threads: the <= 5 min goal
    .venv/bin/python bench/learned_schedules.py compare             # ring + image, NFE 5 and 10, 8,000 samples, 6 seeds
    .venv/bin/python bench/learned_schedules.py compare --samples 2000 --seeds 2   # a quicker look

``timing``: an EDM U-Net of the own-models benchmark's architecture (bench/own_models.py ARCH) at 64 x 64 px. Its
weights are random unless ``--model`` names a trained file: the time is set by the evaluations (the search's
budget), which cost the same whatever the weights. 4 training + 4 held-out samples, a 24-level teacher, 30 search
walks. Wall time and CPU time are both printed: on a shared machine the CPU time over the threads is the better
estimate of the wall time on idle cores.

``compare``: adams with the schedule learned on 512 training samples against adams on every fixed schedule, scored
and ComfyUI's deterministic samplers (bench/peers.py; $WALK_COMFYUI or --comfyui) on the Karras schedule, scored
with the accuracy benchmark's metrics (bench/scoring.py) on ``--samples`` items from ``--seeds`` far-apart initial
noises (seed 100,000,000 + j * 10,000,000 + i), each metric given as its excess over the floor (independent exact
sample sets of the same size).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk``

log = logging.getLogger("bench.learned_schedules")
SEED_STRIDE = 10_000_000  # initial-noise seeds of the runs: far apart, below 2**32 (torch keeps 32 bits)


def timing(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    register_pack()
    from own_models import ARCH, SIZE  # bench/own_models.py
    from rwalk.models.target import model_target
    from rwalk.models.unet import EDMDenoiser, UNetConfig
    from rwalk.walk_core.schedule_learning import LearnSpec, learn_schedule

    if args.model:
        from rwalk.models.checkpoint import load_model

        target = model_target(load_model(args.model), size=SIZE, name=Path(args.model).stem)
    else:
        torch.manual_seed(0)
        target = model_target(EDMDenoiser(UNetConfig(**ARCH)).eval(), size=SIZE, name="untrained own model")
    spec = LearnSpec(walk="adams", nfe=8, teacher_steps=args.teacher_steps, train_samples=args.samples,
                     val_samples=args.samples, evaluations=args.evaluations, minutes=args.minutes, chunk=16)
    start, cpu = time.perf_counter(), time.process_time()
    result = learn_schedule(target, spec)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on {os.cpu_count()} cores")
    print(f"own model {SIZE}x{SIZE} ({'random weights' if not args.model else args.model}), adams NFE 8, "
          f"{args.threads} threads: {seconds:.0f} s wall ({seconds / 60:.1f} min), {cpu:.0f} CPU-s (CPU-s / threads "
          f"= {cpu / args.threads / 60:.1f} min: the wall time on {args.threads} idle cores if both stay busy), "
          f"{result.evaluations} walks of {args.samples} items, stopped by {result.stopped}; goal <= 5 min")
    print(result.summary())
    return 0


PEERS = ("dpmpp_2m", "deis", "ipndm", "ipndm_v", "uni_pc", "uni_pc_bh2", "res_multistep", "gradient_estimation",
         "heun", "dpm_2", "euler")  # deterministic samplers, the strongest at few steps among ComfyUI's


def _samplers(args):
    """name -> (run(model, x, sigmas, seed) -> x, nfe_of(levels)): the pack's adams and the ComfyUI peers found."""
    from rwalk.walk_core import WALKS
    from rwalk.bench.samplers import pack_sampler

    adams = pack_sampler("adams")
    out = {"adams": adams}
    if args.peers:
        from rwalk.bench.peers import load_peers

        loaded = load_peers(("comfy",), args.comfyui)
        for name in args.peers.split(","):
            label = f"comfy:{name.strip()}"
            if label in loaded.samplers:
                out[label] = loaded.samplers[label]
            else:
                log.warning("peer %s not loaded (%s)", label, loaded.skipped.get(label) or loaded.unavailable)
    assert WALKS["adams"]
    return out


def compare(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    register_pack()
    from rwalk.bench.accuracy import initial_noise
    from rwalk.bench.scoring import METRICS, Scorer
    from rwalk.bench.targets import image_target, ring_target
    from rwalk.walk_core import make_sigmas
    from rwalk.walk_core.schedule_learning import LearnSpec, learn_schedule
    from rwalk.walk_core.schedule_learning.learn import FIXED

    samplers = _samplers(args)
    lines = [f"samples {args.samples} per run, {args.seeds} initial noises (seeds 100,000,000 + j x {SEED_STRIDE:,}), "
             f"floors from 5 further exact sets of {args.samples}; each cell: excess over the floor, mean +- sd over "
             "the seeds (ratio metrics: |value - floor|)", ""]
    for bench_target in [t for t in (ring_target(), image_target()) if t.key in args.targets.split(",")]:
        target = bench_target.walk_target
        scorer = Scorer(bench_target, args.samples, reference_seed=1_000_000, floor_repeats=5)
        floors = ", ".join(f"{k} {scorer.floors[k].mean:.4g}" for k in scorer.keys)
        for nfe in (5, 10):
            learned = learn_schedule(target, LearnSpec(walk="adams", nfe=nfe, train_samples=args.train,
                                                       val_samples=args.train, evaluations=args.evaluations))
            runs = {}  # row -> (sampler, sigmas)
            for name in FIXED:
                runs[f"adams {name}"] = (samplers["adams"], make_sigmas(name, learned.steps, bench_target.sigma_min,
                                                                       bench_target.sigma_max))
            runs["adams learned"] = (samplers["adams"], learned.sigmas)
            for label, sampler in samplers.items():
                if label != "adams":
                    steps = sampler.steps_for(nfe)
                    runs[f"{label} karras"] = (sampler, make_sigmas("karras", steps, bench_target.sigma_min,
                                                                     bench_target.sigma_max))
            excess = {row: {k: [] for k in scorer.keys} for row in runs}
            for j in range(args.seeds):
                seed = 100_000_000 + j * SEED_STRIDE
                x = initial_noise(args.samples, bench_target.shape, seed, bench_target.sigma_max)
                for row, (sampler, sigmas) in runs.items():
                    try:
                        out = sampler.run(target.denoiser, x.clone(), sigmas.to(torch.float32), seed + 1)
                        status, why, values = scorer.evaluate(out.to(torch.float64))
                    except Exception as err:  # noqa: BLE001 -- one sampler's failure must not stop the comparison
                        log.warning("%s %s: %s", bench_target.key, row, err)
                        values = {}
                    for k in scorer.keys:
                        value, floor = values.get(k, math.nan), scorer.floors[k].mean
                        excess[row][k].append(abs(value - floor) if METRICS[k].kind == "ratio" else value - floor)
            lines.append(f"**{bench_target.key}, NFE {nfe}** ({learned.steps} levels for adams; floors: {floors}); "
                         f"learned: {learned.summary()}")
            lines.append("")
            lines.append("| sampler, schedule | " + " | ".join(METRICS[k].label for k in scorer.keys) + " |")
            lines.append("|---|" + "---|" * len(scorer.keys))
            for row in runs:
                cells = []
                for k in scorer.keys:
                    v = excess[row][k]
                    sd = statistics.stdev(v) if len(v) > 1 else 0.0
                    cells.append(f"{statistics.fmean(v):+.4f} ± {sd:.4f}")
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
            lines.append("")
            print("\n".join(lines[-len(runs) - 4:]), flush=True)
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("timing", help="learning time for an own model at NFE 8")
    t.add_argument("--model", help="a trained own model file (default: random weights, the same cost)")
    t.add_argument("--samples", type=int, default=4)
    t.add_argument("--teacher-steps", type=int, default=24)
    t.add_argument("--evaluations", type=int, default=30)
    t.add_argument("--minutes", type=float, default=0.0)
    c = commands.add_parser("compare", help="learned vs fixed schedules on the exact targets at NFE 5 and 10")
    c.add_argument("--samples", type=int, default=8000)
    c.add_argument("--seeds", type=int, default=6)
    c.add_argument("--evaluations", type=int, default=300)
    c.add_argument("--train", type=int, default=512, help="training (and held-out) samples of the learning (512)")
    c.add_argument("--targets", default="ring,image", help="exact targets, comma-separated (ring,image)")
    c.add_argument("--peers", default=",".join(PEERS), help="ComfyUI samplers to run beside (comma-separated; "
                   "'' = none); needs --comfyui or $WALK_COMFYUI")
    c.add_argument("--comfyui", default=None, help="a ComfyUI checkout for the peers (default: $WALK_COMFYUI)")
    c.add_argument("--out", help="also write the markdown tables here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    return timing(args) if args.command == "timing" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
