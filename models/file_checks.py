"""Checks of an own-model file made from its header alone, before any tensor is read or network built.

The metadata's architecture is validated (UNetConfig's bounds), the network it describes is built on
PyTorch's ``meta`` device -- shapes without memory -- and its parameter count is held against the limit
(``max_network_params``, env ``WALK_MAX_NETWORK_PARAMS``); then every tensor the file declares must be
one of that network's, of its shape and of a floating dtype; ``classes`` and ``training`` must be JSON of their
kind. Only then does the loader read the data.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..walk_core.limits import check_network_params
from ..walk_core.safetensors_header import Header, check_entries, read_header
from .unet import EDMDenoiser, UNetConfig


def described_network(config: UNetConfig, who: str) -> dict:
    """``{name: shape}`` of the denoiser ``config`` describes, counted on the meta device and size-checked."""
    with torch.device("meta"):
        net = EDMDenoiser(config).net
    check_network_params(sum(p.numel() for p in net.parameters()), who, f"the architecture {config}")
    return {name: tuple(value.shape) for name, value in net.state_dict().items()}


def check_model_header(path: Path | str, who: str, model_format: str) -> Header:
    """The header of a model file, checked against the network its metadata describes (see the module doc).

    Files of another format are left to the loader's own messages (returned unchecked beyond the header).
    """
    header = read_header(path, who)
    architecture = header.metadata.get("architecture")
    if header.metadata.get("format") != model_format or not architecture:
        return header
    config = UNetConfig.from_json(architecture, who)
    classes = _metadata_json(header, "classes", who, [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{who}: metadata 'classes' is {str(classes)[:80]}; expected a JSON list of class names")
    if not isinstance(_metadata_json(header, "training", who, {}), dict):
        raise ValueError(f"{who}: metadata 'training' is not a JSON object (the trainer's facts)")
    check_entries(header, described_network(config, who), who, prefix="net.")
    strays = sorted(k for k in header.tensors if not k.startswith("net."))
    if strays:  # a model file holds the network's weights and nothing else
        raise ValueError(f"{who}: unexpected tensors {', '.join(repr(k) for k in strays[:6])}"
                         f"{f' and {len(strays) - 6} more' if len(strays) > 6 else ''}; a model file holds only the "
                         "network's weights (keys 'net.*') -- is it damaged or not from this pack?")
    return header


def _metadata_json(header: Header, key: str, who: str, default):
    """A metadata value parsed as JSON (``default`` when absent); ValueError naming the key when it is not."""
    if key not in header.metadata:
        return default
    try:
        return json.loads(header.metadata[key])
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{who}: metadata {key!r} is not JSON ({str(error)[:120]})") from None
