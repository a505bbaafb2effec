"""The whole benchmark as one function: measure, draw, render (and write when given a path)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from PIL import Image

from .accuracy import TargetAccuracy, measure_accuracy
from .config import BenchConfig
from .overhead import measure_overhead
from .plots import convergence_chart, image_grid, scatter_grid, side_by_side
from .report import RunInfo, machine_info, render
from .sections import kept_sections
from .targets import image_target, ring_target

log = logging.getLogger(__name__)


def _figures(result: TargetAccuracy) -> Dict[str, Tuple[str, Image.Image]]:
    """File stem -> (caption, image) for one target."""
    key, budget = result.target.key, result.config.plot_nfe
    schedule = result.config.schedules[0]
    figures = {}
    if result.target.mixture.dim == 2 and result.plot_samples:
        figures[f"{key}_samples"] = (
            f"{key}: samples of every walk at budget {budget} ({schedule}), coloured by component",
            scatter_grid(result))
    if len(result.target.shape) == 3 and result.plot_samples:
        figures[f"{key}_samples"] = (
            f"{key}: the first samples of every walk at budget {budget} ({schedule}), same noise per column",
            image_grid(result))
    figures[f"{key}_convergence"] = (
        f"{key}: sliced W2 and mode-weight TV against NFE ({schedule})",
        side_by_side([convergence_chart(result, "sw2"), convergence_chart(result, "tv")]))
    return figures


def run_bench(config: BenchConfig, command: str, out: Optional[Path] = None) -> str:
    """Run every part of ``config`` with ``config.threads`` torch threads; return the markdown, and write it
    (with figures under ``out.parent / 'bench'``) when ``out`` is given."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, command, out)
    finally:
        torch.set_num_threads(threads)


def _run(config: BenchConfig, command: str, out: Optional[Path]) -> str:
    start = time.perf_counter()
    machine = machine_info()
    overhead = measure_overhead(config.overhead)
    targets = [(ring_target(), config.ring),
               (image_target(config.image_target.components, config.image_target.size, config.image_target.rank),
                config.image)]
    accuracy = [measure_accuracy(target, cfg) for target, cfg in targets]
    figures_by_target: Dict[str, Dict[str, str]] = {}
    for result in accuracy:
        figures = _figures(result)
        links = {}
        if out is not None:
            figure_dir = out.parent / "bench"
            figure_dir.mkdir(parents=True, exist_ok=True)
            for stem, (caption, image) in figures.items():
                path = figure_dir / f"{stem}.png"
                image.save(path)
                links[caption] = os.path.relpath(path, out.parent).replace(os.sep, "/")
        figures_by_target[result.target.key] = links
    info = RunInfo(command, config.name, time.perf_counter() - start, machine, {})
    text = render(info, overhead, accuracy, figures_by_target)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        kept = kept_sections(out)  # sections other benchmark commands wrote (bench/patch.py, ...)
        out.write_text(text + ("\n" + kept if kept else ""), encoding="utf-8")
        log.info("wrote %s in %.0f s", out, info.seconds)
    return text
