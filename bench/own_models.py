"""Own-models benchmark (issue 7 §4): a CPU training run on a default reference, its samples against the
weight-free issue's "novel" and "faithful" criteria, its denoising error on held-out crops next to the patch
target's, and training throughput (CPU, and the GPU when there is one). Written into docs/BENCHMARKS.md.

    .venv/bin/python bench/own_models.py            # about 13 minutes on 2 cores: 10 of them are the training
    .venv/bin/python bench/own_models.py --quick    # about 2 minutes: 1 minute of training (not the goal's run)

The training data is the reference at 128 px (seed 0), seen as random 64 px crops (a "64x64 model"); held-out
crops come from the same procedural reference made with another seed (same palette, another picture), which the
model never saw. The model is fully convolutional, so its samples are judged exactly as the weight-free issue
judges the patch target: at the reference's size (128 px) against the reference, each measure next to the same
measure between the reference's halves. (64 px pictures against a 128 px reference would not be a fair test:
real 64 px crops of the reference itself fail the Gram criterion.)
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "_out"
log = logging.getLogger("bench.own_models")

REF_SIZE = 128
SIZE = 64
HELD_OUT_SEED = 20  # same painting palette (seed % 4) and marble stone (seed % 5) as seed 0
GOAL_SIGMAS = (0.1, 0.2, 0.5, 1.0, 2.0)
WALKS = {"own model": dict(walk="adams", schedule="karras", steps=30),  # each target's recommended walk
         "patch target": dict(walk="euler_ancestral", schedule="karras", steps=30)}


def train_run(reference: str, minutes: float, device: str, threads: int):
    import torch

    from rwalk.models import TrainConfig, UNetConfig, from_references, train

    torch.set_num_threads(threads)
    data = from_references([reference], REF_SIZE, 0)
    val = from_references([reference], REF_SIZE, HELD_OUT_SEED)
    out = OUT / f"own_{reference}_{device}.safetensors"
    config = TrainConfig(size=SIZE, minutes=minutes, device=device)
    return train(data, out, config, UNetConfig(), val=val, resume=False)


def sample_rows(reference: str, model_path: Path, seeds) -> dict:
    from rwalk.models import load_model, model_target
    from rwalk.walk_core import quality
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import WalkRequest, run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    ref = reference_image(reference, REF_SIZE, REF_SIZE, 0) * 2 - 1
    rows = {}
    targets = {"own model": model_target(load_model(model_path), REF_SIZE),
               "patch target": patch_target(PatchSpec(ref[None]), REF_SIZE, REF_SIZE)}
    pictures = {name: [run_walk(t, WalkRequest(seed=s, **WALKS[name])).x[0] for s in seeds]
                for name, t in targets.items()}
    pictures["fresh picture (calibration)"] = [reference_image(reference, REF_SIZE, REF_SIZE, HELD_OUT_SEED) * 2 - 1]
    for name, outs in pictures.items():
        reports = [quality.patch_report(x, ref) for x in outs]
        passed = [quality.criteria(r) for r in reports]
        rows[name] = {**{k: statistics.mean(r[k] for r in reports) for k in reports[0]},
                      **{f"{k}_pass": sum(p[k] for p in passed) for k in passed[0]},
                      "all_pass": sum(all(p.values()) for p in passed), "n": len(reports)}
        log.info("%s: %s", name, rows[name])
    return rows


def denoising_rows(reference: str, model_path: Path) -> dict:
    import torch

    from rwalk.models import from_references, load_model
    from rwalk.models.validation import ValidationSet
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    held = ValidationSet.from_images(from_references([reference], REF_SIZE, HELD_OUT_SEED), SIZE, seed=1,
                                     held_out=True, count=32)
    model = load_model(model_path).denoiser
    ref = reference_image(reference, REF_SIZE, REF_SIZE, 0) * 2 - 1
    patch = patch_target(PatchSpec(ref[None]), SIZE, SIZE)
    with torch.no_grad():
        return {"own model": held.errors(model), "patch target": held.errors(patch.denoiser),
                "identity": held.errors(lambda x, sigma: x * 0.25 / (sigma[:, None, None, None] ** 2 + 0.25))}


def render(reference, result, samples, errors, gpu, command, minutes) -> str:
    lines = [f"## Own models (issue 7)\n",
             f"Command: `{command}` (2 torch threads). A {minutes:g}-minute CPU training run of the default U-Net "
             f"(width 32, 3 levels, 2 blocks, {sum(p.numel() for p in result.model.parameters()) / 1e6:.2f} M "
             f"parameters) on `{reference}` at {REF_SIZE} px, {SIZE} px crops, batch 16: {result.steps} steps, "
             f"{result.images} images in {result.seconds:.0f} s = **{result.images / result.seconds:.1f} images/s** "
             "on the CPU (periodic validation and sample grids included); held-out validation loss "
             f"{result.val_loss:.4f}.\n"]
    if gpu is not None:
        lines.append(f"GPU ({gpu['name']}): {gpu['images']} images in {gpu['seconds']:.0f} s = "
                     f"**{gpu['images'] / gpu['seconds']:.1f} images/s** (same settings).\n")
    else:
        lines.append("GPU: not measured (no GPU on the machine that ran this).\n")
    lines += ["### Samples against the weight-free criteria",
              f"{REF_SIZE}x{REF_SIZE} samples judged against the {REF_SIZE} px reference, as bench/patch.py judges "
              "the patch target; each measure next to the same measure between the reference's halves (novel: "
              "nearest-patch distance >= halves; faithful: colour sliced-W2 and random-feature Gram distance <= 1.5x "
              "halves); counts = samples passing. Walks: own model adams, patch target euler_ancestral (each one's "
              f"recommended), karras, 30 steps. *fresh picture*: the generator's seed-{HELD_OUT_SEED} picture, a "
              "genuinely new sample of the reference's own distribution, to calibrate the criteria.\n",
              "| target | novelty / halves | colour SW2 / halves | Gram / halves | novel | colour | Gram | all |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in samples.items():
        lines.append(f"| {name} | {r['novelty']:.3f} / {r['novelty_halves']:.3f} | {r['colour_swd']:.3f} / "
                     f"{r['colour_swd_halves']:.3f} | {r['gram']:.3f} / {r['gram_halves']:.3f} | "
                     f"{r['novel_pass']}/{r['n']} | {r['colour_pass']}/{r['n']} | {r['gram_pass']}/{r['n']} | "
                     f"{r['all_pass']}/{r['n']} |")
    lines += ["", "### Denoising error on held-out crops",
              f"Mean squared error per pixel of D(y + sigma n, sigma) against y, 32 crops of {SIZE} px from the "
              f"reference made with seed {HELD_OUT_SEED} (never trained on), fixed noise. `identity` = the best "
              "constant-free linear shrinkage c_skip y (what an untrained model gives).\n",
              "| sigma | own model | patch target | identity | own < patch |", "|---|---|---|---|---|"]
    for s in errors["own model"]:
        own, patch, ident = errors["own model"][s], errors["patch target"][s], errors["identity"][s]
        goal = ("yes" if own < patch else "**no**") if s in GOAL_SIGMAS else ""
        lines.append(f"| {s:g} | {own:.5f} | {patch:.5f} | {ident:.5f} | {goal} |")
    met = all(errors["own model"][s] < errors["patch target"][s] for s in GOAL_SIGMAS)
    own = samples["own model"]
    lines += ["", "### Goals", "| goal | result |", "|---|---|",
              f"| samples novel and faithful (every sample) | {'met' if own['all_pass'] == own['n'] else 'not met'}: "
              f"{own['all_pass']}/{own['n']} pass all three |",
              f"| held-out denoising error below the patch target's at sigma in [0.1, 2] | "
              f"{'met' if met else 'not met'} |"]
    return "\n".join(lines) + "\n"


def gpu_run(reference: str, minutes: float):
    import torch

    if not torch.cuda.is_available():
        return None
    result = train_run(reference, minutes, "cuda", 2)
    return {"name": torch.cuda.get_device_name(0), "images": result.images, "seconds": result.seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reference", default="painting")
    parser.add_argument("--minutes", type=float, help="training budget (default 10; --quick 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("rwalk.walk_core.sample").setLevel(logging.WARNING)
    register_pack()
    minutes = args.minutes or (1.0 if args.quick else 10.0)
    started = time.perf_counter()
    result = train_run(args.reference, minutes, "cpu", 2)
    samples = sample_rows(args.reference, result.path, range(4 if args.quick else 8))
    errors = denoising_rows(args.reference, result.path)
    gpu = gpu_run(args.reference, min(minutes, 2.0))
    command = ".venv/bin/python bench/own_models.py" + (" --quick" if args.quick else "") + \
        (f" --reference {args.reference}" if args.reference != "painting" else "") + \
        (f" --minutes {args.minutes:g}" if args.minutes else "")
    text = render(args.reference, result, samples, errors, gpu, command, minutes)
    text += f"\nWhole run: {time.perf_counter() - started:.0f} s.\n"
    from rwalk.bench.sections import replace_section  # noqa: PLC0415

    replace_section(args.out, "own-models", text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
