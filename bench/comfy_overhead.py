"""Per-step overhead of WalkSampler against ComfyUI's KSampler, inside ComfyUI (issue 5, part 7; goal <= 1.05).

Run with ComfyUI's interpreter (ComfyUI is imported in-process from the checkout, on the CPU)::

    $WALK_COMFYUI/venv/bin/python bench/comfy_overhead.py --comfyui $WALK_COMFYUI [--quick] [--write]

A random-weight, small-UNet SD1.5-family checkpoint is written into a temporary folder by
tests/comfyui_checkpoint.py (test-only), loaded as CheckpointLoaderSimple does
(``comfy.sd.load_checkpoint_guess_config``), and the prompts are encoded with ComfyUI's CLIPTextEncode. Then,
under ``torch.inference_mode()`` as ComfyUI's executor runs nodes, on the same model, seed, steps, size and batch:

* **a**: ComfyUI's ``KSampler`` (euler_ancestral, karras, cfg 7) on an ``EmptyLatentImage``;
* **b**: the pack's ``TargetDistributionModel`` (no VAE) -> ``GuidanceStepCFG`` (weight 7) -> ``WalkSampler``
  (euler_ancestral, karras, eta 1, the model's own sigma range, no trajectory).

Each runs once to warm up, then they alternate (a b, b a, a b, ...) for ``repeats`` pairs. Reported: the median
wall time per run and per step, the median of the per-pair ratios b/a, the overhead per step in ms, and the
UNet evaluations per run (a forward pre-hook on the diffusion model counts calls and their batch sizes, so both
are seen to make the same calls: cond and uncond batched together). ``--write`` replaces the section
``comfyui-overhead`` of docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
PACK = "rwalk"  # the package name the pack is loaded under (as tests/conftest.py and bench/run.py do)
SECTION = "comfyui-overhead"
GOAL = 1.05
CFG = 7.0
PROMPT = "a photograph of an astronaut riding a horse"
log = logging.getLogger("bench.comfy_overhead")


@dataclass(frozen=True)
class Settings:
    size: int = 256  # width = height in pixels (latent size / 8)
    steps: int = 10
    batch: int = 1
    repeats: int = 9  # timed a/b pairs after one warm-up run of each (short runs, many pairs: robust to load)
    seed: int = 0


QUICK = Settings(size=128, steps=10, repeats=3)


@dataclass
class Timings:
    seconds: List[float] = field(default_factory=list)  # wall time of each timed run
    calls: List[List[int]] = field(default_factory=list)  # per run: batch size of every UNet call
    unet: List[float] = field(default_factory=list)  # per run: seconds inside the UNet's forward


def load_by_path(name: str, path: Path, package_dir: Path = None):
    """Import ``path`` as module ``name``; with ``package_dir`` as a package, the way ComfyUI loads a custom
    node folder (``spec_from_file_location`` of its ``__init__.py`` with the folder as search location)."""
    kwargs = {"submodule_search_locations": [str(package_dir)]} if package_dir is not None else {}
    spec = importlib.util.spec_from_file_location(name, path, **kwargs)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def machine(checkout: Path) -> dict:
    import torch

    from rwalk.bench.report import cpu_model  # noqa: PLC0415  (the pack is loaded as rwalk)

    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "comfyui": commit}


class CallCounter:
    """Counts the diffusion model's forward calls, their batch sizes and the time spent inside them (forward
    hooks: nothing in the sampling path changes)."""

    def __init__(self, module):
        self.batches: List[int] = []
        self.seconds = 0.0
        self._start = 0.0
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, _module, args):
        self.batches.append(int(args[0].shape[0]))
        self._start = time.perf_counter()

    def _post(self, _module, _args, _out):
        self.seconds += time.perf_counter() - self._start

    def take(self) -> tuple:
        """(batch sizes of the calls, seconds inside them) since the last take."""
        out = (self.batches, self.seconds)
        self.batches, self.seconds = [], 0.0
        return out


def build(comfy_dir: Path, workdir: Path, settings: Settings) -> dict:
    """ComfyUI's model, prompts and empty latent, and the pack's nodes: everything both runs need."""
    import torch

    ckpt = load_by_path("comfyui_checkpoint", ROOT / "tests" / "comfyui_checkpoint.py")
    comfy = ckpt.import_comfy(comfy_dir, "cpu")
    # ComfyUI's own top-level ``nodes`` module (KSampler, CLIPTextEncode, ...), not the pack's nodes/ (loaded as
    # rwalk.nodes below): by name, so that no reader takes it for an absolute import of the pack
    comfy_nodes = importlib.import_module("nodes")

    path = workdir / "models" / "checkpoints" / "random_sd15.safetensors"
    t0 = time.perf_counter()
    ckpt.write_checkpoint(comfy, path, settings.seed)
    log.info("wrote the random SD1.5-family checkpoint (%.0f MB) in %.1f s", path.stat().st_size / 1e6,
             time.perf_counter() - t0)
    pack = load_by_path(PACK, ROOT / "__init__.py", ROOT)
    table = pack.NODE_CLASS_MAPPINGS
    t0 = time.perf_counter()
    with torch.inference_mode():  # every node below runs as ComfyUI's executor would run it
        model, clip, _vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
        positive = comfy_nodes.CLIPTextEncode().encode(clip, PROMPT)[0]
        negative = comfy_nodes.CLIPTextEncode().encode(clip, "")[0]
        latent = comfy_nodes.EmptyLatentImage().generate(settings.size, settings.size, settings.batch)[0]
        target = table["TargetDistributionModel"]().make(model, positive, negative)[0]
        chain = table["GuidanceStepCFG"]().add(weight=CFG, start_percent=0.0, end_percent=1.0,
                                               schedule="constant")[0]
    log.info("loaded (%s) and encoded the prompts in %.1f s", type(model.model.model_config).__name__,
             time.perf_counter() - t0)
    return {"comfy": comfy, "nodes": comfy_nodes, "model": model, "positive": positive, "negative": negative,
            "latent": latent, "walk_sampler": table["WalkSampler"], "target": target, "chain": chain}


def runners(parts: dict, settings: Settings) -> dict:
    """{'a': KSampler, 'b': WalkSampler}, each a no-argument call returning its LATENT samples."""
    s = settings

    def ksampler():
        return parts["nodes"].KSampler().sample(parts["model"], s.seed, s.steps, CFG, "euler_ancestral", "karras",
                                                parts["positive"], parts["negative"], parts["latent"],
                                                denoise=1.0)[0]["samples"]

    def walk_sampler():
        return parts["walk_sampler"]().sample(
            parts["target"], walk="euler_ancestral", schedule="karras", steps=s.steps, seed=s.seed,
            batch_size=s.batch, width=s.size, height=s.size, sigma_max=0.0, sigma_min=0.0, eta=1.0, s_noise=1.0,
            churn=0.0, snr=0.0, corrector_steps=1, order=0, denoise=1.0, trajectory_every=0,
            guidance=parts["chain"])[1]["samples"]

    return {"a": ksampler, "b": walk_sampler}


def check_latents(latents: dict) -> None:
    """Both LATENT outputs finite and of one shape."""
    shapes = {k: tuple(v.shape) for k, v in latents.items()}
    if len(set(shapes.values())) != 1:
        raise AssertionError(f"LATENT shapes differ: KSampler {shapes['a']}, WalkSampler {shapes['b']}")
    for key, name in (("a", "KSampler"), ("b", "WalkSampler")):
        x = latents[key].float()
        if not bool(x.isfinite().all()):
            raise AssertionError(f"{name}'s LATENT has non-finite values")
        log.info("%s LATENT: shape %s, std %.3f", name, shapes[key], float(x.std()))


def measure(run: dict, counter: CallCounter, settings: Settings) -> dict:
    """Warm up each, then alternate a/b (order swapped every other pair) for ``settings.repeats`` pairs."""
    import torch

    timings = {"a": Timings(), "b": Timings()}
    latents = {}
    with torch.inference_mode():  # as ComfyUI's executor runs nodes
        for key in ("a", "b"):
            t0 = time.perf_counter()
            latents[key] = run[key]()
            counter.take()
            log.info("warm-up %s: %.2f s", key, time.perf_counter() - t0)
        for i in range(settings.repeats):
            for key in (("a", "b") if i % 2 == 0 else ("b", "a")):
                t0 = time.perf_counter()
                run[key]()
                timings[key].seconds.append(time.perf_counter() - t0)
                batches, inside = counter.take()
                timings[key].calls.append(batches)
                timings[key].unet.append(inside)
            log.info("pair %d/%d: a %.3f s (UNet %.3f s), b %.3f s (UNet %.3f s)", i + 1, settings.repeats,
                     timings["a"].seconds[-1], timings["a"].unet[-1], timings["b"].seconds[-1], timings["b"].unet[-1])
    check_latents(latents)
    return timings


def summary(timings: dict, settings: Settings) -> dict:
    a, b = timings["a"], timings["b"]
    ratios = [tb / ta for ta, tb in zip(a.seconds, b.seconds)]
    extra = [1e3 * (tb - ta) / settings.steps for ta, tb in zip(a.seconds, b.seconds)]
    med = {k: statistics.median(t.seconds) for k, t in timings.items()}
    calls = {k: (len(t.calls[0]), sorted(set(n for run in t.calls for n in run)),
                 all(run == t.calls[0] for run in t.calls)) for k, t in timings.items()}
    outside_runs = {k: [1e3 * (w - u) / settings.steps for w, u in zip(t.seconds, t.unet)] for k, t in timings.items()}
    outside = {k: statistics.median(v) for k, v in outside_runs.items()}
    return {"median": med, "per_step_ms": {k: 1e3 * v / settings.steps for k, v in med.items()},
            "unet_ms": {k: statistics.median(1e3 * u / settings.steps for u in t.unet) for k, t in timings.items()},
            "outside_ms": outside, "best_ratio": min(b.seconds) / min(a.seconds),
            "ratio": statistics.median(ratios), "ratios": ratios,
            "overhead_ms": statistics.median(extra), "calls": calls,
            "outside_extra_ms": statistics.median(ob - oa for oa, ob in zip(outside_runs["a"], outside_runs["b"])),
            "same_calls": a.calls[0] == b.calls[0]}


def render(result: dict, settings: Settings, info: dict, command: str, whole: float) -> str:
    s, r = settings, result
    met = r["ratio"] <= GOAL
    names = {"a": "ComfyUI KSampler", "b": "WalkSampler (TargetDistributionModel + GuidanceStepCFG)"}
    lines = ["## WalkSampler against KSampler inside ComfyUI (issue 5, part 7)\n",
             f"Command: `{command}`. Machine: {info['cpu']}, {info['cores']} cores, {info['threads']} torch threads, "
             f"CPU only; torch {info['torch']}, Python {info['python']}, ComfyUI `{info['comfyui']}`; 1-minute load "
             f"average {info['load'][0]:.1f} before, {info['load'][1]:.1f} after (the latter counts this run's own "
             f"{info['threads']} threads).\n",
             "ComfyUI imported in-process; a random-weight SD1.5-family checkpoint with a small UNet (44 M "
             "parameters, tests/comfyui_checkpoint.py) loaded by `comfy.sd.load_checkpoint_guess_config`, prompts "
             "by ComfyUI's CLIPTextEncode (positive and empty negative); every run under `torch.inference_mode()`. "
             f"Both: euler_ancestral, karras (the model's sigma range), cfg {CFG:g}, {s.steps} steps, seed {s.seed}, "
             f"{s.size}x{s.size} pixels ({s.size // 8}x{s.size // 8} latent), batch {s.batch}. One warm-up run "
             f"each, then {s.repeats} alternating pairs; medians. WalkSampler: no VAE, trajectory_every 0.\n",
             "| sampler | median s/run | ms/step | in the UNet, ms/step | outside it, ms/step | UNet calls/run | "
             "batch per call |", "|---|---|---|---|---|---|---|"]
    for key in ("a", "b"):
        n, batches, _ = r["calls"][key]
        lines.append(f"| {names[key]} | {r['median'][key]:.3f} | {r['per_step_ms'][key]:.1f} | "
                     f"{r['unet_ms'][key]:.1f} | {r['outside_ms'][key]:.2f} | {n} | {', '.join(map(str, batches))} |")
    lines += ["", f"Ratio WalkSampler / KSampler (median of per-pair ratios): **{r['ratio']:.3f}** "
              f"(pairs: {', '.join(f'{x:.3f}' for x in r['ratios'])}; fastest run against fastest run "
              f"{r['best_ratio']:.3f}). Overhead per step: **{r['outside_extra_ms']:+.2f} ms** outside the UNet, "
              f"{r['overhead_ms']:+.1f} ms of wall time (the latter within the run-to-run noise). "
              "Same UNet calls (count and batch sizes) in both: "
              f"{'yes' if r['same_calls'] else '**no**'}. LATENT outputs finite and of the same shape.\n",
              "*Outside the UNet* = wall time minus the time inside the diffusion model's forward (forward hooks), "
              "per step: each sampler's own cost, ComfyUI's sampling machinery included, and the figure least "
              "disturbed by other load on the machine. Both overheads are medians over pairs of (b - a) / steps; a "
              "pair whose two runs saw different machine load shows as an outlier ratio, which the medians "
              "discount. The ratio depends on the UNet's speed: this small UNet on a CPU takes far longer per step "
              "than a full one on a GPU, so the same per-step overhead weighs less here than it would there.\n",
              "| goal | result |", "|---|---|",
              f"| per-step time within {GOAL:g}x of KSampler's | {'met' if met else '**not met**'} "
              f"({r['ratio']:.3f}) |", "", f"Whole run: {whole:.0f} s (checkpoint writing and loading included).\n"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, default=os.environ.get("WALK_COMFYUI") or None,
                        help="the ComfyUI checkout (default $WALK_COMFYUI); run with its interpreter")
    parser.add_argument("--quick", action="store_true", help=f"about a minute: {QUICK}")
    parser.add_argument("--write", action="store_true", help=f"write the section {SECTION!r} of --out")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--repeats", type=int, help=f"timed a/b pairs (default {Settings.repeats}; --quick "
                                                     f"{QUICK.repeats})")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own, as ComfyUI leaves it)")
    args = parser.parse_args(argv)
    if args.comfyui is None:
        parser.error("--comfyui is required (or set WALK_COMFYUI to a ComfyUI checkout)")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats={args.repeats} is not allowed; expected >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads={args.threads} is not allowed; expected >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    settings = QUICK if args.quick else Settings()
    if args.repeats is not None:
        settings = replace(settings, repeats=args.repeats)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="walk_comfy_overhead_") as tmp:
        parts = build(args.comfyui, Path(tmp), settings)
        parts["comfy"].utils.PROGRESS_BAR_ENABLED = False  # no tqdm bars in the log (the same for both)
        counter = CallCounter(parts["model"].model.diffusion_model)
        result = summary(measure(runners(parts, settings), counter, settings), settings)
    info = machine(args.comfyui)
    info["load"] = (load_before, os.getloadavg()[0])
    command = "$WALK_COMFYUI/venv/bin/python bench/comfy_overhead.py --comfyui $WALK_COMFYUI" + \
        (" --quick" if args.quick else "") + (f" --repeats {args.repeats}" if args.repeats else "") + \
        (f" --threads {args.threads}" if args.threads else "") + (" --write" if args.write else "")
    text = render(result, settings, info, command, time.perf_counter() - started)
    for line in text.splitlines():
        if line.strip():
            log.info("%s", line)
    if args.write:
        from rwalk.bench.sections import replace_section  # noqa: PLC0415  (the pack is loaded as rwalk)

        replace_section(args.out, SECTION, text)
        log.info("wrote section %r of %s", SECTION, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
