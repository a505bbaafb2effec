"""Learned schedules as files: safetensors with the level positions and sigmas, and how they were made in the
metadata. The schedule registry loads them by name: ``SCHEDULES["learned:<name>"]`` is ``<name>.safetensors`` in
:func:`schedule_dir`.

The folder: ``$WALK_SCHEDULES_DIR`` when set; inside ComfyUI, ``models/walk_schedules`` (the pack's nodes register
it with :func:`add_folder_provider`); headless, ``<output>/walk_schedules`` of the run (``./output`` by default).
A file is written atomically and never over another (``name_2``, ``name_3``, ... when the name is taken).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from ..atomic_files import write_new
from ..registry import UnknownNameError
from ..safetensors_header import check_entries, read_header
from .parameters import positions, warp_positions

PREFIX = "learned:"
SUFFIX = ".safetensors"
SUBDIR = "walk_schedules"
ENV = "WALK_SCHEDULES_DIR"
FORMAT = "walk-learned-schedule"
VERSION = "1"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
HINT = "expected a file written by `cli.py learn-schedule` or the Learn Walk Schedule node"

_providers: List[Callable[[], Optional[Path]]] = []


def add_folder_provider(provider: Callable[[], Optional[Path]]) -> None:
    """Register ``provider() -> folder or None`` (ComfyUI's models folder, from the nodes); the first non-None wins
    after ``$WALK_SCHEDULES_DIR``."""
    if provider not in _providers:
        _providers.append(provider)


def schedule_dir() -> Path:
    """The folder learned schedules are saved to and loaded from."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return Path(env).expanduser()
    for provider in _providers:
        folder = provider()
        if folder is not None:
            return Path(folder)
    from ..runner.paths import current_paths  # noqa: PLC0415  (a light module; not at import)

    return current_paths().output_dir / SUBDIR


def check_name(name: str, who: str) -> str:
    """The file stem of a schedule name (``learned:`` and ``.safetensors`` stripped); refuses other names."""
    stem = str(name).strip()
    if stem.startswith(PREFIX):
        stem = stem[len(PREFIX):]
    if stem.endswith(SUFFIX):
        stem = stem[: -len(SUFFIX)]
    if not NAME.fullmatch(stem):
        raise ValueError(f"{who}: name={name!r} is not allowed; expected 1-100 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit (no folders), e.g. 'adams_nfe8_my_model'")
    return stem


def learned_names(folder: Optional[Path] = None) -> List[str]:
    """``learned:<stem>`` for every schedule file in the folder (sorted; the files are not read)."""
    folder = schedule_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    return [PREFIX + p.name[: -len(SUFFIX)] for p in sorted(folder.glob(f"*{SUFFIX}"))
            if NAME.fullmatch(p.name[: -len(SUFFIX)]) and p.is_file()]


def _writer(result) -> Callable[[Path], None]:
    from safetensors.torch import save_file  # noqa: PLC0415

    tensors = {"sigmas": result.sigmas.detach().to(torch.float64).contiguous().cpu(),
               "positions": result.positions.to(torch.float64).contiguous().cpu()}
    metadata = {
        "format": FORMAT, "version": VERSION, "walk": result.walk, "nfe": str(result.nfe), "steps": str(result.steps),
        "sigma_min": repr(float(result.sigma_min)), "sigma_max": repr(float(result.sigma_max)),
        "target": result.target, "teacher": result.teacher, "method": result.method,
        "train_rms": repr(result.train_rms), "val_rms": repr(result.val_rms), "start": result.start,
        "fixed_val": json.dumps(result.fixed_val), "options": json.dumps(result.options),
        "samples": json.dumps({"train": result.train_samples, "validation": result.val_samples, "seed": result.seed}),
    }
    return lambda path: save_file(tensors, str(path), metadata=metadata)


def save_schedule(result, name: str, folder: Optional[Path] = None, who: str = "save_schedule") -> Path:
    """Write ``result`` (a LearnedSchedule) as ``<name>.safetensors`` in the folder, or ``<name>_2`` ... when taken;
    returns the path (its stem is the registry name after ``learned:``)."""
    stem = check_name(name, who)
    folder = schedule_dir() if folder is None else Path(folder)
    candidates = [folder / f"{stem}{SUFFIX}"] + [folder / f"{stem}_{k}{SUFFIX}" for k in range(2, 1000)]
    return write_new(candidates, _writer(result))


@dataclass(frozen=True)
class ScheduleFile:
    """A learned schedule read back: its level positions, the sigmas it was learned on, and its metadata."""

    path: Path
    positions: torch.Tensor  # [steps] in [0, 1], ascending, first 0
    sigmas: torch.Tensor  # [steps + 1], last 0
    sigma_min: float
    sigma_max: float
    metadata: Dict[str, str]

    @property
    def name(self) -> str:
        return PREFIX + self.path.name[: -len(SUFFIX)]

    def __call__(self, n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
        """The schedule for ``n`` levels on [sigma_min, sigma_max]: the learned levels when both match what it was
        learned for, a monotone interpolation of them otherwise (``parameters.warp_positions``)."""
        from ..schedules import _check  # noqa: PLC0415  (schedules imports this module lazily)

        _check(self.name, n, sigma_min, sigma_max)
        return warp_positions(self.positions, int(n), float(sigma_min), float(sigma_max))


def load_schedule(path: Path | str) -> ScheduleFile:
    """Read and check a learned schedule file; any problem is one ValueError naming the file and what was expected."""
    from safetensors import SafetensorError, safe_open  # noqa: PLC0415

    path = Path(path)
    who = f"learned schedule {path}"
    if not path.is_file():
        raise FileNotFoundError(f"{who}: no such file; {HINT}")
    header = read_header(path, who)
    meta = header.metadata
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{who}: format {meta.get('format')!r} version {meta.get('version')!r}; expected format "
                         f"{FORMAT!r} version {VERSION} ({HINT})")
    try:
        steps = int(meta["steps"])
        lo, hi = float(meta["sigma_min"]), float(meta["sigma_max"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{who}: metadata steps/sigma_min/sigma_max missing or not numbers ({e}); {HINT}") from None
    if not 1 <= steps <= 10_000 or not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"{who}: steps={steps}, sigma range ({lo}, {hi}); expected 1..10000 steps and "
                         f"0 < sigma_min <= sigma_max ({HINT})")
    check_entries(header, {"sigmas": (steps + 1,), "positions": (steps,)}, who)
    try:
        with safe_open(str(path), framework="pt") as f:
            sigmas, u = f.get_tensor("sigmas").to(torch.float64), f.get_tensor("positions").to(torch.float64)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ValueError(f"{who}: cannot be read ({e}); {HINT}") from None
    finite = bool(torch.isfinite(sigmas).all()) and bool(torch.isfinite(u).all())
    descending = bool((sigmas[1:] <= sigmas[:-1]).all()) and bool((sigmas[:-1] > 0).all()) and float(sigmas[-1]) == 0
    inside = bool((sigmas[:-1] <= hi * (1 + 1e-9)).all()) and bool((sigmas[:-1] >= lo * (1 - 1e-9)).all())
    ordered = bool((u[1:] >= u[:-1]).all()) and float(u[0]) == 0.0 and bool(((u >= 0) & (u <= 1)).all())
    if not (finite and descending and inside and ordered):
        raise ValueError(f"{who}: the sigmas {[round(float(s), 6) for s in sigmas[:12]]} are not a schedule "
                         f"(finite, descending, inside [{lo}, {hi}], ending in 0, positions ascending from 0); {HINT}")
    if not torch.allclose(positions(sigmas, lo, hi), u, atol=1e-6):
        raise ValueError(f"{who}: the positions do not match the sigmas; {HINT}")
    return ScheduleFile(path, u, sigmas, lo, hi, dict(meta))


def find_schedule(name: str) -> ScheduleFile:
    """The learned schedule ``name`` (``learned:<stem>`` or ``<stem>``) from the folder; an unknown name lists the
    files there."""
    who = f"schedule {name!r}"
    stem = check_name(name, who)
    folder = schedule_dir()
    path = folder / f"{stem}{SUFFIX}"
    if not path.is_file():
        found = learned_names(folder)
        raise UnknownNameError(f"unknown schedule {name!r}: no file {path.name} in {folder}; found: "
                         f"{', '.join(found) or 'none'} (learn one with `cli.py learn-schedule` or the Learn Walk "
                         f"Schedule node; set ${ENV} to use another folder)")
    return load_schedule(path)
