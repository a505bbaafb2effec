"""Checks on tensors read from a weights or statistics file, before anything is built from them.

A file holding integer weights would be silently truncated or cast, and NaN or inf weights would surface many
steps later as a diverged walk; both are the file's fault, so they are refused at load, naming the file and
the tensor.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

import torch


def check_float_tensors(tensors: Mapping[str, torch.Tensor], who: str, keys: Optional[Iterable[str]] = None) -> None:
    """Every tensor of ``keys`` (default: all) must have a floating dtype and only finite values.

    ``who`` names the loader and the file, e.g. ``"load_style (x.safetensors)"``.
    """
    for key in sorted(tensors if keys is None else keys):
        value = tensors[key]
        if not value.dtype.is_floating_point:
            raise ValueError(f"{who}: tensor {key!r} has dtype {str(value.dtype).replace('torch.', '')}; expected a "
                             "floating dtype (float32, float16 or bfloat16) -- is this file damaged or not from this "
                             "pack?")
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f"{who}: tensor {key!r} has {bad} non-finite value(s) (NaN or inf) of {value.numel()}; "
                             "expected finite numbers -- the file is damaged (a training run that diverged?)")
