"""Single-image generation side by side (issue 28 §4): the pack's patch target against GPNN and image quilting,
five references x four seeds, judged by the calibrated structure measures, deep-feature measures, diversity
across seeds and verbatim copying, written into docs/bench/single_image.md with a picture strip per reference.

    .venv/bin/python bench/single_image.py                 # about 15 minutes on 2 quiet cores
    .venv/bin/python bench/single_image.py --seeds 0,1 --references bricks,painting   # a quick look

Methods: ``pack`` (the patch target at its defaults, in the mode a user would pick for the reference: layout
for the scenes -- painting, stained_glass's rose window -- and texture for the stationary ones; the shipped walk),
``posterior`` (the patch target's earlier posterior denoiser, the mosaics issue 28 describes), ``gpnn``
(bench/peer_gpnn.py, layout as the pack's mode), ``quilting`` (bench/peer_quilting.py) and ``fresh`` (new
pictures of the reference's own procedural generator, seed + 1: what a genuinely new picture of the same kind scores
on every measure -- the calibration row).

Measures per picture: the structure criteria that apply to the reference (walk_core/quality_structure.py,
calibrated on fresh pictures of the references' own generators: docs/bench/structure_calibration.md), SIFID and
the mean deep Gram distance (bench/deep_features.py; needs ``bench/vgg_setup.py`` once, else n/a), the share of
16x16 patches copied near-verbatim (walk_core/quality.copy_report) and the share of 48x48 windows copied (whole
regions lifted), and the wall seconds. Per reference and method: SinGAN's diversity (the per-pixel std across
the seeds' pictures, averaged, over the reference's own std).
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from run import register_pack  # bench/run.py: the pack as ``rwalk``

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench"
PICTURES = ROOT / "bench" / "_out" / "single_image"
REFERENCES = ("painting", "bricks", "foliage", "stained_glass", "marble")
MODES = {"painting": "layout", "stained_glass": "layout"}  # the rest: texture
METHODS = ("pack", "posterior", "gpnn", "quilting", "fresh")
SIZE = 256
log = logging.getLogger("bench.single_image")


def mode_for(name: str) -> str:
    return MODES.get(name, "texture")


def generate(method: str, name: str, ref01: torch.Tensor, seed: int) -> torch.Tensor:
    """One picture [3, SIZE, SIZE] in [0, 1] by ``method`` from the reference [3, H, W] in [0, 1]."""
    if method in ("pack", "posterior"):
        from rwalk.walk_core.sample import run_walk
        from rwalk.walk_core.targets.patch import PatchSpec, patch_target

        from patch import walk_request

        mode = mode_for(name) if method == "pack" else "posterior"
        target = patch_target(PatchSpec((ref01 * 2 - 1)[None], mode=mode), SIZE, SIZE)
        return (run_walk(target, walk_request(seed)).x[0] + 1) / 2
    if method == "gpnn":
        from rwalk.bench.peer_gpnn import gpnn

        return gpnn(ref01, SIZE, SIZE, seed, layout=mode_for(name) == "layout")
    if method == "quilting":
        from rwalk.bench.peer_quilting import quilt

        return quilt(ref01, SIZE, SIZE, seed)
    if method == "fresh":
        from rwalk.walk_core.references import reference_image

        return reference_image(name, SIZE, SIZE, seed + 1)  # the reference is the generator's seed 0
    raise ValueError(f"single_image: method={method!r}; expected one of {', '.join(METHODS)}")


def window_copies(out: torch.Tensor, ref: torch.Tensor, size: int = 48) -> float:
    """Share of out's size x size windows (stride size/2) nearer to some reference window than half the typical
    distance between the reference's own left and right halves' windows: whole regions lifted verbatim."""
    from rwalk.walk_core import quality

    left, right = quality.halves(ref)
    size = min(size, *left.shape[-2:])  # small references: the largest window both halves hold
    between = quality.nearest_patch_distances(left, right, size=size, out_stride=size // 2)
    found = quality.nearest_patch_distances(out, ref, size=size, out_stride=size // 2)
    return float((found < 0.5 * float(between.median())).float().mean())


def measure(out: torch.Tensor, ref: torch.Tensor, name: str, encoder) -> dict:
    from rwalk.walk_core import quality
    from rwalk.walk_core.quality_structure import APPLIES_TO, structure_criteria, structure_report

    crit = structure_criteria(structure_report(out, ref))
    row = {f"structure_{k}": bool(v) for k, v in crit.items() if k in APPLIES_TO.get(name, crit)}
    row["structure"] = all(v for k, v in row.items())
    row["copied16"] = quality.copy_report(out * 2 - 1, ref * 2 - 1)["copied"]
    row["copied48"] = window_copies(out * 2 - 1, ref * 2 - 1)
    if encoder is not None:
        from rwalk.bench.deep_features import deep_report

        deep = deep_report(out, ref, encoder)
        row["sifid"], row["gram"] = deep["sifid"], deep["gram_mean"]
    return row


def diversity(pictures, ref: torch.Tensor) -> float:
    """SinGAN's diversity: the per-pixel std across the pictures, averaged, over the reference's own std."""
    stack = torch.stack(pictures)
    return float(stack.std(0).mean() / ref.std())


def save_png(img: torch.Tensor, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    Image.fromarray((img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(tmp)
    os.replace(tmp, path)


def strip(pictures) -> torch.Tensor:
    gap = torch.ones(3, SIZE, 4)
    parts = []
    for p in pictures:
        parts += [p, gap]
    return torch.cat(parts[:-1], dim=2)


def run(references, seeds, methods, encoder) -> dict:
    from rwalk.walk_core.references import reference_image

    results, rows_shown, firsts = {}, [], []
    for name in references:
        ref = reference_image(name, SIZE, SIZE, 0)
        results[name] = {}
        shown = [ref]
        for method in methods:
            rows, pictures = [], []
            for seed in seeds:
                start = time.perf_counter()
                out = generate(method, name, ref, seed).clamp(0, 1)
                seconds = time.perf_counter() - start
                save_png(out, PICTURES / f"{method}_{name}_s{seed}.png")
                rows.append({**measure(out, ref, name, encoder), "seconds": seconds})
                pictures.append(out)
                log.info("%s %s seed %d: %.1f s %s", method, name, seed, seconds, rows[-1])
            results[name][method] = {"rows": rows, "diversity": diversity(pictures, ref) if len(pictures) > 1
                                     else float("nan")}
            shown += pictures[:2] if method == "pack" else pictures[:1]
            if method == "pack":
                firsts.append(pictures[0])
        save_png(strip(shown), OUT / f"single_image_{name}.png")
        rows_shown.append(strip(shown))
    if rows_shown:  # every reference's strip at half size, one under another: the README's picture
        width = max(r.shape[-1] for r in rows_shown)
        grid = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[-1], 0, 4), value=1.0)
                          for r in rows_shown], dim=1)[:, :-4]
        half = torch.nn.functional.interpolate(grid[None], scale_factor=0.5, mode="bilinear", antialias=True)[0]
        save_png(half, OUT / "single_image_overview.png")
    if firsts:
        save_png(pack_row(firsts), OUT / "single_image_pack.png")
    return results


def pack_row(pictures) -> torch.Tensor:
    """The pack's seed-0 picture of every reference side by side at half size (the README's first picture)."""
    row = strip(pictures)
    return torch.nn.functional.interpolate(row[None], scale_factor=0.5, mode="bilinear", antialias=True)[0]


def _mean(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.fmean(vals) if vals else float("nan")


def render(results, seeds, methods, command: str, deep: bool) -> str:
    lines = ["# Single-image generation side by side (issue 28)", "",
             f"Made by `{command}`: {SIZE} px, seeds {', '.join(map(str, seeds))}, each reference's seed-0 picture "
             "from walk_core.references. Structure = every calibrated structure criterion that applies to the "
             "reference passes (walk_core/quality_structure.py); copied16 / copied48 = share of 16x16 patches / "
             "48x48 windows nearer to the reference than half its halves' distance (near-verbatim); diversity = "
             "SinGAN's (per-pixel std across seeds / the reference's std). SIFID at relu2_1 and the mean Gram "
             "distance over relu1_1..relu5_1 of the AdaIN VGG-19 (lower = closer to the reference)"
             + ("" if deep else " -- not measured: run `bench/vgg_setup.py` first") + ".", "",
             "| reference | method | structure passes | SIFID | Gram | copied16 | copied48 | diversity | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, by_method in results.items():
        for method in methods:
            res = by_method[method]
            rows = res["rows"]
            passes = sum(r["structure"] for r in rows)
            lines.append(f"| {name} | {method} | {passes}/{len(rows)} | {_mean(rows, 'sifid'):.1f} | "
                         f"{_mean(rows, 'gram'):.3f} | {_mean(rows, 'copied16'):.2f} | {_mean(rows, 'copied48'):.2f} | "
                         f"{res['diversity']:.2f} | {_mean(rows, 'seconds'):.1f} |")
    if "fresh" in methods:
        lines += ["", "The `fresh` rows are new pictures of each reference's own generator (seeds 1-4): genuinely new "
                  "pictures of the same kind. They copy almost nothing, and their SIFID is far above every patch "
                  "method's -- SIFID against one reference rewards copying it, so a SIFID below GPNN's (which copies "
                  "most) is not a sign of a better picture; no farther than the fresh pictures is the calibrated "
                  "bound."]
    lines += ["", "Pictures: `docs/bench/single_image_<reference>.png` -- the reference, the pack's seeds "
              f"{seeds[0]} and {seeds[1] if len(seeds) > 1 else seeds[0]}, then seed {seeds[0]} of each other "
              "method in the table's order.", ""]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".md", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", default=",".join(REFERENCES))
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT / "single_image.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    register_pack()
    encoder = None
    try:
        from rwalk.bench.deep_features import default_encoder

        encoder = default_encoder()
    except FileNotFoundError as err:
        log.warning("deep measures skipped: %s", err)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            parser.error(f"--methods: {m!r} is not one of {', '.join(METHODS)}")
    results = run([r for r in args.references.split(",") if r], seeds, methods, encoder)
    command = "bench/single_image.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(
        sys.argv[1:] if argv is None else argv))
    write_atomic(args.out, render(results, seeds, methods, command, encoder is not None))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
