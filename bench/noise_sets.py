"""A walk's ring metrics over many initial-noise sets, next to as many exact sets: is it biased, or was the
published run's noise unlucky?

    .venv/bin/python bench/noise_sets.py [WALK ...] [--budget 20] [--sets 40] [--write]

The main benchmark judges the 2-D goals on a few fixed initial noises (``bench/config.py``: the run's seed and
``repeat_seeds - 1`` further ones), so a deterministic walk's verdict there is a fixed draw. This command runs
each walk (``name`` or ``name:key=value,...``, default ``adams``) from ``--sets`` initial noises in each of
several seed ranges (item i of set j seeded ``base + 2000 j + i``; the published run's range starts at 0) and
scores as many independent exact sample sets, so a walk's mean can be told from exact within a standard error
(sd / sqrt(sets)). ``--write`` puts the table into docs/BENCHMARKS.md (section ``noise-sets``). About 30 s a
walk with the defaults on 2 cores.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 2000  # items per set, as in the published run
BASES = (0, 10**6, 10**8, 123_456_789)  # seed ranges of the initial noises (0: the published run's)
EXACT_BASE = 5 * 10**8  # the exact sets' generator seeds (far from every range above)
log = logging.getLogger("bench.noise_sets")


def mean_se(values):
    from rwalk.bench.metrics import summarize

    spread = summarize(values)
    return spread.mean, spread.sd / len(values) ** 0.5


def measure(walks, budget: int, schedule: str, sets: int, bases=BASES, samples: int = SAMPLES):
    """{row: {key: (mean, se)}} for the exact sets (row ``exact``), and each walk per seed range and pooled."""
    from rwalk.bench.accuracy import _run_scored, initial_noise  # (rwalk: the pack, registered by run.py)
    from rwalk.bench.metrics import exact_samples
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import ring_target

    target = ring_target()
    scorer = Scorer(target, samples, floor_repeats=2)  # its floors are not used here: the exact row replaces them
    keys = scorer.keys
    exact = [scorer.score(exact_samples(target.sampled, samples, EXACT_BASE + j)) for j in range(sets * len(bases))]
    rows = {"exact": {k: mean_se([v[k] for v in exact]) for k in keys}}
    for sampler in walks:
        pooled = []
        for base in bases:
            runs = []
            for j in range(sets):
                seed = base + j * samples
                x = initial_noise(samples, target.shape, seed, target.sigma_max)
                score, _ = _run_scored(scorer, sampler, "", schedule, budget, x, seed, 1.0)
                if not score.ok:
                    raise RuntimeError(f"noise_sets: {sampler.name} {score.status} from seed {seed}: {score.message}")
                runs.append(score.values)
            rows[f"`{sampler.name}`, seeds from {base}"] = {k: mean_se([v[k] for v in runs]) for k in keys}
            pooled += runs
            log.info("%s from %d: done", sampler.name, base)
        rows[f"`{sampler.name}`, all {len(bases)} ranges"] = {k: mean_se([v[k] for v in pooled]) for k in keys}
    return keys, rows


def markdown(keys, rows, budget: int, schedule: str, sets: int, seconds: float, walks=()) -> str:
    from rwalk.bench.scoring import METRICS

    named = "".join(f" {w}" for w in walks)
    lines = ["## Many initial noises on the 2-D ring (issue 6, part 3)", "",
             "```", f".venv/bin/python bench/noise_sets.py{named} --budget {budget} --schedule {schedule} "
             f"--sets {sets} --write", "```", "",
             f"Each walk at NFE {budget} ({schedule}) from {sets} initial-noise sets of {SAMPLES} items in each of "
             f"{len(BASES)} seed ranges (the published run's range starts at 0), next to "
             f"{sets * len(BASES)} exact sets; mean ± standard error over the sets. A walk whose pooled mean is "
             "within about 2 standard errors of the exact row is indistinguishable from exact sampling at this "
             "precision; a seed range that sits apart is the luck of that range's noise.", "",
             "| sets | " + " | ".join(METRICS[k].label for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for row, values in rows.items():
        lines.append(f"| {row} | " + " | ".join(f"{m:.4f} ± {se:.4f}" for m, se in (values[k] for k in keys)) + " |")
    lines += ["", f"Whole run: {seconds:.0f} s."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("walks", nargs="*", default=["adams"], help="walk names, name:key=value,... (default adams)")
    parser.add_argument("--budget", type=int, default=20, help="NFE budget (default 20)")
    parser.add_argument("--schedule", default="karras", help="schedule (default karras)")
    parser.add_argument("--sets", type=int, default=40, help="initial-noise sets per seed range (default 40)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.sets < 2 or args.budget < 1:
        parser.error(f"--sets={args.sets}, --budget={args.budget} are not allowed; expected --sets >= 2, --budget >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    from check_goals import parse_walk

    torch.set_num_threads(1)
    start = time.perf_counter()
    keys, rows = measure([parse_walk(w) for w in args.walks], args.budget, args.schedule, args.sets)
    text = markdown(keys, rows, args.budget, args.schedule, args.sets, time.perf_counter() - start, args.walks)
    if args.write:
        from rwalk.bench.sections import replace_section

        replace_section(ROOT / "docs" / "BENCHMARKS.md", "noise-sets", text)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
