"""Sample grids of a model during training: a few walks saved as one PNG (a row per class)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .unet import EDMDenoiser

PER_ROW = 4
STEPS = 20
WALK = "adams"


def sample_grid(model: EDMDenoiser, classes: Sequence[str], size: int, path: Path, seed: int = 0) -> Path:
    """Walk ``model`` (PER_ROW pictures per class, or 2 rows unconditional) and write them as one PNG."""
    import numpy as np
    from PIL import Image

    from ..walk_core.atomic_files import write_replace
    from ..walk_core.sample import WalkRequest, run_walk
    from .checkpoint import ModelFile
    from .target import model_target

    was_training = model.training
    rows = []
    for name in (list(classes) or [""] * 2):
        target = model_target(ModelFile(model, tuple(classes)), size, class_name=name)
        request = WalkRequest(walk=WALK, schedule="karras", steps=STEPS, seed=seed + len(rows) * PER_ROW,
                              batch_size=PER_ROW)
        rows.append(run_walk(target, request).x.clamp(-1, 1))
    model.train(was_training)
    grid = torch.stack(rows)  # [R, N, 3, S, S]
    r, n, c, h, w = grid.shape
    grid = grid.permute(0, 3, 1, 4, 2).reshape(r * h, n * w, c)
    array = ((grid + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    picture = Image.fromarray(np.ascontiguousarray(array))
    return write_replace(path, lambda temp: picture.save(temp, format="PNG"))
