"""The GPU figures (issue 6 §4 and the weight-free targets): walk overhead at 4x16x128x128 on CUDA against a
bare Euler loop (the pack's walks and, when installed, k-diffusion's samplers side by side), and the patch
target's walk time, written as JSON and markdown to --out.

    .venv/bin/python bench/gpu.py --out DIR           # on a machine with a CUDA GPU; a few minutes
    WALK_NOISE_PREFETCH=0 .venv/bin/python bench/gpu.py --out DIR --tag off --no-patch --no-peers   # noise prefetch off

The noise settings (prefetch, background threads) are read once per process, so each setting is its own run;
``--tag`` names the files (gpu_TAG.json / gpu_TAG.md). ``--busy-ms 5`` times the walks around a denoiser that
keeps the device busy about 5 ms per call (what a real network hides). ``--device cpu --shape 1,3,16,16`` is a
quick smoke run.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from patch import walk_request  # bench/patch.py: the patch target's recommended walk
from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

log = logging.getLogger("bench.gpu")


def _shape(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected four positive integers B,C,H,W")
    return shape


def busy_denoiser(shape: tuple, device: str, ms: float):
    """A denoiser that keeps the device busy for about ``ms`` per call and returns what the trivial one does plus a
    small bounded term: a stand-in for a real network, to see which of a walk's costs the network's time hides
    (the noise, drawn on the CPU while the device computes). The work is a few large matrix products ([B*C, H*W]
    times a fixed [H*W, H*W] matrix, calibrated here), so the device is busy while the host is free: a deep stack
    of small layers keeps the host busy launching kernels instead (on the H200, 2026-11-30, a conv stack hid the
    draws only in part: stochastic walks 1.2-1.55x the bare loop against 1.02-1.14x around these products)."""
    import torch

    from rwalk.bench.overhead import _seconds

    batch, channels, height, width = shape
    n = height * width
    weight = torch.randn(n, n, generator=torch.Generator().manual_seed(0)).div_(n ** 0.5).to(device)
    x = torch.zeros(shape, device=device)

    @torch.no_grad()
    def stack(h, layers):
        h = h.reshape(batch * channels, n)
        for _ in range(layers):
            h = torch.tanh(h @ weight)
        return h.reshape(shape)

    stack(x, 2)
    one = min(_seconds(lambda: stack(x, 4)) for _ in range(5)) / 4
    layers = max(1, round(ms / 1000 / max(one, 1e-9)))

    def denoise(x, sigma, **extra):
        return x * 0.5 + 1e-3 * stack(x, layers)

    denoise.layers = layers
    denoise.ms = 1000 * min(_seconds(lambda: denoise(x, None)) for _ in range(5))
    return denoise


def _overhead(shape: tuple, device: str, peers: bool, busy_ms: float = 0.0, peer_names=None) -> dict:
    from rwalk.bench.overhead import OverheadConfig, measure_overhead
    from rwalk.bench.peers import load_peers
    from rwalk.bench.samplers import pack_samplers
    from rwalk.walk_core.noise import noise_threads, prefetch_default

    samplers = list(pack_samplers().values())
    unavailable = {}
    if peers:
        found = load_peers(["kd"]).only(peer_names)
        samplers += list(found.samplers.values())
        unavailable = found.unavailable
    denoiser = busy_denoiser(shape, device, busy_ms) if busy_ms > 0 else None
    over = measure_overhead(OverheadConfig(shape=shape, device=device, repeats=5), samplers, denoiser)
    return {"shape": list(shape), "prefetch": prefetch_default(), "noise_threads": noise_threads(),
            "denoiser_ms": None if denoiser is None else denoiser.ms,
            "bare_ms_per_nfe": over.bare_ms_per_nfe, "bare_blocks_ms": list(over.bare_blocks_ms),
            "peers_unavailable": unavailable,
            "walks": [{"walk": w.walk, "group": w.group, "stochastic": w.stochastic, "nfe": w.nfe,
                       "ms_per_nfe": w.ms_per_nfe, "ratio": w.ratio, "repeats": w.repeats} for w in over.walks],
            "costs_cpu": [{"key": c.key, "what": c.what, "ms": c.ms} for c in over.costs]}


def _patch(device: str, sizes: tuple) -> list:
    import torch

    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ref = reference_image("painting", 256, 256, 0) * 2 - 1
    request = walk_request(5)  # the target's own walk (bench/patch.py)
    rows = []
    for size in sizes:
        target = patch_target(PatchSpec(ref[None]), size, size)
        times, outs = [], []
        for _ in range(3):
            sync()
            start = time.perf_counter()
            x = run_walk(target, request, device=device).x
            sync()
            times.append(time.perf_counter() - start)
            outs.append(x.cpu())
        cpu_x = run_walk(target, request).x if size <= 256 else None
        identical = all(torch.equal(outs[0], o) for o in outs)
        rows.append({"size": size, "seconds": sorted(times)[1], "identical_runs": identical,
                     "max_diff_vs_cpu": None if cpu_x is None else float((cpu_x - outs[0]).abs().max())})
        log.info("patch %s", rows[-1])
    return rows


def markdown(result: dict) -> str:
    """The run as markdown: the overhead table (stochastic walks marked), the CPU-side costs, the patch table."""
    from rwalk.walk_core.targets.patch import STEPS, WALK

    over = result["overhead"]
    shape = "×".join(str(d) for d in over["shape"])
    model = ("a trivial denoiser" if over.get("denoiser_ms") is None else
             f"a busy denoiser ({over['denoiser_ms']:.2f} ms per call, a stand-in for a network)")
    lines = [f"Device: {result['device_name']}, torch {result['torch']}, {model}. Noise prefetch "
             f"{'on' if over['prefetch'] else 'off'}, {over['noise_threads']} background thread(s). Bare Euler loop at "
             f"{shape}: {over['bare_ms_per_nfe']:.3f} ms per evaluation (first / last bare block "
             f"{over['bare_blocks_ms'][0]:.3f} / {over['bare_blocks_ms'][1]:.3f}).", "",
             "| sampler | group | stochastic | NFE | ms / NFE | × bare loop |", "|---|---|---|---|---|---|"]
    lines += [f"| {w['walk']} | {w['group']} | {'yes' if w['stochastic'] else ''} | {w['nfe']} | "
              f"{w['ms_per_nfe']:.3f} | {w['ratio']:.2f} |" for w in over["walks"]]
    lines += ["", "| piece (on this machine's CPU, whole batch) | ms |", "|---|---|"]
    lines += [f"| {c['what']} | {c['ms']:.3f} |" for c in over["costs_cpu"]]
    if result.get("patch"):
        lines += ["", f"| patch target output | seconds ({WALK}, {STEPS} levels) | runs identical | max diff vs CPU |",
                  "|---|---|---|---|"]
        lines += [f"| {p['size']}×{p['size']} | {p['seconds']:.2f} | {'yes' if p['identical_runs'] else 'NO'} | "
                  f"{'not run' if p['max_diff_vs_cpu'] is None else format(p['max_diff_vs_cpu'], '.3g')} |"
                  for p in result["patch"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_TAG.json and gpu_TAG.md")
    parser.add_argument("--tag", default="main", help="names this run's files (default: main)")
    parser.add_argument("--device", default="cuda", help="torch device of the walk state (default: cuda)")
    parser.add_argument("--shape", type=_shape, default=(4, 16, 128, 128), help="B,C,H,W of the overhead walks")
    parser.add_argument("--no-peers", action="store_true", help="only the pack's walks (no k-diffusion)")
    parser.add_argument("--peers", default="", help="only these k-diffusion samplers, comma-separated (kd:euler,...)")
    parser.add_argument("--no-patch", action="store_true", help="skip the patch target's timing")
    parser.add_argument("--busy-ms", type=float, default=0.0,
                        help="time the walks around a denoiser busy about this many ms per call (default 0: trivial);"
                             " it holds an (H*W)^2 float32 matrix: 1 GiB at 128x128")
    parser.add_argument("--patch-sizes", default="128,256,512", help="output sizes of the patch target timing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device on this machine")
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    started = time.perf_counter()
    result = {"device_name": name, "torch": torch.__version__, "tag": args.tag,
              "overhead": _overhead(args.shape, args.device, not args.no_peers, args.busy_ms,
                                  [n for n in args.peers.split(",") if n] or None)}
    if not args.no_patch:
        result["patch"] = _patch(args.device, tuple(int(v) for v in args.patch_sizes.split(",")))
    result["seconds"] = time.perf_counter() - started
    (args.out / f"gpu_{args.tag}.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.out / f"gpu_{args.tag}.md").write_text(text)
    log.info("wrote %s in %.0f s\n%s", args.out / f"gpu_{args.tag}.md", result["seconds"], text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
