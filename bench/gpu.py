"""The GPU figures (issue 6 §4 and the weight-free targets): walk overhead at 4x16x128x128 on CUDA against a
bare Euler loop, and the patch target's walk time, written as JSON and markdown to --out.

    python bench/gpu.py --out DIR      # on a machine with a CUDA GPU; a few minutes
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    from rwalk.bench.overhead import OverheadConfig, measure_overhead
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import WalkRequest, run_walk
    from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, PatchSpec, patch_target

    if not torch.cuda.is_available():
        parser.error("no CUDA device")
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0)
    result = {"gpu": name, "torch": torch.__version__}
    over = measure_overhead(OverheadConfig(shape=(4, 16, 128, 128), device="cuda", repeats=5))
    result["bare_ms_per_nfe"] = over.bare_ms_per_nfe
    result["walks"] = [{"walk": w.walk, "nfe": w.nfe, "ms_per_nfe": w.ms_per_nfe, "ratio": w.ratio}
                       for w in over.walks]
    ref = reference_image("painting", 256, 256, 0) * 2 - 1
    patch = []
    request = WalkRequest(walk=WALK, steps=STEPS, seed=5, options={"s_noise": WALK_S_NOISE})  # the target's walk
    for size in (128, 256, 512):
        target = patch_target(PatchSpec(ref[None]), size, size)
        times, outs = [], []
        for _ in range(3):
            torch.cuda.synchronize()
            start = time.perf_counter()
            x = run_walk(target, request, device="cuda").x
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            outs.append(x.cpu())
        cpu_x = run_walk(target, request).x if size <= 256 else None
        patch.append({"size": size, "seconds": sorted(times)[1], "identical_runs": all(torch.equal(outs[0], o) for o in outs),
                      "max_diff_vs_cpu": None if cpu_x is None else float((cpu_x - outs[0]).abs().max())})
        logging.info("patch %s", patch[-1])
    result["patch"] = patch
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1))
    lines = [f"GPU: {name}, torch {torch.__version__}. Bare Euler loop at 4×16×128×128: "
             f"{over.bare_ms_per_nfe:.3f} ms per evaluation.", "", "| walk | NFE | ms / NFE | × bare loop |",
             "|---|---|---|---|"]
    lines += [f"| {w['walk']} | {w['nfe']} | {w['ms_per_nfe']:.3f} | {w['ratio']:.2f} |" for w in result["walks"]]
    lines += ["", f"| patch target output | seconds ({WALK}, {STEPS} levels) | runs identical | max diff vs CPU |",
              "|---|---|---|---|"]
    lines += [f"| {p['size']}×{p['size']} | {p['seconds']:.2f} | {p['identical_runs']} | {p['max_diff_vs_cpu']} |"
              for p in patch]
    (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
