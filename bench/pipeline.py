"""The whole benchmark as one function: load the samplers, measure, evaluate the goals, draw, render (and write
when given a path)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from PIL import Image

from .accuracy import TargetAccuracy, measure_accuracy
from .config import BenchConfig
from .goals import evaluate_goals
from .overhead import measure_overhead
from .peers import PeerSet, load_peers
from .plots import convergence_chart, image_grid, scatter_grid, side_by_side
from .ranking import best_rows
from .report import machine_info, render
from .result import BenchResult
from .samplers import Sampler, pack_samplers
from .sections import kept_sections
from .targets import class_target, image_target, ring_target

log = logging.getLogger(__name__)

CHART_METRICS = {"ring": ("sw2", "tv"), "image": ("cov_err", "detail"), "classes": ("diversity", "class_tv")}
BEST_PEERS_SHOWN = 5


def load_samplers(config: BenchConfig, walks: Optional[Sequence[Sampler]] = None) -> Tuple[List[Sampler], PeerSet]:
    """The pack's walks (``walks`` or every registered one) followed by the peers ``config`` asks for."""
    pack = list(pack_samplers().values()) if walks is None else list(walks)
    peers = load_peers(config.peers) if config.peers else PeerSet()
    peers = peers.only(config.peer_names)
    return pack + list(peers.samplers.values()), peers


def bench_targets(config: BenchConfig):
    size = config.image_target
    targets = [(ring_target(), config.ring), (image_target(size.components, size.size, size.rank), config.image)]
    if config.classes is not None:
        targets.append((class_target(size.components, size.size, size.rank), config.classes))
    return targets


def measure(config: BenchConfig, walks: Optional[Sequence[Sampler]] = None, overhead: bool = True) -> BenchResult:
    """Every part of ``config`` (with ``config.threads`` torch threads) as one BenchResult."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        start = time.perf_counter()
        machine = machine_info()
        samplers, peers = load_samplers(config, walks)
        seconds: Dict[str, float] = {"peer loading": time.perf_counter() - start}
        over = None
        if overhead:
            t = time.perf_counter()
            over = measure_overhead(config.overhead, samplers)
            seconds["overhead"] = time.perf_counter() - t
        accuracy = []
        for target, cfg in bench_targets(config):
            t = time.perf_counter()
            accuracy.append(measure_accuracy(target, cfg, samplers))
            seconds[target.key] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - start
        return BenchResult(config.name, over, accuracy, peers, machine, seconds)
    finally:
        torch.set_num_threads(threads)


def _shown_rows(result: TargetAccuracy, metric: str) -> List[str]:
    """The pack's walks (on a guided target each with its best chain) and the peers closest to exact on
    ``metric`` at the plot budget."""
    pack_rows = [r for r in result.rows() if result.sampler_of(r).is_pack]
    ranked = best_rows(result, metric, result.config.plot_nfe, len(pack_rows), pack=True)
    pack, seen = [], set()
    for row in ranked + pack_rows:  # best chain first; walks with no usable run at the plot budget after
        walk = result.sampler_of(row).name
        if walk not in seen:
            seen.add(walk)
            pack.append(row)
    return pack + best_rows(result, metric, result.config.plot_nfe, BEST_PEERS_SHOWN, pack=False)


def figures(result: TargetAccuracy) -> Dict[str, Tuple[str, Image.Image]]:
    """File stem -> (caption, image) for one target."""
    key, budget = result.target.key, result.config.plot_nfe
    schedule = result.config.schedules[0]
    metrics = [m for m in CHART_METRICS.get(key, ("sw2",)) if m in result.floors]
    out = {}
    if result.target.mixture.dim == 2 and result.plot_samples:
        out[f"{key}_samples"] = (
            f"{key}: samples of every sampler at budget {budget} ({schedule}), coloured by component",
            scatter_grid(result))
    if len(result.target.shape) == 3 and result.plot_samples:
        out[f"{key}_samples"] = (
            f"{key}: the first samples of the pack's walks{' (best chain each)' if result.target.guided else ''} "
            f"and the {BEST_PEERS_SHOWN} best peers on {metrics[0]} at "
            f"budget {budget} ({schedule}), same noise per column",
            image_grid(result, _shown_rows(result, metrics[0])))
    if metrics:
        charts = [convergence_chart(result, m, _shown_rows(result, m)) for m in metrics]
        out[f"{key}_convergence"] = (
            f"{key}: {' and '.join(metrics)} against NFE ({schedule}) for the pack's walks"
            f"{' (best chain each)' if result.target.guided else ''} and the {BEST_PEERS_SHOWN} best peers on each at "
            f"budget {budget}; runs off the target are left out", side_by_side(charts))
    return out


def write_figures(result: TargetAccuracy, out: Path) -> Dict[str, str]:
    """Save the target's figures under ``out.parent / 'bench'``; caption -> path relative to the report."""
    links = {}
    figure_dir = out.parent / "bench"
    figure_dir.mkdir(parents=True, exist_ok=True)
    for stem, (caption, image) in figures(result).items():
        path = figure_dir / f"{stem}.png"
        image.save(path)
        links[caption] = os.path.relpath(path, out.parent).replace(os.sep, "/")
    return links


def run_bench(config: BenchConfig, command: str, out: Optional[Path] = None) -> str:
    """Run every part of ``config``; return the markdown, and write it (with figures under ``out.parent /
    'bench'``) when ``out`` is given, keeping the sections other benchmark commands wrote."""
    start = time.perf_counter()
    result = measure(config)
    goals = evaluate_goals(result)
    figures_by_target = {}
    if out is not None:
        figures_by_target = {acc.target.key: write_figures(acc, out) for acc in result.accuracy}
    else:
        for acc in result.accuracy:
            figures(acc)  # drawn anyway: the smoke run exercises the plots
    result.seconds["figures"] = time.perf_counter() - start - result.seconds["total"]
    result.seconds["total"] = time.perf_counter() - start
    text = render(result, command, goals, figures_by_target)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        kept = kept_sections(out)  # sections other benchmark commands wrote (bench/patch.py, ...)
        out.write_text(text + ("\n" + kept if kept else ""), encoding="utf-8")
        log.info("wrote %s in %.0f s", out, result.seconds.get("total", 0.0))
    return text
