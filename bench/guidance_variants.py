"""The CFG variants and frequency terms (CFG-Zero*, TCFG, Mahiro, Perp-Neg, FDG, FreSca) on the exact class
mixture at scales 4 and 8, beside CFG and APG (issue 32).

    .venv/bin/python bench/guidance_variants.py [--samples 1000] [--write]

The target is the main benchmark's ``classes`` mixture (bench/targets.py: 3 x 16 x 16 image-like, 12 components
in 3 classes, guided towards class 0; its denoisers exact). Each chain of ``ROWS`` runs at each scale with two
walks (euler_ancestral, 20 steps; heun, 10 steps = 19 evaluations; karras) from the same initial noise (item i
seeded i) and is scored against the exact class-0 conditional: class precision, diversity kept, in-class mode TV
(bench/guidance_metrics.py) and the sliced W2 distance to exact conditional samples (bench/metrics.py), next to
their floors (independent exact sample sets of the same size, mean +- sd). ``--write`` puts the table into
docs/BENCHMARKS.md (section ``guidance-variants``; the main report keeps it). About a minute on 2 cores.

A new output-only term is one more entry in ``ROWS``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
SCALES = (4.0, 8.0)
WALK_RUNS = (("euler_ancestral", 20), ("heun", 10))  # (walk, steps): 20 and 19 evaluations
FLOOR_SETS = 10
log = logging.getLogger("bench.guidance_variants")


class Row(NamedTuple):
    name: str
    what: str  # one line for the report
    chain: Callable  # (scale, negative target) -> GuidanceChain


def _rows() -> List[Row]:
    from rwalk.walk_core import GuidanceChain
    from rwalk.walk_core.guidance import TERMS

    def one(kind, **params):
        return lambda scale, negative: GuidanceChain().plus(TERMS[kind](**{k: (v(scale) if callable(v) else v)
                                                                          for k, v in params.items()}))

    def neg(neg_scale):
        return lambda scale, negative: GuidanceChain().plus(
            TERMS["perp_neg"](weight=scale, neg_scale=neg_scale, negative=negative))

    def fresca(scale, negative):
        return GuidanceChain().plus(TERMS["fresca"](freq_cutoff=2)).plus(TERMS["cfg"](weight=scale))

    def cfg_norm(scale, negative):
        return GuidanceChain().plus(TERMS["cfg"](weight=scale)).plus(TERMS["cfg_norm"](weight=1.0))

    same = lambda scale: scale  # noqa: E731  (the row's scale)
    return [
        Row("cfg", "CFG (Ho & Salimans 2022)", one("cfg", weight=same)),
        Row("apg", "APG, eta 0, no momentum (Sadat et al. 2024)", one("apg", weight=same)),
        Row("cfg_zero_star", "CFG-Zero*, optimised scale only (Fan et al. 2025)", one("cfg_zero_star", weight=same)),
        Row("cfg_zero_star zero-init", "CFG-Zero* with zero-init over the first 4 % of the walk",
            one("cfg_zero_star", weight=same, zero_init=0.04)),
        Row("tcfg", "TCFG (Kwon et al. 2025)", one("tcfg", weight=same)),
        Row("mahiro", "Mahiro (ComfyUI's node, yoinked-h 2024)", one("mahiro", weight=same)),
        Row("perp_neg", "Perp-Neg, negative = class 1, neg_scale 1 (ComfyUI's default; Armandpour et al. 2023)",
            neg(1.0)),
        Row("perp_neg 0.02", "Perp-Neg as above, neg_scale 0.02", neg(0.02)),
        Row("fdg", "FDG, fine bands at the scale, coarse band at half of it, 2 levels (Sadat et al. 2025)",
            one("fdg", weight=same, low_weight=lambda s: s / 2)),
        Row("fdg 3 levels", "FDG as above with 3 levels (two octaves of detail at the full scale)",
            one("fdg", weight=same, low_weight=lambda s: s / 2, levels=3)),
        Row("fresca + cfg", "FreSca 1 / 1.25 above 2 cycles per picture, then CFG (Huang et al. 2025)", fresca),
        Row("cfg + cfg_norm", "CFG, then CFGNorm at strength 1 (ComfyUI's CFGNorm: each position's channel vector "
            "capped at the conditional prediction's length)", cfg_norm),
    ]


class Result(NamedTuple):
    row: str
    scale: float
    walk: str
    nfe: int
    status: str  # ok / off-target / diverged (bench/scoring.py)
    values: Dict[str, float]


def _fast_target(mixture, label: int, sigma_min: float, sigma_max: float):
    """The exact target of ``mixture`` conditioned on ``label``, with the fast exact denoisers."""
    from dataclasses import replace

    from rwalk.bench.fast_exact import LowRankExact
    from rwalk.walk_core.targets import exact_target

    target = exact_target(mixture, label, space="pixels", sigma_min=sigma_min, sigma_max=sigma_max,
                          name=f"bench classes, class {label}")
    return replace(target, denoiser=LowRankExact(mixture.condition(label)).denoise,
                   unconditional=LowRankExact(mixture).denoise)


def measure(samples: int, target=None, scales=SCALES, walk_runs=WALK_RUNS, rows=None, floor_sets: int = FLOOR_SETS):
    """(floors {metric: (mean, sd)}, [Result]) for every row x scale x walk."""
    from rwalk.bench.metrics import exact_samples, sliced_w2, summarize
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import class_target
    from rwalk.walk_core import WalkRequest, run_walk

    target = target or class_target()
    scorer = Scorer(target, samples, floor_repeats=floor_sets)
    walked = target.walk_target
    negative = _fast_target(target.mixture, (target.label + 1) % len(target.mixture.classes()),
                            target.sigma_min, target.sigma_max)
    exact_sets = [exact_samples(target.sampled, samples, 2_000_000 + j) for j in range(floor_sets)]
    sw2 = summarize([sliced_w2(x, scorer.reference, scorer.directions) for x in exact_sets])
    floors = {**{k: (f.mean, f.sd) for k, f in scorer.floors.items()}, "sw2": (sw2.mean, sw2.sd)}
    results = []
    for row in rows or _rows():
        for scale in scales:
            chain = row.chain(scale, negative)
            for walk, steps in walk_runs:
                out = run_walk(walked, WalkRequest(walk=walk, steps=steps, batch_size=samples, seed=0), chain)
                status, why, values = scorer.evaluate(out.x)
                if values:
                    values = {**values, "sw2": sliced_w2(out.x.double(), scorer.reference, scorer.directions)}
                results.append(Result(row.name, scale, walk, out.nfe, status, values))
                log.info("%s x%g %s: %s %s", row.name, scale, walk, status, why)
    return floors, results


COLUMNS = (("precision", "class precision", 3), ("diversity", "diversity kept", 3),
           ("class_tv", "in-class mode TV", 3), ("sw2", "sliced W2 to the exact conditional", 3),
           ("detail", "fine-detail variance ratio", 3))


def _cell(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def markdown(floors, results: List[Result], samples: int, seconds: float, rows=None) -> str:
    rows = rows or _rows()
    what = "; ".join(f"`{r.name}` = {r.what}" for r in rows)
    lines = ["## CFG variants and frequency guidance on the class mixture (issue 32)", "",
             "```", f".venv/bin/python bench/guidance_variants.py --samples {samples} --write", "```", "",
             "The main benchmark's `classes` target (3×16×16 image-like, 12 components in 3 classes, exact "
             f"denoisers), guided towards class 0; {samples} samples per run, karras schedule, the same initial "
             "noise for every run (item i seeded i). Chains: " + what + ". Floors: independent exact conditional "
             f"sample sets of the same size, mean ± sd over {FLOOR_SETS}. Diversity kept and the fine-detail variance "
             "ratio: 1 = the exact conditional's (< 1 lost variety or detail, > 1 leftover noise or spread). "
             "*off-target*: more than 1 % of the "
             "samples farther from every mode than the signal's RMS; *diverged*: non-finite or huge samples.", "",
             "| chain | scale | walk | NFE | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|---|---|---|---|" + "---|" * len(COLUMNS),
             "| *exact (floor)* |  |  |  | " + " | ".join(
                 f"{_cell(floors[k][0], d)} ± {_cell(floors[k][1], 2)}" for k, _, d in COLUMNS) + " |"]
    for r in results:
        if r.status == "diverged":
            cells = ["*diverged*"] + [""] * (len(COLUMNS) - 1)
        else:
            cells = [_cell(r.values[k], d) for k, _, d in COLUMNS]
            if r.status == "off-target":
                cells[0] += " *off-target*"
        lines.append(f"| `{r.row}` | {r.scale:g} | {r.walk} | {r.nfe} | " + " | ".join(cells) + " |")
    lines += ["", verdict(results, floors["sw2"][1]), "", f"Whole run: {seconds:.0f} s."]
    return "\n".join(lines)


def verdict(results: List[Result], sd: float) -> str:
    """One paragraph: which chains land closer to the exact conditional than CFG (sliced W2, by more than ``sd``,
    the floor's seed-to-seed sd) at the same scale and walk, in every run, in some, in none; a run off the target
    or diverged counts as farther."""
    cfg = {(r.scale, r.walk): r.values.get("sw2") for r in results if r.row == "cfg" and r.status == "ok"}
    groups: Dict[str, List[str]] = {"closer": [], "mixed": [], "same": [], "farther": []}
    for name in dict.fromkeys(r.row for r in results if r.row != "cfg"):
        runs = [r for r in results if r.row == name and (r.scale, r.walk) in cfg]
        closer = sum(1 for r in runs if r.status == "ok" and r.values["sw2"] < cfg[(r.scale, r.walk)] - sd)
        farther = sum(1 for r in runs if r.status != "ok" or r.values["sw2"] > cfg[(r.scale, r.walk)] + sd)
        lost = sum(1 for r in runs if r.status != "ok")
        lost_text = f"{lost} of {len(runs)} off the target or diverged" if lost else ""
        if closer == len(runs):
            groups["closer"].append(f"`{name}`")
        elif farther == len(runs):
            groups["farther"].append(f"`{name}`" + (f" ({lost_text})" if lost else ""))
        elif closer == farther == 0:
            groups["same"].append(f"`{name}`")
        else:
            counts = f"closer in {closer}, farther in {farther} of {len(runs)}" + (f"; {lost_text}" if lost else "")
            groups["mixed"].append(f"`{name}` ({counts})")
    said = {"closer": "closer to the exact conditional than CFG in every run", "mixed": "mixed",
            "same": "the same as CFG", "farther": "farther than CFG in every run"}
    return (f"Against CFG at the same scale and walk (sliced W2, differences within the floor's sd {sd:.2g} count "
            "as the same): " + "; ".join(f"{said[k]}: {', '.join(v)}" for k, v in groups.items() if v) + ".")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="samples per run (default 1000)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error(f"--samples={args.samples} is not allowed; expected >= 2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    floors, results = measure(args.samples)
    text = markdown(floors, results, args.samples, time.perf_counter() - start)
    if args.write:
        from rwalk.bench.sections import replace_section

        replace_section(ROOT / "docs" / "BENCHMARKS.md", "guidance-variants", text)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
