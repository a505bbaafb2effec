"""Weight-free targets benchmark (issue 3 §6): time, peak memory and reproducibility of the patch target, and
its novelty / faithfulness criteria and photo style transfer, written into docs/BENCHMARKS.md.

    .venv/bin/python bench/patch.py            # about 40 minutes on 2 cores
    .venv/bin/python bench/patch.py --quick    # about 3 minutes

Timings run each case in a fresh subprocess (so peak RSS is the case's own) with 2 torch threads (the
machine's cores): they are wall-clock seconds for the whole walk, target building included.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench.patch")

REFERENCES = ("painting", "bricks", "foliage", "stained_glass", "marble")
FRESH_SEEDS = tuple(range(20, 260, 20))  # same painting palette (seed % 4) and marble stone (seed % 5) as seed 0
# This benchmark measures the posterior denoiser (issue 3), the default until issue 28; the layout and texture
# modes are measured side by side with GPNN and quilting in bench/single_image.py.
MODE = "posterior"


def walk_request(seed: int, s_noise: float = 0.0, walk: str = "", steps: int = 0, **over):
    """The walk every case takes unless it names its own, as the example workflows do: the patch target's walk,
    levels and noise scale (walk_core.targets.patch WALK, STEPS, WALK_S_NOISE; karras)."""
    from rwalk.walk_core.sample import WalkRequest
    from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE

    return WalkRequest(walk=walk or WALK, schedule="karras", steps=steps or STEPS, seed=seed,
                       options={"s_noise": s_noise or WALK_S_NOISE}, **over)


def one_walk(size: int, ref_size: int, seed: int, threads: int) -> dict:
    """Child process: one walk at ``size`` from the painting at ``ref_size``; time, RSS, a checksum."""
    import torch

    torch.set_num_threads(threads)
    register_pack()
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    ref = reference_image("painting", ref_size, ref_size, 0) * 2 - 1
    start = time.perf_counter()
    target = patch_target(PatchSpec(ref[None], mode=MODE), size, size)
    x = run_walk(target, walk_request(seed)).x
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    return {"seconds": seconds, "peak_mib": peak, "checksum": float(x.double().sum()), "bytes": x.numpy().tobytes().hex()[:64]}


def timed_cases(sizes, repeats: int, threads: int) -> list:
    rows = []
    for size in sizes:
        runs = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, __file__, "--child", str(size), "256", "5", str(threads)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.append({"size": size, "seconds": statistics.median(r["seconds"] for r in runs),
                     "peak_mib": max(r["peak_mib"] for r in runs),
                     "identical": len({(r["checksum"], r["bytes"]) for r in runs}) == 1, "runs": len(runs)})
        log.info("%d px: %.2f s, %.0f MiB, identical %s", size, rows[-1]["seconds"], rows[-1]["peak_mib"],
                 rows[-1]["identical"])
    return rows


WALK_KEYS = ("walk", "steps", "s_noise")  # a setting's keys that describe the walk, not the target or guidance


def setting_walk(setting: dict) -> dict:
    """walk_request keywords of a setting: the patch target's walk, levels and s_noise unless it names its own."""
    from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE

    return {"walk": WALK, "steps": STEPS, "s_noise": WALK_S_NOISE,
            **{k: v for k, v in setting.items() if k in WALK_KEYS}}


def guided_walk(ref, guided: dict):
    """The guidance chain and walk_request keywords of a ``guided`` setting (walk_core.guidance.own_statistics
    keyword dict, optionally with the walk's ``walk``, ``steps`` and ``s_noise``; None = no guidance)."""
    from rwalk.walk_core.guidance import GuidanceChain
    from rwalk.walk_core.guidance.own_statistics import own_statistics

    if guided is None:
        return GuidanceChain(), setting_walk({})
    return own_statistics(ref[None], **{k: v for k, v in guided.items() if k not in WALK_KEYS}), setting_walk(guided)


def criteria_rows(seeds, size: int, fresh_seeds=FRESH_SEEDS, guided=None, copies: bool = False) -> list:
    """Per reference: the criteria over the walks (``guided``: see guided_walk) and over fresh pictures of the
    reference's generator (``fresh_seeds``; empty = none); with ``copies``, also quality.copy_report's measures
    (means; ``copied_max``: the most copied walk)."""
    from rwalk.walk_core import quality
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    def summary(pictures, ref, suffix: str) -> dict:
        got = quality.criteria_summary([quality.patch_report(x, ref) for x in pictures])
        if copies:
            found = [quality.copy_report(x, ref) for x in pictures]
            got.update({k: statistics.mean(c[k] for c in found) for k in ("copied", "copied_halves",
                                                                          "novelty_half_bank")})
            got["copied_max"] = max(c["copied"] for c in found)
            got["half_bank_pass"] = sum(c["novelty_half_bank"] >= c["novelty_halves"] for c in found)
        return {f"{k}{suffix}": v for k, v in got.items()}

    rows = []
    for name in REFERENCES:
        ref = reference_image(name, size, size, 0) * 2 - 1
        target = patch_target(PatchSpec(ref[None], mode=MODE), size, size)
        chain, walk = guided_walk(ref, guided)
        row = {"reference": name, **summary([run_walk(target, walk_request(seed, **walk), chain).x[0]
                                             for seed in seeds], ref, "")}
        if fresh_seeds:
            # calibration: fresh pictures of the same procedural generator (other seeds, same palette / stone) --
            # genuinely new samples of the reference's own distribution, judged by the same criteria
            row.update(summary([reference_image(name, size, size, s) * 2 - 1 for s in fresh_seeds], ref, "_fresh"))
        rows.append(row)
        log.info("%s%s: %s", name, "" if guided is None else f" (guided {guided})",
                 {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
    return rows


TRADEOFF_KEYS = ("patch_size", "fine_patch_size", "level_sigma", "balance", "context", "palette", "palette_sigma")


def tradeoff_rows(seeds, size: int, settings) -> list:
    """Settings' trade-offs: mean over the references of each measure / its halves value, and the walks passing all
    three criteria. ``settings``: a list of PatchSpec keyword dicts, each optionally with the walk's ``walk``,
    ``steps`` and ``s_noise`` (WALK_KEYS; by default the patch target's)."""
    from rwalk.walk_core import quality
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    rows = []
    for setting in settings:
        kw = {k: v for k, v in setting.items() if k not in WALK_KEYS}
        walk = setting_walk(setting)
        ratios = {"novelty": [], "colour_swd": [], "gram": []}
        passed = 0
        for name in REFERENCES:
            ref = reference_image(name, size, size, 0) * 2 - 1
            target = patch_target(PatchSpec(ref[None], **{"mode": MODE, **kw}), size, size)
            for seed in seeds:
                report = quality.patch_report(run_walk(target, walk_request(seed, **walk)).x[0], ref)
                passed += all(quality.criteria(report).values())
                for key in ratios:
                    ratios[key].append(report[key] / report[f"{key}_halves"])
        full = {**{k: getattr(PatchSpec, k) for k in TRADEOFF_KEYS}, **walk, **kw}
        rows.append({**full, **{k: statistics.mean(v) for k, v in ratios.items()}, "all_pass": passed,
                     "n": len(ratios["gram"])})
        log.info("setting %s: %s", setting, rows[-1])
    return rows


def guided_setting_rows(seeds, size: int, settings) -> list:
    """Guidance settings' trade-offs (``settings``: own_statistics keyword dicts, optionally with the walk's
    ``walk``, ``steps``, ``s_noise``):
    each measure / its halves value averaged over the references and seeds, and the walks passing all three."""
    from rwalk.walk_core.guidance import own_statistics as own

    rows = []
    for setting in settings:
        crit = criteria_rows(seeds, size, (), setting)
        ratios = {k: statistics.mean(r[k] / r[f"{k}_halves"] for r in crit) for k in ("novelty", "colour_swd", "gram")}
        rows.append({"style_weight": own.STYLE_WEIGHT, "style_end": own.STYLE_END, **setting_walk(setting), **setting,
                     **ratios, "all_pass": sum(r["all_pass"] for r in crit), "n": sum(r["n"] for r in crit)})
        log.info("guided setting %s: %s", setting, rows[-1])
    return rows


def transfer_rows(seeds, size: int, weights) -> list:
    from rwalk.walk_core import quality
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.sample import run_walk
    from rwalk.walk_core.targets.patch import PatchSpec, patch_target

    style = reference_image("painting", size, size, 0) * 2 - 1
    photo = (reference_image("photo", size, size, 0) * 2 - 1)[None]
    left, right = quality.halves(style)
    floor = quality.colour_swd(left, right)
    rows = []
    for weight in weights:
        target = patch_target(PatchSpec(style[None], content=photo, content_weight=weight), size, size)
        got = []
        for seed in seeds:
            x = run_walk(target, walk_request(seed, init=photo, denoise=0.7)).x[0]
            got.append((quality.ssim(quality.luminance(x), quality.luminance(photo[0])),
                        quality.colour_swd(x, style), quality.gram_distance(x, style)))
        rows.append({"content_weight": weight, "ssim": statistics.mean(g[0] for g in got),
                     "ssim_min": min(g[0] for g in got), "colour_swd": statistics.mean(g[1] for g in got),
                     "colour_floor": floor, "gram": statistics.mean(g[2] for g in got),
                     "colour_pass": sum(g[1] <= 1.5 * floor for g in got), "n": len(got)})
        log.info("transfer weight %s: %s", weight, rows[-1])
    return rows


def criteria_table(crit, fresh: bool) -> list:
    """The per-reference criteria table (with the fresh pictures' columns when ``fresh``)."""
    head = "| reference |"
    for name in ("novelty", "colour SW2", "Gram"):
        head += f" {name} | halves |" + (" fresh | pass walks · fresh |" if fresh else " pass |")
    head += " all three walks · fresh |" if fresh else " all three |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in crit:
        n = r["n"]
        cells = [r["reference"]]
        for key, ok in (("novelty", "novel"), ("colour_swd", "colour"), ("gram", "gram")):
            cells += [f"{r[key]:.3f}", f"{r[key + '_halves']:.3f}"]
            cells += ([f"{r[key + '_fresh']:.3f}", f"{r[ok + '_pass']}/{n} · {r[ok + '_pass_fresh']}/{r['n_fresh']}"]
                      if fresh else [f"{r[ok + '_pass']}/{n}"])
        cells.append(f"{r['all_pass']}/{n}" + (f" · {r['all_pass_fresh']}/{r['n_fresh']}" if fresh else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def copy_table(crit) -> list:
    """Copied, or new? (criteria rows made with ``copies``): quality.copy_report's measures for the walks, the fresh
    pictures and the halves."""
    from rwalk.walk_core.quality import COPY_CUT  # noqa: PLC0415

    lines = ["", "### Copied, or new? (calibrating the novelty criterion)", "",
             f"*copied*: the share of a picture's 16×16 patches (every 8 px) nearer to some reference patch than "
             f"{COPY_CUT:g} × the halves' novelty — a near-verbatim copy; for *halves*, the left half's patches "
             "against the right half. The novelty criterion compares a distance to the whole reference with one to "
             "half of it, where nearest patches sit further away; *vs a half* is the like-for-like measure: the "
             "picture's novelty against each half in turn (a bank the size of the halves measure's), their mean, "
             "next to the halves' novelty, and how many pictures reach it. Means over the walks and the fresh "
             "pictures above; the criteria table is the goal, this table only reads it.", "",
             "| reference | copied walks (mean · most) | fresh | halves | vs a half: walks | fresh | halves | "
             "≥ halves walks · fresh |", "|---|---|---|---|---|---|---|---|"]
    for r in crit:
        lines.append(f"| {r['reference']} | {r['copied']:.1%} · {r['copied_max']:.1%} | {r['copied_fresh']:.1%} | "
                     f"{r['copied_halves']:.1%} | {r['novelty_half_bank']:.3f} | {r['novelty_half_bank_fresh']:.3f} | "
                     f"{r['novelty_halves']:.3f} | {r['half_bank_pass']}/{r['n']} · "
                     f"{r['half_bank_pass_fresh']}/{r['n_fresh']} |")
    walks = sum(r["half_bank_pass"] for r in crit)
    fresh = sum(r["half_bank_pass_fresh"] for r in crit)
    lines += ["", f"Against a half: {walks} of {sum(r['n'] for r in crit)} walks and {fresh} of "
              f"{sum(r['n_fresh'] for r in crit)} fresh pictures are at least as far from the reference as its halves "
              f"are from each other; the most copied walk has {max(r['copied_max'] for r in crit):.1%} of its "
              "patches copied."]
    return lines


def render(timing, crit, transfer, command: str, crit_size: int, tradeoff=(), guided=(), guided_settings=()) -> str:
    from rwalk.bench.report import machine_info  # noqa: PLC0415

    lines = ["## Weight-free targets (issue 3)", "", "```", command, "```", ""]
    lines += [f"Machine: {', '.join(f'{k} {v}' for k, v in machine_info().items())}.", ""]
    from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, PatchSpec  # noqa: PLC0415

    walk_text = f"{WALK}, {STEPS} levels (karras), s_noise {WALK_S_NOISE:g}"
    lines += ["### Patch target: time, memory, reproducibility", "",
              f"The patch target's walk ({walk_text}; palette {PatchSpec.palette:g} while sigma ≥ "
              f"{PatchSpec.palette_sigma:g}) from the 256×256 `painting` reference, target building "
              "included, in a fresh process with 2 torch threads; median of the runs, peak RSS of the process "
              "(Python, torch and the pack included); *identical* = every run gave the same bits.", "",
              "| output | seconds | peak MiB | identical | runs | goal |", "|---|---|---|---|---|---|"]
    goals = {128: "≤ 4 s", 256: "≤ 15 s"}
    for r in timing:
        lines.append(f"| {r['size']}×{r['size']} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | "
                     f"{'yes' if r['identical'] else 'NO'} | {r['runs']} | {goals.get(r['size'], '')}, ≤ 1536 MiB |")
    lines += ["", f"### Novel and faithful ({crit_size}×{crit_size} output from a {crit_size}×{crit_size} reference)", "",
              "Means over seeds; *halves* = the same measure between the reference's left and right halves. "
              "Novel: the median distance from output 16×16 patches to their nearest reference patch ≥ the "
              "halves' value. Faithful: colour sliced-W2 and random-feature Gram distance ≤ 1.5 × the halves'. "
              "*fresh* calibrates the criteria: the same measures for fresh pictures of the same procedural "
              f"generator (seeds {FRESH_SEEDS[0]}, {FRESH_SEEDS[1]}, …, {FRESH_SEEDS[-1]} with the reference's "
              "palette: genuinely new samples of the reference's own distribution), their mean. The pass columns "
              "count the walks (*walks*) and the fresh pictures (*fresh*) that meet each criterion, and all three.",
              ""]
    lines += criteria_table(crit, fresh=True)
    walks_all = sum(r["all_pass"] for r in crit)
    fresh_all = sum(r["all_pass_fresh"] for r in crit)
    total = {k: sum(r[f"{k}_pass_fresh"] for r in crit) for k in ("novel", "colour", "gram")}
    lines += ["", f"All three criteria: {walks_all} of {sum(r['n'] for r in crit)} walks, and {fresh_all} of "
              f"{sum(r['n_fresh'] for r in crit)} fresh pictures (novel {total['novel']}, colour {total['colour']}, "
              f"Gram {total['gram']}): what a perfect sampler of the references' own generators would score. A new "
              "picture of the same generator is about as far from the reference as the reference's two halves are "
              "from each other, so 'novel' sits at the edge of the references' own distribution."]
    if crit and "copied" in crit[0]:
        lines += copy_table(crit)
    if guided:
        from rwalk.walk_core.guidance import own_statistics as own  # noqa: PLC0415

        lines += ["", "### The same walks with their own texture statistics as guidance", "",
                  "The same references, seeds and walk, guided by `walk_core.guidance.own_statistics` (the "
                  "`faithful_patches` workflow): a style energy term (StyleEncoder `random`, "
                  f"`{own.STATISTICS}`, encoder seed {own.ENCODER_SEED} — not the Gram measure's seed 0) at weight "
                  f"{own.STYLE_WEIGHT:g} over the first {own.STYLE_END:.0%} of the walk, against the reference "
                  "itself.", ""]
        lines += criteria_table(guided, fresh=False)
        lines += ["", f"All three criteria: {sum(r['all_pass'] for r in guided)} of {sum(r['n'] for r in guided)} "
                  f"walks (without guidance: {walks_all}); novel {sum(r['novel_pass'] for r in guided)}, colour "
                  f"{sum(r['colour_pass'] for r in guided)}, Gram {sum(r['gram_pass'] for r in guided)}."]
    if guided_settings:
        lines += ["", "Guidance settings, each measure divided by its halves value and averaged over the five "
                  "references and the seeds (as in the trade-off table below), and the walks passing all three "
                  "criteria:", "",
                  "| style weight · end | walk · steps | s_noise | novelty / halves | colour SW2 / halves | "
                  "Gram / halves | all three | walks |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['style_weight']:g} · {r['style_end']:.0%} | {r['walk']} · {r['steps']} | {r['s_noise']:g} | "
                  f"{r['novelty']:.2f} | {r['colour_swd']:.2f} | {r['gram']:.2f} | {r['all_pass']} | {r['n']} |"
                  for r in guided_settings]
    if tradeoff:
        lines += ["", "### The target's settings and its walk: structure against novelty", "",
                  "Each measure divided by its halves value, averaged over the five references and the seeds "
                  "(novelty: higher is more novel, goal ≥ 1; colour and Gram: lower is more faithful, goal ≤ 1.5), "
                  "and the walks passing all three criteria. "
                  "patch_size is the patch side at the coarse pyramid levels, fine_patch_size at the three finest "
                  "(where a patch covers at most 4 × its side in output pixels, the scale of the novelty measure's "
                  "16×16 patches). Smaller patches there recombine the references in smaller pieces where detail is "
                  f"set: more novel ({PatchSpec.fine_patch_size} is the default; fine_patch_size = patch_size is one "
                  "size everywhere). Smaller patches at the coarse levels too break the references' arrangement into "
                  "smaller pieces, and large structure (brick courses, a painting's layout) is lost — "
                  f"{PatchSpec.patch_size} is the default there for that reason. A higher level_sigma hands over to "
                  "finer levels earlier, so coarse levels copy less of the references' arrangement: more novel, less "
                  f"faithful ({PatchSpec.level_sigma:g} is the default). Balance discounts the bank patches that many "
                  "pixels pile onto at the dense (coarse) levels, so the picture's patch mix stays close to the "
                  f"references' ({PatchSpec.balance:g} is the default; 0 is the plain posterior). context weighs "
                  "each patch's surroundings one level up into its logit, so the finer levels keep the arrangement "
                  f"the coarser ones set ({PatchSpec.context:g} is the default; 0 = off). palette is the "
                  "weight of the palette hold's step (0 = off) and palette_sigma the sigma down to which it acts "
                  f"(0 = to the end; {PatchSpec.palette:g} and {PatchSpec.palette_sigma:g} are the defaults). The "
                  "walk: s_noise is EDM's S_noise (every fresh noise draw multiplied by it): the patch target's "
                  "pictures keep less fine detail than the references, and more fresh noise per step gives some of "
                  "it back — more novel, and with the palette hold the colours stay ("
                  f"{walk_text} is what the example workflows and every other table here use).", "",
                  "| patch_size | fine_patch_size | level_sigma | balance | context | palette | palette_sigma | "
                  "walk · steps | s_noise | novelty / halves | colour SW2 / halves | Gram / halves | all three | "
                  "walks |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['patch_size']} | {r['fine_patch_size']} | {r['level_sigma']:g} | {r['balance']:g} | "
                  f"{r['context']:g} | "
                  f"{r['palette']:g} | {r['palette_sigma']:g} | {r['walk']} · {r['steps']} | "
                  f"{r['s_noise']:g} | {r['novelty']:.2f} | {r['colour_swd']:.2f} | {r['gram']:.2f} | "
                  f"{r['all_pass']} | {r['n']} |" for r in tradeoff]
    lines += ["", "### Photo style transfer (the `photo` content in the style of the `painting`)", "",
              f"Walk from the content noised to denoise 0.7 (the patch target's walk: {walk_text}). SSIM of "
              "luminance against the photo "
              "(goal ≥ 0.5) and colour sliced-W2 against the style image (goal ≤ 1.5 × the style's halves value).", "",
              "| content_weight | SSIM mean | SSIM min | colour SW2 | 1.5 × halves | colour pass | Gram |",
              "|---|---|---|---|---|---|---|"]
    for r in transfer:
        lines.append(f"| {r['content_weight']:g} | {r['ssim']:.3f} | {r['ssim_min']:.3f} | {r['colour_swd']:.3f} | "
                     f"{1.5 * r['colour_floor']:.3f} | {r['colour_pass']}/{r['n']} | {r['gram']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        size, ref_size, seed, threads = map(int, argv[1:5])
        print(json.dumps(one_walk(size, ref_size, seed, threads)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--quick", action="store_true", help=(
        "a smoke run (~3 min): 128 px criteria, two seeds, fewer fresh pictures and trade-off rows; its figures "
        "are not the benchmark's"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md", help=(
        "the Markdown file whose weight-free section is replaced (default: docs/BENCHMARKS.md)"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(2)
    started = time.perf_counter()
    timing = timed_cases((128, 256), 2 if args.quick else 3, 2)
    crit_size = 128 if args.quick else 256
    seeds = range(2) if args.quick else range(4)
    crit = criteria_rows(seeds, crit_size, FRESH_SEEDS[:3] if args.quick else FRESH_SEEDS, copies=True)
    guided = criteria_rows(seeds, crit_size, (), {})
    transfer = transfer_rows(seeds, crit_size, (3.0, 10.0) if args.quick else (1.0, 3.0, 10.0, 30.0))
    old_walk = {"walk": "euler_ancestral", "steps": 30, "s_noise": 1.15}  # the patch workflows' walk until the hold
    settings = [{}, {"palette": 0.0}, {"palette_sigma": 0.0}, {"s_noise": 1.15}, old_walk, {**old_walk, "palette": 0.0}]
    if not args.quick:
        settings += [{"s_noise": 1.3}, {"fine_patch_size": 7}, {"fine_patch_size": 3}, {"balance": 0.0},
                     {"patch_size": 5}, {"patch_size": 3, "fine_patch_size": 3}, {"level_sigma": 0.15},
                     {"level_sigma": 0.25}, {"level_sigma": 0.4}, {"level_sigma": 0.6}, {"level_sigma": 1.5},
                     {"context": 0.3}, {"context": 1.0}, {"context": 0.3, "fine_patch_size": 3}]
    tradeoff = tradeoff_rows(range(1) if args.quick else range(2), crit_size, settings)
    guided_settings = guided_setting_rows(range(1) if args.quick else range(2), crit_size,
                                          [{}] if args.quick else [{}, {"style_weight": 0.5}, {"style_end": 1.0}])
    command = ".venv/bin/python bench/patch.py" + (" --quick" if args.quick else "")
    text = render(timing, crit, transfer, command, crit_size, tradeoff, guided, guided_settings)
    text += f"\nWhole run: {time.perf_counter() - started:.0f} s.\n"
    from rwalk.bench.sections import replace_section  # noqa: PLC0415

    replace_section(args.out, "weight-free", text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
