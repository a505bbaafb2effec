"""Walks that never blow up (issue 31 §3), written as the ``cfg-stability`` section of docs/BENCHMARKS.md.

    .venv/bin/python bench/cfg_stability.py            # 10-30 minutes on 2 cores (others running beside it)
    .venv/bin/python bench/cfg_stability.py --quick    # 5-10 minutes

* **CFG scale 4 and 8, NFE 5-20.** Every walk on the guided class mixture (``bench/targets.py``: the exact
  class-0 mixture as the conditional branch, the whole mixture as the unconditional one), called two ways: as a
  plain k-diffusion sampler on the CFG-combined denoiser ``u + s (c - u)`` (*unmarked*: the walk is not told
  that it is guided), and on the pack's guidance chain (*marked*: ``GuidanceChain.wrap`` sets ``guided``).
  The peers run on the unmarked denoiser, from the same initial noise. A run *diverges* (non-finite or huge
  samples) or goes *off target* (more than 1 % of the samples farther from every mode than the exact samples'
  median RMS) as ``bench/scoring.py`` judges; the cells give the diversity kept (spread over the exact
  conditional's).
* **The guard on smooth denoisers (cfg 1).** The higher-order walks with their step guard and without
  (``guard=0``) on the 2-D ring and the 768-D mixture, and whether the results are bit-identical.
* **Walk as SAMPLER** (``walk_core.bridge.walk_sampler_function``) called as ComfyUI's KSAMPLER calls it
  (``KSamplerX0Inpaint`` whose ``inner_model`` is the GUIDER): ``adams`` at NFE 10 on the 768-D mixture under a
  scale-1 GUIDER (full order) and under one that shows no scale (marked guided, as before issue 31).
* **Restart** (Xu et al. 2023) at moderate NFE beside the walks and peers closest to it.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench.cfg_stability")

SECTION = "cfg-stability"
SCALES = (4.0, 8.0)
PEERS = ("comfy:deis", "comfy:ipndm_v", "comfy:res_multistep", "comfy:er_sde", "comfy:sa_solver", "comfy:heun",
         "comfy:dpmpp_2m", "comfy:dpmpp_2m_sde", "comfy:dpmpp_sde", "comfy:euler_ancestral", "kd:dpmpp_2m",
         "kd:heun", "kd:lms")
GUARDED = ("heun", "edm", "adams", "er_sde", "restart")


@dataclass(frozen=True)
class Preset:
    budgets: Tuple[int, ...]
    samples: int
    floor_repeats: int
    accuracy_budgets: Tuple[int, ...] = (5, 10, 20)
    restart_budgets: Tuple[int, ...] = (25, 50)
    restart_walks: Tuple[str, ...] = ("restart", "heun", "edm", "er_sde", "euler_ancestral")


PRESETS = {
    "default": Preset(budgets=(5, 6, 7, 8, 10, 12, 14, 17, 20), samples=500, floor_repeats=6),
    "quick": Preset(budgets=(5, 7, 10, 14, 20), samples=300, floor_repeats=4),
}


@dataclass
class Run:
    status: str
    values: Dict[str, float] = field(default_factory=dict)
    samples: object = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _cfg_denoiser(target, scale: float):
    """The CFG-combined denoiser as any k-diffusion sampler gets it: a plain function, not marked guided."""
    cond, uncond = target.walk_target.denoiser, target.walk_target.unconditional

    def combined(x, sigma, **_):
        u = uncond(x, sigma)
        return u + scale * (cond(x, sigma) - u)

    return combined


def _run(scorer, sampler, model, budget: int, x, seed: int, keep: bool = False) -> Run:
    from rwalk.walk_core import WalkDivergedError, make_sigmas

    t = scorer.target
    sigmas = make_sigmas("karras", sampler.steps_for(budget), t.sigma_min, t.sigma_max)
    try:
        out = sampler.run(model, x.clone(), sigmas, seed)
    except WalkDivergedError:
        return Run("diverged")
    except Exception as err:  # noqa: BLE001 -- one sampler's failure must not stop the benchmark
        return Run("diverged" if "finite" in str(err).lower() else "error")
    status, _, values = scorer.evaluate(out)
    return Run(status, values, out if keep else None)


def cfg_grid(preset: Preset, peers: Dict[str, object]) -> Dict[Tuple[str, str, float, int], Run]:
    """(row, kind, scale, budget) -> Run; kind 'unmarked', 'marked' (pack only) or 'peer'."""
    from rwalk.bench.accuracy import NOISE_STREAM, initial_noise
    from rwalk.bench.chains import guidance_chain
    from rwalk.bench.samplers import pack_samplers
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import class_target

    target = class_target()
    scorer = Scorer(target, preset.samples, floor_repeats=preset.floor_repeats)
    x = initial_noise(preset.samples, target.shape, 0, target.sigma_max)
    grid = {}
    for scale in SCALES:
        plain = _cfg_denoiser(target, scale)
        marked = guidance_chain("cfg", scale).wrap(target.walk_target, target.sigma_max, target.sigma_min)
        for name, sampler in pack_samplers().items():
            for kind, model in (("unmarked", plain), ("marked", marked)):
                for budget in preset.budgets:
                    grid[(name, kind, scale, budget)] = _run(scorer, sampler, model, budget, x, NOISE_STREAM)
            log.info("cfg %g %s: %s", scale, name, " ".join(
                f"{b}:{grid[(name, 'unmarked', scale, b)].status[:3]}/{grid[(name, 'marked', scale, b)].status[:3]}"
                for b in preset.budgets))
        for name, sampler in peers.items():
            for budget in preset.budgets:
                grid[(name, "peer", scale, budget)] = _run(scorer, sampler, plain, budget, x, NOISE_STREAM)
            log.info("cfg %g %s: %s", scale, name,
                     " ".join(f"{b}:{grid[(name, 'peer', scale, b)].status[:3]}" for b in preset.budgets))
    return grid


def guard_cost(preset: Preset) -> List[dict]:
    """The guarded walks with and without the guard on the unguided ring and 768-D mixture."""
    import torch

    from rwalk.bench.accuracy import NOISE_STREAM, initial_noise
    from rwalk.bench.samplers import pack_sampler
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import image_target, ring_target

    rows = []
    for target, keys in ((ring_target(), ("sw2", "tv")), (image_target(), ("detail", "cov_err"))):
        scorer = Scorer(target, preset.samples, floor_repeats=preset.floor_repeats)
        x = initial_noise(preset.samples, target.shape, 0, target.sigma_max)
        for name in GUARDED:
            for budget in preset.accuracy_budgets:
                on = _run(scorer, pack_sampler(name), target.walk_target.denoiser, budget, x, NOISE_STREAM, True)
                off = _run(scorer, pack_sampler(name, guard=0.0), target.walk_target.denoiser, budget, x,
                           NOISE_STREAM, True)
                same = on.samples is not None and off.samples is not None and bool(torch.equal(on.samples,
                                                                                                off.samples))
                rows.append({"target": target.key, "walk": name, "budget": budget, "keys": keys, "on": on,
                             "off": off, "identical": same, "floors": {k: scorer.floors[k] for k in keys}})
            log.info("guard cost %s %s done", target.key, name)
    return rows


class GuiderStandIn:
    """What Walk as SAMPLER sees of a ComfyUI GUIDER: ``cfg`` (absent: ``cfg=None``), the model's EDM/eps
    ``model_sampling`` under ``inner_model``, and the prediction as its call."""

    def __init__(self, denoiser, cfg: Optional[float], sigma_min: float, sigma_max: float):
        from rwalk.bench.peer_comfy import EpsModelSampling

        self.denoiser = denoiser
        if cfg is not None:
            self.cfg = cfg
        self.inner_model = types.SimpleNamespace(model_sampling=EpsModelSampling(sigma_min, sigma_max))

    def __call__(self, x, sigma, model_options=None, seed=None):
        return self.denoiser(x, sigma)


class KSamplerModelStandIn:
    """ComfyUI's ``KSamplerX0Inpaint``: the model a SAMPLER function gets, the GUIDER as its ``inner_model``."""

    def __init__(self, guider):
        self.inner_model = guider

    def __call__(self, x, sigma, denoise_mask=None, model_options=None, seed=None):
        return self.inner_model(x, sigma, model_options=model_options, seed=seed)


def comfy_sampler_detail(preset: Preset, peers: Dict[str, object], budget: int = 10) -> List[dict]:
    """adams through Walk as SAMPLER under a scale-1 GUIDER and under one without a scale, and the peers."""
    from rwalk.bench.accuracy import NOISE_STREAM, initial_noise
    from rwalk.bench.samplers import pack_sampler
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import image_target
    from rwalk.walk_core import make_sigmas
    from rwalk.walk_core.bridge import walk_sampler_function

    target = image_target()
    scorer = Scorer(target, preset.samples, floor_repeats=preset.floor_repeats)
    x = initial_noise(preset.samples, target.shape, 0, target.sigma_max)
    sigmas = make_sigmas("karras", pack_sampler("adams").steps_for(budget), target.sigma_min, target.sigma_max)
    rows = []
    for label, cfg in (("GUIDER scale 1 (CFGGuider cfg 1, BasicGuider)", 1.0),
                       ("GUIDER showing no scale (counts as guided; every GUIDER before issue 31)", None)):
        model = KSamplerModelStandIn(GuiderStandIn(target.walk_target.denoiser, cfg, target.sigma_min,
                                                   target.sigma_max))
        out = walk_sampler_function("adams")(model, x.clone(), sigmas, extra_args={"seed": NOISE_STREAM,
                                                                                   "model_options": {}})
        status, _, values = scorer.evaluate(out)
        rows.append({"label": f"`adams` via Walk as SAMPLER, {label}", "status": status, "values": values})
    for name in ("comfy:dpmpp_2m", "kd:dpmpp_2m", "comfy:deis"):
        if name in peers:
            run = _run(scorer, peers[name], target.walk_target.denoiser, budget, x, NOISE_STREAM)
            rows.append({"label": name, "status": run.status, "values": run.values})
    for row in rows:
        row["floors"] = {k: scorer.floors[k] for k in ("detail", "cov_err")}
    return rows


def restart_rows(preset: Preset, peers: Dict[str, object]) -> List[dict]:
    from rwalk.bench.accuracy import NOISE_STREAM, initial_noise
    from rwalk.bench.samplers import pack_sampler
    from rwalk.bench.scoring import Scorer
    from rwalk.bench.targets import image_target, ring_target

    rows = []
    for target, keys in ((ring_target(), ("sw2", "tv", "cov_err")), (image_target(), ("detail", "cov_err", "tv"))):
        scorer = Scorer(target, preset.samples, floor_repeats=preset.floor_repeats)
        x = initial_noise(preset.samples, target.shape, 0, target.sigma_max)
        samplers = {name: pack_sampler(name) for name in preset.restart_walks}
        samplers.update({n: peers[n] for n in ("comfy:dpmpp_2m_sde", "comfy:er_sde", "comfy:dpmpp_sde") if n in peers})
        for name, sampler in samplers.items():
            for budget in preset.restart_budgets:
                run = _run(scorer, sampler, target.walk_target.denoiser, budget, x, NOISE_STREAM)
                rows.append({"target": target.key, "row": name, "budget": budget, "run": run, "keys": keys,
                             "floors": {k: scorer.floors[k] for k in keys}})
        log.info("restart %s done", target.key)
    return rows


# ---------------------------------------------------------------- the report


def _cell(run: Run) -> str:
    if run.status == "diverged":
        return "**diverged**"
    mark = "" if run.ok else f" **{run.status}**"
    return f"{run.values.get('diversity', float('nan')):.2f}{mark}"


def _failures(grid, kinds: Sequence[str]) -> List[str]:
    return [f"`{row}` {kind} cfg {scale:g} NFE {budget} ({run.status})" for (row, kind, scale, budget), run in
            grid.items() if kind in kinds and not run.ok]


def render(preset: Preset, grid, cost, comfy, restart, command: str, seconds: float, peer_note: str) -> str:
    budgets = preset.budgets
    pack_runs = [r for (row, kind, _, _), r in grid.items() if kind != "peer"]
    bad = _failures(grid, ("unmarked", "marked"))
    peer_rows = sorted({row for (row, kind, _, _) in grid if kind == "peer"})
    bad_peers = sorted({row for (row, kind, _, _), r in grid.items() if kind == "peer" and not r.ok})
    lines = [f"## Walks that never blow up: CFG scale 4 and 8, NFE {budgets[0]}–{budgets[-1]} (issue 31 §3)", "",
             f"Command: `{command}` ({seconds / 60:.0f} min). {preset.samples} samples per run, item i of the initial "
             f"noise from seed i; floors from {preset.floor_repeats} exact sets. {peer_note}", "",
             "| goal | criterion | value | met | peers |", "|---|---|---|---|---|",
             f"| CFG scale 4 and 8, NFE {budgets[0]}–{budgets[-1]}: no walk diverges or goes off target, "
             "marked or not "
             f"| every walk × {{unmarked, marked}} × scale × NFE | {len(bad)} of {len(pack_runs)} runs"
             + (": " + ", ".join(bad) if bad else "") + f" | {'**met**' if not bad else 'not met'} | "
             f"{len(bad_peers)} of {len(peer_rows)} peers diverge or go off target at some scale and NFE"
             + (": " + ", ".join(f"`{p}`" for p in bad_peers) if bad_peers else "") + " |", ""]
    lines += ["Diversity kept (spread over the exact conditional's; CFG shrinks it below 1) per NFE; **off-target** / "
              "**diverged** as `bench/scoring.py` judges. *Unmarked*: the walk called as a plain k-diffusion sampler "
              "on the CFG-combined denoiser; *marked*: on the pack's guidance chain (which sets `guided`).", ""]
    for scale in SCALES:
        lines += [f"### CFG scale {scale:g}", "", "| sampler | denoiser | " + " | ".join(f"NFE {b}" for b in budgets)
                  + " |", "|---|---|" + "---|" * len(budgets)]
        rows = sorted({(row, kind) for (row, kind, s, _) in grid if s == scale},
                      key=lambda rk: (rk[1] == "peer", rk[0], rk[1] != "unmarked"))
        for row, kind in rows:
            lines.append(f"| `{row}` | {kind if kind != 'peer' else 'unmarked'} | "
                         + " | ".join(_cell(grid[(row, kind, scale, b)]) for b in budgets) + " |")
        lines.append("")
    lines += ["### The guard on smooth denoisers (cfg 1)", "",
              "Each guarded walk with its default guard and with `guard=0` (off), same initial and step noise. "
              "*Identical*: the two sample sets are bit-identical (the guard never lowered an order).", "",
              "| target | walk | NFE | guard on | guard off | identical |", "|---|---|---|---|---|---|"]
    for r in cost:
        fmt = lambda run: ", ".join(f"{k} {run.values.get(k, float('nan')):.3g}" for k in r["keys"]) + (  # noqa: E731
            "" if run.ok else f" **{run.status}**")
        lines.append(f"| {r['target']} | `{r['walk']}` | {r['budget']} | {fmt(r['on'])} | {fmt(r['off'])} | "
                     f"{'yes' if r['identical'] else 'no'} |")
    floors = {}
    for r in cost:
        floors.setdefault(r["target"], r["floors"])
    lines += ["", "Floors: " + "; ".join(f"{t}: " + ", ".join(f"{k} {v}" for k, v in f.items())
                                          for t, f in floors.items()), ""]
    lines += ["### Walk as SAMPLER under a scale-1 GUIDER", "",
              "768-D mixture (unguided), NFE 10, karras: the fine-detail variance ratio (1 = exact) and the "
              "covariance error (floor " + (str(comfy[0]["floors"]["cov_err"]) if comfy else "–") + ").", "",
              "| sampler | detail | covariance error | status |", "|---|---|---|---|"]
    for r in comfy:
        v = r["values"]
        lines.append(f"| {r['label']} | {v.get('detail', float('nan')):.3f} | {v.get('cov_err', float('nan')):.3g} | "
                     f"{r['status']} |")
    lines += ["", "### Restart at moderate NFE", "",
              "Restart (Xu et al. 2023) with its defaults (the paper's CIFAR-10 interval [0.06, 0.30], 3 Heun steps, "
              "twice) beside the pack's stochastic walks and the peers' SDE samplers.", "",
              "| target | sampler | NFE | metrics | status |", "|---|---|---|---|---|"]
    for r in restart:
        run = r["run"]
        lines.append(f"| {r['target']} | `{r['row']}` | {r['budget']} | "
                     + ", ".join(f"{k} {run.values.get(k, float('nan')):.3g}" for k in r["keys"])
                     + f" | {run.status} |")
    rfloors = {}
    for r in restart:
        rfloors.setdefault(r["target"], r["floors"])
    lines += ["", "Floors: " + "; ".join(f"{t}: " + ", ".join(f"{k} {v}" for k, v in f.items())
                                          for t, f in rfloors.items()), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer budgets and samples: 5-10 minutes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md",
                        help="the report whose cfg-stability section is written (default: docs/BENCHMARKS.md)")
    parser.add_argument("--peers", default="kd,comfy",
                        help="peer sources, comma-separated: kd (k-diffusion), comfy ($WALK_COMFYUI); 'none' for none")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    import torch

    from rwalk.bench.peers import load_peers
    from rwalk.bench.sections import replace_section

    torch.set_num_threads(1)
    preset = PRESETS["quick" if args.quick else "default"]
    sources = () if args.peers == "none" else tuple(p.strip() for p in args.peers.split(",") if p.strip())
    if any(p not in ("kd", "comfy") for p in sources):
        parser.error(f"--peers={args.peers!r} is not allowed; expected kd, comfy, both comma-separated, or none")
    start = time.perf_counter()
    loaded = load_peers(sources).only(PEERS) if sources else None
    peers = dict(loaded.samplers) if loaded else {}
    note = ("Peers: " + ", ".join(f"{g} ({s})" for g, s in loaded.sources.items()) + "." if loaded and loaded.sources
            else "Peers: none loaded.")
    if loaded and loaded.unavailable:
        note += " Not loaded: " + "; ".join(f"{g}: {why}" for g, why in loaded.unavailable.items()) + "."
    grid = cfg_grid(preset, peers)
    cost = guard_cost(preset)
    comfy = comfy_sampler_detail(preset, peers)
    restart = restart_rows(preset, peers)
    command = ".venv/bin/python bench/cfg_stability.py" + (" --quick" if args.quick else "")
    if "comfy" in sources:
        command = "WALK_COMFYUI=<a ComfyUI checkout> " + command
    text = render(preset, grid, cost, comfy, restart, command, time.perf_counter() - start, note)
    replace_section(args.out, SECTION, text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
