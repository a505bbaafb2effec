"""Own-model files: safetensors only, with the architecture and training facts in the metadata.

Two kinds of file, both plain safetensors (no pickle anywhere):

- a **model** (``name.safetensors``): the EMA weights of an :class:`EDMDenoiser` under ``net.*``; metadata
  ``format`` = ``rwalk-denoiser``, ``version``, ``architecture`` (UNetConfig JSON), ``classes`` (JSON list of
  class names, empty for an unconditional model), ``training`` (JSON: config, steps, images seen, data).
- a **training state** (``name.state.safetensors``, beside it): everything a resumed run needs to continue
  bit for bit -- raw and EMA weights, Adam's moments, the data generator's state -- with the progress counters
  in the metadata.

Loading checks the format, the metadata and every key and shape, and names what is wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from ..walk_core.atomic_files import write_replace
from ..walk_core.weight_checks import check_float_tensors
from ..walk_core.safetensors_header import read_header
from .file_checks import check_model_header
from .unet import EDMDenoiser, UNetConfig

FORMAT = "rwalk-denoiser"
STATE_FORMAT = "rwalk-training-state"
VERSION = "1"
STATE_SUFFIX = ".state.safetensors"


@dataclass(frozen=True)
class ModelFile:
    """A loaded model: the denoiser (eval mode, float32, CPU) and what its file says about it."""

    denoiser: EDMDenoiser
    classes: Tuple[str, ...] = ()
    training: dict = field(default_factory=dict)
    path: Optional[Path] = None

    @property
    def config(self) -> UNetConfig:
        return self.denoiser.config


def state_path(model_path: Path | str) -> Path:
    """``x.safetensors`` -> ``x.state.safetensors`` (the training state beside a model)."""
    path = Path(model_path)
    stem = path.name[: -len(".safetensors")] if path.name.endswith(".safetensors") else path.name
    return path.with_name(stem + STATE_SUFFIX)


def _read(path: Path | str, who: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{who}: no file {path}")
    read_header(path, who)  # size limit and a header that describes its data, before safetensors reads it
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ValueError(f"{who}: not a readable safetensors file ({error}); truncated or not a model "
                         "written by this pack?") from None
    return tensors, metadata


def _json(metadata: Dict[str, str], key: str, who: str, default=None):
    if key not in metadata:
        if default is not None:
            return default
        raise ValueError(f"{who}: the metadata has no {key!r}; expected format, version, architecture, classes, "
                         "training (a file written by this pack's trainer)")
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as e:
        raise ValueError(f"{who}: metadata {key!r} is not JSON ({e})") from None


def check_state_dict(module: torch.nn.Module, tensors: Dict[str, torch.Tensor], who: str, prefix: str = "") -> dict:
    """``tensors`` (keys ``prefix + name``) checked against ``module``'s state dict: every key present, none
    extra, every shape equal. Returns the state dict to load (prefix removed)."""
    expected = module.state_dict()
    got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = [prefix + k for k in expected if k not in got]
    extra = [prefix + k for k in got if k not in expected]
    wrong = [f"{prefix}{k} {tuple(got[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in got and got[k].shape != v.shape]
    if missing or extra or wrong:
        def show(items):
            return "none" if not items else ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
        raise ValueError(f"{who}: the weights do not fit the architecture in the metadata: missing {show(missing)}; "
                         f"unexpected {show(extra)}; wrong shape {show(wrong)}")
    return got


def save_model(denoiser: EDMDenoiser, path: Path | str, classes=(), training: Optional[dict] = None) -> Path:
    """Write ``denoiser``'s weights (float32) with its architecture, class names and training facts."""
    from safetensors.torch import save_file

    config = denoiser.config
    classes = [str(c) for c in classes]
    if config.num_classes and len(classes) != config.num_classes:
        raise ValueError(f"save_model: {len(classes)} class names for a model with num_classes="
                         f"{config.num_classes}; expected one name per class")
    tensors = {"net." + k: v.detach().float().contiguous().cpu() for k, v in denoiser.net.state_dict().items()}
    metadata = {"format": FORMAT, "version": VERSION, "architecture": config.to_json(),
                "classes": json.dumps(classes), "training": json.dumps(training or {}, sort_keys=True)}
    # never a half-written model under the real name, even when interrupted
    return write_replace(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


def load_model(path: Path | str) -> ModelFile:
    """Read a model written by :func:`save_model` (or the trainer), checking format, metadata, keys and shapes."""
    who = f"load_model ({path})"
    if Path(path).is_file():  # the architecture, its size and every tensor's shape and dtype, before reading any
        check_model_header(path, who, FORMAT)
    tensors, metadata = _read(path, who)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{who}: metadata format {metadata.get('format')!r}; expected {FORMAT!r} (a model written "
                         "by this pack's trainer; a training state is loaded with resume, not as a model)")
    if metadata.get("version") != VERSION:
        raise ValueError(f"{who}: version {metadata.get('version')!r}; this pack reads version {VERSION}")
    if not metadata.get("architecture"):
        raise ValueError(f"{who}: the metadata has no 'architecture'; expected the UNetConfig JSON")
    config = UNetConfig.from_json(metadata["architecture"], who)
    classes = tuple(_json(metadata, "classes", who, default=[]))
    if len(classes) != config.num_classes:
        raise ValueError(f"{who}: {len(classes)} class names for num_classes={config.num_classes}")
    denoiser = EDMDenoiser(config)
    weights = check_state_dict(denoiser.net, tensors, who, "net.")
    check_float_tensors(tensors, who, [k for k in tensors if k.startswith("net.")])
    denoiser.net.load_state_dict(weights)
    denoiser.eval().requires_grad_(False)
    return ModelFile(denoiser, classes, _json(metadata, "training", who, default={}), Path(path))


def save_state(path: Path | str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> Path:
    """Write a training state (see models/train.py for its keys)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {"format": STATE_FORMAT, "version": VERSION, **metadata}
    return write_replace(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


def load_state(path: Path | str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    who = f"resume ({path})"
    tensors, metadata = _read(path, who)
    if metadata.get("format") != STATE_FORMAT:
        raise ValueError(f"{who}: metadata format {metadata.get('format')!r}; expected {STATE_FORMAT!r} (the "
                         f"'{STATE_SUFFIX}' file the trainer writes beside a model)")
    if metadata.get("version") != VERSION:
        raise ValueError(f"{who}: version {metadata.get('version')!r}; this pack reads version {VERSION}")
    check_float_tensors(tensors, who, [k for k in tensors if k.split(".")[0] in ("model", "ema", "adam")])
    return tensors, metadata


def list_models(folders: List[Path]) -> List[str]:
    """Model files (not training states) in ``folders``, by name, sorted."""
    names = set()
    for folder in folders:
        if Path(folder).is_dir():
            names.update(p.name for p in Path(folder).glob("*.safetensors") if not p.name.endswith(STATE_SUFFIX))
    return sorted(names)
