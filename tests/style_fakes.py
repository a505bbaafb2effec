"""A randomly initialised VGG19 ``features`` state dict in torchvision's key layout (never real weights)."""
from pathlib import Path

import torch
from safetensors.torch import save_file

from rwalk.walk_core.style.encoders import VGG19_CONVS


def random_vgg19_state(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, c_in, c_out in VGG19_CONVS:
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * (2.0 / (9 * c_in)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(c_out)
    return state


def write_random_vgg19(path: Path, state: dict | None = None) -> Path:
    save_file(random_vgg19_state() if state is None else state, str(path))
    return path
