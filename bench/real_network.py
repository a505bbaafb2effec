"""Real-network benchmark (issue 31 §2): few-step walks on a trained network, scored by a Fréchet distance in deep
features against a converged many-step walk of the same network. Written to docs/bench/real_network.md.

    .venv/bin/python bench/real_network.py            # trains once (cached), then every walk x schedule x NFE
    .venv/bin/python bench/real_network.py --quick    # 64 samples per run (a smoke run)

The network: the pack's own EDM U-Net (models/), trained by a fixed recipe (:data:`RECIPE`: a fixed number of
steps) on 32 pictures of the default reference generator (the painting) at 32 px, minutes on the CPU. It is cached as
safetensors under bench/_out/real_network/, named by a hash of the recipe, and reused while the recipe is the
same. The converged reference: the pack's ``heun`` walk with :data:`TEACHER_STEPS` Karras levels (about 2 x that
many denoiser calls), drawn twice from far-apart seeds (sets A and B). The seed-to-seed spread is FD(B, A): what
two converged sets of the same size score against each other, the floor no few-step walk can go below.

Each run: ``--samples`` pictures from the noise seeds 2_000_000 + i (apart from both reference sets), a walk or peer
sampler, a schedule and an NFE budget (the most levels whose denoiser calls fit it). Its score is FD(run, A): the
Fréchet distance between Gaussians fitted to VGG-19 relu4_1 features (global mean over its 4 x 4 positions, 512-D) of
the 32 px pictures, with the pretrained AdaIN encoder (bench/vgg_setup.py); without those weights the
same network with fixed random weights is used and the report says so. The peers are k-diffusion's samplers
(bench/requirements.txt) and, when $WALK_COMFYUI names a ComfyUI checkout, ComfyUI's (bench/peers.py).

Goals (issue 31 §4): at NFE 5 the pack's best <= 0.7 x the best peer's FD; at NFE 10 the pack's best within 1.1 x
the converged reference's own seed-to-seed spread.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "_out" / "real_network"
DOC = ROOT / "docs" / "bench" / "real_network.md"
log = logging.getLogger("bench.real_network")

REFERENCE = "painting"
SIZE = 32
RENDER_SIZE = 128
TRAIN_SEEDS = tuple(range(0, 128, 4))  # 32 pictures of one palette (painting palette = seed % 4)
# a fixed number of steps (not a time budget), so the model is the same on any machine: a short run (about 10
# minutes on 2 quiet cores), a real but young network -- what matters here is that every walk meets the same one
RECIPE = dict(arch=dict(width=32, mults=(1, 2, 2), blocks=2), batch_size=16, lr=2e-3, steps=600, seed=0,
              reference=REFERENCE, size=SIZE, seeds=TRAIN_SEEDS)
TEACHER_STEPS = 48
# the walks' own step noise: seeds far from every initial noise's, below 2**32 (torch's CPU generator keeps a seed's low 32 bits)
SEED_A, SEED_B, SEED_RUN, NOISE_STREAM = 0, 1_000_000, 2_000_000, 3_000_000_000
FEATURE_LAYER = "relu4_1"
PACK_WALKS = ("euler", "heun", "adams", "er_sde", "edm")
# the peers run: the strongest few-step ones of each source (bench/BENCHMARKS' exact-target rankings), plus plain Euler
PEERS = ("kd:euler", "kd:heun", "kd:lms", "kd:dpmpp_2m", "kd:dpmpp_2m_sde", "kd:dpmpp_3m_sde", "comfy:ipndm",
         "comfy:ipndm_v", "comfy:deis", "comfy:res_multistep", "comfy:gradient_estimation")
SCHEDULES = ("karras", "exponential")
NFES = (5, 10)
GOAL_NFE5, GOAL_NFE10 = 0.7, 1.1


def recipe_key() -> str:
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:10]


def pictures(seeds):
    """[N, 3, SIZE, SIZE] in [-1, 1]: the generator drawn at RENDER_SIZE, scaled down antialiased."""
    import torch
    import torch.nn.functional as F

    from rwalk.walk_core.references import reference_image

    drawn = torch.stack([reference_image(REFERENCE, RENDER_SIZE, RENDER_SIZE, s) * 2 - 1 for s in seeds])
    return F.interpolate(drawn, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)


def trained_model(threads: int) -> Path:
    """The recipe's model file, trained now if no cached one matches the recipe."""
    import torch

    from rwalk.models import TrainConfig, UNetConfig, from_tensors, train

    path = OUT / f"own_{REFERENCE}_{SIZE}px_{recipe_key()}.safetensors"
    if path.is_file():
        log.info("model: cached %s", path.name)
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    data = from_tensors(pictures(TRAIN_SEEDS), source=f"{REFERENCE} seeds 0..124 step 4 at {SIZE} px")
    config = TrainConfig(size=SIZE, steps=RECIPE["steps"], minutes=0, batch_size=RECIPE["batch_size"], lr=RECIPE["lr"],
                         crops="native", seed=RECIPE["seed"], device="cpu", sample_every=0)
    log.info("model: training %s for %d steps", path.name, RECIPE["steps"])
    return train(data, path, config, UNetConfig(**RECIPE["arch"]), resume=False).path


class Features:
    """relu4_1 global-mean features of 32 px pictures in [-1, 1] (pretrained VGG-19 when present)."""

    def __init__(self):
        from rwalk.bench.deep_features import WEIGHTS_PATH, DeepEncoder, default_encoder

        self.pretrained = WEIGHTS_PATH.is_file()
        self.encoder = default_encoder() if self.pretrained else DeepEncoder.random(0)

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        pics = ((x.float() + 1) / 2).clamp(0, 1)
        feats = [self.encoder.features(chunk, [FEATURE_LAYER])[FEATURE_LAYER].mean(dim=(2, 3))
                 for chunk in pics.split(64)]
        return torch.cat(feats).double()


def run_walk(sampler, denoiser, sigmas, n: int, seed: int, batch: int = 64):
    """``n`` samples of ``sampler`` from the noise of seeds seed + i; (samples, denoiser calls)."""
    import torch

    from rwalk.bench.accuracy import initial_noise
    from rwalk.bench.samplers import CallCounter

    outs, calls = [], 0
    for start in range(0, n, batch):
        m = min(batch, n - start)
        x = initial_noise(m, (3, SIZE, SIZE), seed + start, float(sigmas[0]))
        model = CallCounter(denoiser)
        with torch.no_grad():
            outs.append(sampler.run(model, x, sigmas, seed + start + NOISE_STREAM))
        calls = max(calls, model.calls)
    return torch.cat(outs), calls


def reference_sets(denoiser, n: int, features: Features):
    """Features of the converged sets A and B (cached beside the model per size and teacher)."""
    import torch
    from safetensors.torch import load_file, save_file

    from rwalk.bench.samplers import pack_sampler
    from rwalk.models.target import SIGMA_MAX, SIGMA_MIN
    from rwalk.walk_core.schedules import make_sigmas

    path = OUT / f"reference_{recipe_key()}_{n}_{TEACHER_STEPS}_{'vgg' if features.pretrained else 'random'}.safetensors"
    if path.is_file():
        cached = load_file(str(path))
        return cached["a"], cached["b"], cached["pictures"]
    sigmas = make_sigmas("karras", TEACHER_STEPS, SIGMA_MIN, SIGMA_MAX)
    teacher = pack_sampler("heun", guard=0.0)  # plain second-order Heun: nothing to guard at 2 x 48 evaluations
    start = time.perf_counter()
    a, _ = run_walk(teacher, denoiser, sigmas, n, SEED_A)
    b, _ = run_walk(teacher, denoiser, sigmas, n, SEED_B)
    log.info("reference sets: 2 x %d samples in %.0f s", n, time.perf_counter() - start)
    fa, fb = features(a), features(b)
    from rwalk.walk_core.atomic_files import write_replace

    write_replace(path, lambda temp: save_file({"a": fa, "b": fb, "pictures": a[:8].float().contiguous()}, str(temp)))
    return fa, fb, a[:8]


def samplers(peer_sources):
    """The pack's walks and the loaded peers, name -> Sampler."""
    from rwalk.bench.peers import load_peers
    from rwalk.bench.samplers import pack_sampler

    found = {name: pack_sampler(name) for name in PACK_WALKS}
    peers = load_peers(peer_sources).only([p for p in PEERS if p.split(":")[0] in peer_sources])
    found.update(peers.samplers)
    return found, peers


def measure(args) -> dict:
    import torch

    from rwalk.bench.deep_features import frechet_distance
    from rwalk.models import load_model, model_target
    from rwalk.models.target import SIGMA_MAX, SIGMA_MIN
    from rwalk.walk_core.schedules import make_sigmas

    torch.set_num_threads(args.threads)
    model_path = trained_model(args.threads)
    target = model_target(load_model(model_path), SIZE)
    features = Features()
    fa, fb, ref_pictures = reference_sets(target.denoiser, args.samples, features)
    spread = frechet_distance(fb, fa)
    log.info("seed-to-seed spread FD(B, A) = %.3f", spread)
    found, peers = samplers(args.peers)
    rows = []
    strips = {"converged (heun, %d levels)" % TEACHER_STEPS: ref_pictures}
    for nfe in args.nfe:
        for name, sampler in found.items():
            for schedule in SCHEDULES:
                steps = sampler.steps_for(nfe)
                sigmas = make_sigmas(schedule, steps, SIGMA_MIN, SIGMA_MAX)
                start = time.perf_counter()
                try:
                    out, calls = run_walk(sampler, target.denoiser, sigmas, args.samples, SEED_RUN)
                    finite = bool(torch.isfinite(out).all())
                    fd = frechet_distance(features(out.clamp(-1.5, 1.5)), fa) if finite else math.inf
                except Exception as err:  # noqa: BLE001 -- one sampler's failure must not stop the benchmark
                    log.warning("%s %s NFE %d failed: %s", name, schedule, nfe, err)
                    out, calls, fd = None, 0, math.inf
                row = dict(sampler=name, group=sampler.group, schedule=schedule, nfe=nfe, steps=steps, calls=calls,
                           fd=fd, seconds=time.perf_counter() - start)
                rows.append(row)
                log.info("NFE %d %-22s %-11s FD %.3f (%d calls, %.0f s)", nfe, name, schedule, fd, calls,
                         row["seconds"])
                if out is not None and nfe == min(args.nfe) and schedule == "karras":
                    strips[f"{name} NFE {nfe}"] = out[:8]
    return dict(rows=rows, spread=spread, pretrained=features.pretrained, model=model_path.name,
                peers_unavailable=peers.unavailable, strips=strips, samples=args.samples)


def best(rows, nfe, pack: bool):
    pick = [r for r in rows if r["nfe"] == nfe and (r["group"] == "pack") == pack and math.isfinite(r["fd"])]
    return min(pick, key=lambda r: r["fd"]) if pick else None


def save_strip(strips: dict, path: Path) -> Path:
    """One row of 8 samples per sampler (2x nearest upscale), labelled in the report's order."""
    import torch
    from PIL import Image

    from rwalk.walk_core.atomic_files import write_replace

    rows = [((x.float().clamp(-1, 1) + 1) / 2) for x in strips.values()]
    grid = torch.cat([torch.cat(list(r), dim=-1) for r in rows], dim=-2)
    grid = grid.repeat_interleave(2, -1).repeat_interleave(2, -2)
    image = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_replace(path, lambda temp: image.save(temp, format="PNG"))
    return path


def render(result: dict, command: str, figure: str) -> str:
    from rwalk.bench.report import machine_info

    rows, spread = result["rows"], result["spread"]
    nfes = sorted({r["nfe"] for r in rows})
    lines = ["# Real-network benchmark (issue 31 §2)", "",
             f"Generated by `{command}`. Machine: {', '.join(f'{k} {v}' for k, v in machine_info().items())}.", "",
             "A few-step walk on a trained network against a converged many-step walk of the same network: the pack's "
             f"own EDM U-Net ({result['model']}, recipe in bench/real_network.py) trained on the painting generator at "
             f"{SIZE} px; {result['samples']} samples per run; FD = Fréchet distance of VGG-19 {FEATURE_LAYER} mean "
             f"features ({'pretrained AdaIN encoder' if result['pretrained'] else 'RANDOM weights: the pretrained ones were absent'})"
             " against converged set A. The spread is FD(B, A), two converged sets from far-apart seeds.", "",
             "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    for nfe, goal in ((5, GOAL_NFE5), (10, GOAL_NFE10)):
        if nfe not in nfes:
            continue
        ours, peer = best(rows, nfe, True), best(rows, nfe, False)
        if nfe == 5 and ours and peer:
            ratio = ours["fd"] / peer["fd"]
            lines.append(f"| NFE 5: pack's best ≤ {goal} × best peer's FD | {ours['sampler']} ({ours['schedule']}) "
                         f"{ours['fd']:.3f} vs {peer['sampler']} ({peer['schedule']}) {peer['fd']:.3f}: {ratio:.2f}× | "
                         f"{'yes' if ratio <= goal else 'no'} |")
        if nfe == 10 and ours:
            ratio = ours["fd"] / spread
            lines.append(f"| NFE 10: pack's best ≤ {goal} × the seed-to-seed spread | {ours['sampler']} "
                         f"({ours['schedule']}) {ours['fd']:.3f} vs spread {spread:.3f}: {ratio:.2f}× | "
                         f"{'yes' if ratio <= goal else 'no'} |")
    lines += ["", "## Every run", "", "FD against converged set A (lower is better); the spread FD(B, A) = "
              f"{spread:.3f}.", "", "| sampler | schedule | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
              "|---|---|" + "---|" * len(nfes)]
    keys = list(dict.fromkeys((r["sampler"], r["schedule"]) for r in rows))
    for sampler, schedule in keys:
        cells = []
        for n in nfes:
            r = next((r for r in rows if (r["sampler"], r["schedule"], r["nfe"]) == (sampler, schedule, n)), None)
            cells.append("—" if r is None else ("diverged" if not math.isfinite(r["fd"]) else f"{r['fd']:.3f}"))
        lines.append(f"| {sampler} | {schedule} | " + " | ".join(cells) + " |")
    if result["peers_unavailable"]:
        lines += ["", "Peers not run here: " + "; ".join(f"{k}: {v}" for k, v in result["peers_unavailable"].items())]
    lines += ["", f"![samples]({figure})", "",
              "Rows of the figure, top to bottom: " + "; ".join(result["strips"]) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 samples (a smoke run)")
    parser.add_argument("--samples", type=int, default=256, help="samples per run and per reference set")
    parser.add_argument("--nfe", type=int, nargs="+", default=list(NFES), help="NFE budgets")
    parser.add_argument("--peers", nargs="*", default=["kd", "comfy"], help="peer sources (kd, comfy)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the report instead of writing docs/")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples = 64
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    register_pack()
    result = measure(args)
    command = ".venv/bin/python bench/real_network.py" + (" --quick" if args.quick else "")
    figure = save_strip(result["strips"], DOC.parent / "real_network.png")
    text = render(result, command, figure.name)
    if args.no_write:
        sys.stdout.write(text)
        return 0
    from rwalk.walk_core.atomic_files import write_replace

    write_replace(DOC, lambda temp: Path(temp).write_text(text, encoding="utf-8"))
    log.info("wrote %s", DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
