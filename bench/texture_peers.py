"""Single-image generation peers (issue 28 §2): GPNN and image quilting on the pack's procedural references.

    .venv/bin/python bench/texture_peers.py [--size 256] [--seeds 0,1,2,3] [--peers gpnn,quilt]
                                             [--references painting,bricks,...] [--out bench/_out/peers]

Writes one PNG per (peer, reference, seed), ``<peer>_<reference>_s<seed>.png``, one strip per (peer,
reference) with the reference first, ``<peer>_<reference>_strip.png``, and ``timings.json`` (wall and CPU
seconds per picture, with ``--threads`` torch threads, default 2). The peers themselves live in
``peer_gpnn.py`` (Granot et al., CVPR 2022) and ``peer_quilting.py`` (Efros & Freeman, SIGGRAPH 2001).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ("painting", "bricks", "foliage", "stained_glass", "marble")
log = logging.getLogger("bench.texture_peers")


def peers():
    """name -> function(reference, out_h, out_w, seed) of the two peers."""
    from rwalk.bench.peer_gpnn import gpnn
    from rwalk.bench.peer_quilting import quilt

    return {"gpnn": gpnn, "quilt": quilt}


def save_png(img: torch.Tensor, path: Path) -> None:
    from PIL import Image

    Image.fromarray((img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--peers", default="gpnn,quilt")
    parser.add_argument("--references", default=",".join(REFERENCES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "_out" / "peers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import register_pack  # bench/run.py: the pack as ``rwalk``

    register_pack()
    from rwalk.walk_core.references import reference_image

    torch.set_num_threads(args.threads)
    table = peers()
    names = [n for n in args.peers.split(",") if n]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"--peers: unknown {unknown}; valid: {sorted(table)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    timings_path = args.out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    for ref_name in [r for r in args.references.split(",") if r]:
        ref = reference_image(ref_name, args.size, args.size, 0)
        for name in names:
            outs, rows = [ref], []
            for seed in seeds:
                wall, cpu = time.perf_counter(), time.process_time()
                out = table[name](ref, args.size, args.size, seed)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                save_png(out, args.out / f"{name}_{ref_name}_s{seed}.png")
                outs.append(out)
                rows.append({"seed": seed, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)})
                log.info("%s %s seed %d: %.1f s wall, %.1f s cpu", name, ref_name, seed, wall, cpu)
            save_png(torch.cat(outs, 2), args.out / f"{name}_{ref_name}_strip.png")
            timings[f"{name}/{ref_name}/{args.size}"] = {"threads": args.threads, "runs": rows}
            timings_path.write_text(json.dumps(timings, indent=1))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
