"""Per-step wall time of a noisy loop with ItemNoise prefetch off vs on (not a test; prints a table).

    .venv/bin/python scripts/noise_prefetch_timing.py [--threads 1] [--steps 100] [--blocks 15] [--ops 0 10 40]

Loop: ``y = x; repeat ops: y = y * 0.999`` (a fake denoiser of ``ops`` elementwise ops), then
``x = y*0.5 + noise.randn_like(x)*0.1`` on a 4x4x128x128 float32 batch. ``bare`` is the same loop
with ``torch.zeros_like`` instead of the per-item draw (what the noise would cost if it were free).
"""
import argparse
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "rwalk" not in sys.modules:  # load the pack as ``rwalk`` whatever its folder is called
    pack = types.ModuleType("rwalk")
    pack.__path__ = [str(ROOT)]
    sys.modules["rwalk"] = pack

import torch  # noqa: E402

from rwalk.walk_core import noise as noise_module  # noqa: E402
from rwalk.walk_core.noise import ItemNoise  # noqa: E402


def block_ms(mode: str, ops: int, shape, steps: int, seed: int) -> float:
    noise = ItemNoise.from_seed(seed, shape[0], prefetch=(mode == "on"))
    x = noise.randn(shape)
    t0 = time.perf_counter()
    for _ in range(steps):
        y = x
        for _ in range(ops):
            y = y * 0.999
        eps = torch.zeros_like(x) if mode == "bare" else noise.randn_like(x)
        x = y * 0.5 + eps * 0.1
    t = (time.perf_counter() - t0) / steps * 1e3
    noise.close()
    return t


def per_step_ms(ops: int, shape, steps: int, blocks: int) -> dict:
    """Median over blocks; the three modes take turns in every block (so drifting load hits all alike)."""
    modes = ["bare", "off", "on"]
    times = {m: [] for m in modes}
    for block in range(blocks + 1):  # block 0 warms up
        for m in modes[block % 3:] + modes[:block % 3]:
            t = block_ms(m, ops, shape, steps, block)
            if block:
                times[m].append(t)
    return {m: (statistics.median(v), min(v)) for m, v in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--blocks", type=int, default=15)
    p.add_argument("--ops", type=int, nargs="+", default=[0, 10, 40])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    shape = (4, 4, 128, 128)
    executor, workers = noise_module._shared_executor()
    worker = executor.submit(torch.get_num_threads).result()
    print(f"torch {torch.__version__}, main thread torch threads {torch.get_num_threads()}, "
          f"{workers} noise worker thread(s) (torch threads there: {worker}); shape {shape}; {a.steps} steps x {a.blocks} blocks, median")
    if not noise_module._cpu_has_room():
        print("note: torch's threads use every core, so a CPU walk draws in line: 'prefetch on' = 'off' here")
    print("ms/step as median (min) over blocks")
    print("| fake denoiser ops | bare (no noise) | prefetch off | prefetch on | off / bare | on / bare |")
    print("|---|---|---|---|---|---|")
    for ops in a.ops:
        r = per_step_ms(ops, shape, a.steps, a.blocks)
        (b, bm), (f, fm), (o, om) = r["bare"], r["off"], r["on"]
        print(f"| {ops} | {b:.3f} ({bm:.3f}) | {f:.3f} ({fm:.3f}) | {o:.3f} ({om:.3f}) | {f / b:.2f}x | {o / b:.2f}x |")


if __name__ == "__main__":
    main()
