"""CFG++, the guidance interval, SMC-CFG, momentum guidance and CADS on the exact class mixture at scale 4 and 8,
beside CFG and APG (issue 32; the CFG variants and frequency terms are in bench/guidance_variants.py).

    .venv/bin/python bench/guidance_terms.py [--quick] [--out docs/BENCHMARKS.md]

Writes the section ``guidance-terms`` of docs/BENCHMARKS.md (kept when bench/run.py rewrites the rest). Every
chain walks the ``classes`` target of bench/targets.py (3x16x16 image-like mixture, guided towards class 0) from
the same initial noise, at the same NFE; metrics against the exact class-0 conditional: class precision,
diversity kept (spread over the exact conditional's), in-class mode TV and sliced W2 to exact conditional samples
(the distance from the exact conditional; its floor is two exact sample sets). About 6 minutes on 2 cores. A term
is added to the table by one entry in ``chains``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
SCALES = (4.0, 8.0)


def chains() -> Dict[str, Tuple[str, Callable[[float], object]]]:
    """name -> (description, scale -> GuidanceChain). ``scale`` is the CFG scale the row is compared at; terms
    with a scale of another meaning say what they use."""
    from rwalk.walk_core.guidance import TERMS, GuidanceChain

    def chain(*terms):
        return GuidanceChain(tuple(terms))

    cfg = TERMS["cfg"]
    return {
        "none": ("no guidance: the exact conditional branch alone, the walk's own error; independent of w",
                 lambda w: chain()),
        "cfg": ("CFG w throughout (Ho & Salimans 2022)", lambda w: chain(cfg(weight=w))),
        "apg": ("APG w, eta 0 (Sadat et al. 2024)", lambda w: chain(TERMS["apg"](weight=w))),
        "cfg_interval": ("CFG w on sigma 0.28..5.42 only, the paper's SDXL interval (Kynkaanniemi et al. 2024)",
                         lambda w: chain(TERMS["cfg_interval"](weight=w))),
        "cfg_pp 0.6": ("CFG++ lambda 0.6, the paper's default; independent of w (Chung et al. 2024)",
                       lambda w: chain(TERMS["cfg_pp"](weight=0.6))),
        "cfg_pp w/8": ("CFG++ lambda = w / 8 (0.5 at w 4, 1 at w 8, the top of the paper's range)",
                       lambda w: chain(TERMS["cfg_pp"](weight=w / 8))),
        "smc_cfg": ("SMC-CFG w, lambda 0.05, k 0.3 (Wang et al. 2026)", lambda w: chain(TERMS["smc_cfg"](weight=w))),
        "smc_cfg k 0.05": ("SMC-CFG w, lambda 0.05, k 0.05", lambda w: chain(TERMS["smc_cfg"](weight=w, k=0.05))),
        "cfg + momentum": ("CFG w, then momentum guidance alpha 0.3, beta 0.5 (Liao et al. 2026)",
                           lambda w: chain(cfg(weight=w), TERMS["momentum"]())),
        "cfg + momentum 1": ("CFG w, then momentum guidance alpha 1, beta 0.5",
                             lambda w: chain(cfg(weight=w), TERMS["momentum"](weight=1.0))),
        "momentum alone": ("momentum guidance alpha 1, beta 0.5, no CFG (the conditional branch alone); "
                           "independent of w", lambda w: chain(TERMS["momentum"](weight=1.0))),
        "cads + cfg": ("CADS (tau 0.6/0.9, s 0.25, psi 1; Sadat et al. 2024), then CFG w",
                       lambda w: chain(TERMS["cads"](), cfg(weight=w))),
    }


def run_rows(quick: bool) -> Tuple[List[dict], dict]:
    import torch

    from rwalk.bench.metrics import exact_samples, sliced_w2
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import class_target
    from rwalk.walk_core import WalkRequest, run_walk

    target = class_target()
    samples = 300 if quick else 1000
    scorer = Scorer(target, samples, floor_repeats=3 if quick else 5)
    other = exact_samples(target.sampled, samples, 7_000_000)
    floor = {**{k: scorer.floors[k].mean for k in ("precision", "diversity", "class_tv")},
             "sw2": sliced_w2(other, scorer.reference, scorer.directions)}
    rows = []
    walks = (("euler_ancestral", 20),) if quick else (("euler_ancestral", 20), ("euler", 20))
    for walk, steps in walks:
        for scale in SCALES:
            for name, (_, make) in chains().items():
                request = WalkRequest(walk=walk, schedule="karras", steps=steps, batch_size=samples, seed=0)
                result = run_walk(target.walk_target, request, make(scale))
                status, _, values = scorer.evaluate(result.x)
                row = {"chain": name, "walk": walk, "scale": scale, "status": status, **values}
                if values:
                    row["sw2"] = sliced_w2(result.x.to(torch.float64), scorer.reference, scorer.directions)
                rows.append(row)
                logging.info("%s %s w=%g: %s %s", walk, name, scale, status,
                             {k: round(v, 3) for k, v in values.items()})
    return rows, floor


def render(rows: List[dict], floor: dict, command: str, samples: int) -> str:
    def cell(row, key):
        return "–" if key not in row else f"{row[key]:.3g}"

    lines = ["## CFG++, guidance interval, SMC-CFG, momentum guidance, CADS on the exact class mixture (issue 32)", "",
             f"`{command}` · the `classes` target (3x16x16, 3 classes, guided towards class 0), {samples} samples, "
             "20 steps of the Karras schedule, the same initial noise for every row (item i seeded 0+i), exact "
             "denoiser. Columns: class precision, diversity kept (spread over the exact conditional's; 1 = all of "
             "it), in-class mode TV, sliced W2 to exact class-0 samples (the distance from the exact conditional). "
             "CADS adds one conditional prediction per evaluation where it acts. *diverged*: non-finite or huge "
             "samples; *off-target*: more than 1 % of the samples far from every mode.", "", "Chains:", ""]
    for name, (description, _) in chains().items():
        lines.append(f"- `{name}`: {description}")
    lines += ["", f"Exact conditional (floor, another exact sample set): precision {floor['precision']:.3g}, "
              f"diversity {floor['diversity']:.3g}, in-class TV {floor['class_tv']:.3g}, sliced W2 {floor['sw2']:.3g}.",
              "", "| walk | w | chain | precision | diversity kept | in-class TV | sliced W2 | status |",
              "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        status = "" if row["status"] == "ok" else row["status"]
        lines.append(f"| {row['walk']} | {row['scale']:g} | `{row['chain']}` | {cell(row, 'precision')} | "
                     f"{cell(row, 'diversity')} | {cell(row, 'class_tv')} | {cell(row, 'sw2')} | {status} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 samples, one walk: a smoke run (~30 s)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md",
                        help="the Markdown file whose guidance-terms section is replaced (default: docs/BENCHMARKS.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    rows, floor = run_rows(args.quick)
    command = ".venv/bin/python bench/guidance_terms.py" + (" --quick" if args.quick else "")
    text = render(rows, floor, command, 300 if args.quick else 1000)
    text += f"\nWhole run: {time.perf_counter() - started:.0f} s.\n"
    from rwalk.bench.sections import replace_section  # noqa: PLC0415

    replace_section(args.out, "guidance-terms", text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
