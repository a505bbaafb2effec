"""Calibration of the structure measures (issue 28 §1, walk_core/quality_structure.py): fresh pictures of the
same procedural generator (positives) against the patch target's current outputs and simple mosaics.

    .venv/bin/python bench/structure_calibration.py            # 15 walks (30-60 s each on 2 cores) + measures
    .venv/bin/python bench/structure_calibration.py --reuse    # reuse the walks' PNGs in bench/_out/structure
    .venv/bin/python bench/structure_calibration.py --mode layout  # walks with another PatchSpec mode

Positives: reference_image(name, 256, 256, seed) for seeds 20, 40, 60, 80 (the same painting palette, seed % 4,
and marble stone, seed % 5, as the reference, seed 0). Negatives: the shipped default walk on the patch target
(bench/patch.py's walk_request) for seeds 0, 1, 2; the reference cut into 16 and 32 px blocks and shuffled; the
reference blurred (sigma 2.5 px; reported, not counted: a blur keeps the arrangement). Pictures go to
bench/_out/structure/, the table to docs/bench/structure_calibration.md.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "_out" / "structure"
TABLE = ROOT / "docs" / "bench" / "structure_calibration.md"
REFERENCES = ("painting", "bricks", "foliage", "stained_glass", "marble")
FRESH_SEEDS = (20, 40, 60, 80)
WALK_SEEDS = (0, 1, 2)
SIZE = 256
log = logging.getLogger("bench.structure_calibration")

SEEN = (  # looked at in bench/_out/structure (ref, fresh20, current0-1 of each), 2026-12-07
    "- bricks: fresh = whole bricks in running-bond courses (seed 20's are smaller, course ~23 px against ~30); "
    "current = rubble: red chunks in grey mortar blotches, no course, no whole brick (1/5).",
    "- painting: fresh = sky with sun over hills, trees and a yellow field; current = camouflage of sky-blue, "
    "lilac and field-green pieces everywhere, no horizon (1/5).",
    "- foliage: fresh = whole elongated leaves with outlines and shading; current = green/yellow mush, blotches "
    "with ragged outlines, no whole leaf (1-2/5).",
    "- stained_glass: fresh = rose window of polygon cells in straight dark leading; current = small blob cells "
    "in wiggly leading, no window, mottled colours (2/5: the best of the five).",
    "- marble: fresh = long thin continuous veins on pale stone; current = cloudy mottling with veins broken "
    "into short dashes (1-2/5).",
    "- blurred (sigma 2.5) keeps the arrangement and passes everything: these measures judge structure, not "
    "sharpness; shuffled blocks fail period/objects/fragments, but their seams are long straight edges, so "
    "the edge measure passes them.",
)
COLUMNS = (("period_kept", "period"), ("period_own", "period own"), ("edge_share_ratio", "edge long share"),
           ("edge_median_ratio", "edge median"), ("object_size_ratio", "object size"),
           ("object_count_ratio", "object count"), ("coherence_ratio", "coherence"))


def save_png(x, path: Path) -> None:
    import numpy as np
    from PIL import Image

    arr = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(arr).save(tmp)
    os.replace(tmp, path)


def load_png(path: Path):
    import numpy as np
    import torch
    from PIL import Image

    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255).permute(2, 0, 1)


def block_shuffle(x, block: int, seed: int = 0):
    """The picture cut into block x block tiles, randomly rearranged (a mosaic of its pieces)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    c, h, w = x.shape
    ny, nx = h // block, w // block
    tiles = x[:, :ny * block, :nx * block].reshape(c, ny, block, nx, block)
    tiles = tiles.permute(1, 3, 0, 2, 4).reshape(-1, c, block, block)
    tiles = tiles[torch.randperm(tiles.shape[0], generator=g)]
    return tiles.reshape(ny, nx, c, block, block).permute(2, 0, 3, 1, 4).reshape(c, ny * block, nx * block)


def blurred(x, sigma: float = 2.5):
    import torch

    from rwalk.walk_core.quality_structure import _blur

    return torch.stack([_blur(ch.double(), sigma) for ch in x]).float()


def current_output(name: str, ref, seed: int, reuse: bool, mode: str = ""):
    """The shipped walk on the patch target of ``ref`` (bench/patch.py's one_walk), in [0, 1], in PatchSpec mode
    ``mode`` (posterior: the calibration's 'current' pictures; another mode's are saved under its name)."""
    path = OUT_DIR / f"{name}_{'current' if mode in ('', 'posterior') else mode}{seed}.png"
    if reuse and path.exists():
        return load_png(path)
    from patch import walk_request  # bench/patch.py

    from rwalk.walk_core.sample import run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    start = time.perf_counter()
    target = patch_target(PatchSpec((ref * 2 - 1)[None], **({"mode": mode} if mode else {})), SIZE, SIZE)
    x = ((run_walk(target, walk_request(seed)).x[0] + 1) / 2).clamp(0, 1)
    log.info("%s walk seed %d: %.1f s", name, seed, time.perf_counter() - start)
    save_png(x, path)
    return load_png(path)  # measured as saved (8-bit), like every other picture here


def pictures(name: str, reuse: bool, mode: str = ""):
    from rwalk.walk_core.references import reference_image

    ref = reference_image(name, SIZE, SIZE, 0)
    save_png(ref, OUT_DIR / f"{name}_ref.png")
    ref = load_png(OUT_DIR / f"{name}_ref.png")
    cases = []
    for s in FRESH_SEEDS:
        save_png(reference_image(name, SIZE, SIZE, s), OUT_DIR / f"{name}_fresh{s}.png")
        cases.append(("fresh", f"seed {s}", load_png(OUT_DIR / f"{name}_fresh{s}.png")))
    for s in WALK_SEEDS:
        cases.append(("current", f"seed {s}", current_output(name, ref, s, reuse, mode)))
    for block in (16, 32):
        x = block_shuffle(ref, block)
        save_png(x, OUT_DIR / f"{name}_shuffled{block}.png")
        cases.append(("shuffled", f"{block} px", x))
    cases.append(("blurred", "sigma 2.5", blurred(ref)))
    return ref, cases


def fmt(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def markdown(rows: list, command: str) -> str:
    from rwalk.walk_core import quality_structure as qs

    criteria, applies = qs.CRITERIA, qs.APPLIES_TO  # which criterion judges which reference

    lines = ["# Structure measures: calibration (issue 28 §1)", "",
             f"Made by `{command}` (walk_core/quality_structure.py). Every value is output / reference (1 = as the "
             "reference). Fresh = the same generator at another seed (should pass); current = the patch target's "
             "posterior mode, its default walk until issue 28 (the mosaics issue 28 describes: should fail); shuffled = the reference cut into blocks "
             "and rearranged; blurred = reported only.", "",
             f"Thresholds (criteria): period = kept >= {qs.PERIOD_PASS} (only where the reference's mean peak "
             f"height >= {qs.PERIOD_APPLIES}); edges = long share >= {qs.EDGE_PASS}; objects = object size >= "
             f"{qs.OBJECT_PASS}; fragments = object count <= {qs.FRAGMENT_PASS}; coherence >= "
             f"{qs.COHERENCE_PASS}. `✓`/`✗` mark pass/fail of the criteria that apply to the reference; a picture "
             "passes when every one does.", ""]
    counts = ["## Counts", "", "| reference | criterion | applies | fresh pass | current fail | shuffled fail |",
              "|---|---|---|---|---|---|"]
    for name in REFERENCES:
        mine = [r for r in rows if r["reference"] == name]
        for r in mine:
            r["criteria"]["all applicable"] = all(r["criteria"][c] for c in applies[name])
        for crit in criteria + ("all applicable",):
            def tally(kind, want):
                sel = [r for r in mine if r["kind"] == kind]
                return f"{sum(r['criteria'][crit] == want for r in sel)}/{len(sel)}"
            mark = "yes" if crit in applies[name] or crit == "all applicable" else "no"
            counts.append(f"| {name} | {crit} | {mark} | {tally('fresh', True)} | {tally('current', False)} | "
                          f"{tally('shuffled', False)} |")
    lines += counts + ["", "## What the pictures show", "", *SEEN, "", "## Values", ""]
    head = "| reference | picture | " + " | ".join(c[1] for c in COLUMNS) + " | criteria |"
    lines += [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for r in rows:
        crit = " ".join(f"{c}{'✓' if r['criteria'][c] else '✗'}" for c in applies[r["reference"]])
        lines.append(f"| {r['reference']} | {r['kind']} {r['label']} | "
                     + " | ".join(fmt(r["report"][k]) for k, _ in COLUMNS) + f" | {crit} |")
    lines += ["", "Reference peak strength (mean height of its 3 strongest secondary autocorrelation peaks): "
              + ", ".join(f"{n} {fmt(next(r['report']['period_ref_strength'] for r in rows if r['reference'] == n))}"
                          for n in REFERENCES), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="reuse walk PNGs already in bench/_out/structure")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="posterior", help=(
        "the patch target's mode for the 'current' walks (default posterior: the mosaics the measures were "
        "calibrated to fail; layout or texture measure the coherent modes instead)"))
    parser.add_argument("--out", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(args.threads)
    register_pack()
    from rwalk.walk_core import quality_structure as qs

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in REFERENCES:
        ref, cases = pictures(name, args.reuse, args.mode)
        for kind, label, x in cases:
            report = qs.structure_report(x, ref)
            rows.append({"reference": name, "kind": kind, "label": label, "report": report,
                         "criteria": qs.structure_criteria(report)})
            log.info("%s %s %s: %s", name, kind, label, {k: round(v, 3) for k, v in report.items()})
    command = ".venv/bin/python bench/structure_calibration.py" + (" --reuse" if args.reuse else "")
    command += f" --mode {args.mode}" if args.mode != "posterior" else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text(markdown(rows, command), encoding="utf-8")
    os.replace(tmp, args.out)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
