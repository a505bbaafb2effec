"""Feature encoders for style statistics: x [B, 3, H, W] in [-1, 1] -> a list of feature maps [B, C_l, H_l, W_l].

``random`` -- a fixed-seed multi-scale CNN with random filters (Ustyuzhaninov et al. 2016, "Texture synthesis
using shallow convolutional networks with random filters"): no weights, the same network for the same seed.
``vgg19`` -- torchvision's VGG19 ``features`` (Gatys et al. 2016 use its relu1_1..relu5_1), loaded from a
local safetensors file ``vgg19.safetensors`` with torchvision's key layout (``features.{i}.weight/bias``);
nothing is downloaded. It is looked for in the pack's ``models/weights/`` folder and in the folders the
caller adds (the nodes add ComfyUI's ``models/style_encoders/`` when running inside ComfyUI).
``vgg19_adain`` -- AdaIN's normalised VGG-19 (vgg_adain.py), file ``vgg19_adain.safetensors`` from the same
folders, made once by ``python bench/vgg_setup.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..registry import Registry
from ..limits import check_network_params
from ..safetensors_header import read_header
from ..weight_checks import check_float_tensors

ENCODERS: Registry[type] = Registry("style encoder")
# Encoders around a network the caller supplies (clip_vision.py): not in ENCODERS, which holds what a name and a
# config rebuild (and lists the StyleEncoder node's choices); name -> what it needs.
WRAPPING_ENCODERS = {"clip_vision": "a CLIP vision model: ClipVisionEncoder.wrap(model), StyleEncoder's clip_vision "
                                    "input, or load_style(path, clip_vision=model)"}
MIN_SIZE = 16  # pixels per side: every encoder keeps at least 1 px at its coarsest layer

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_WEIGHTS_DIR = PACK_ROOT / "models" / "weights"
VGG19_FILE = "vgg19.safetensors"
COMFY_SUBDIR = "style_encoders"  # under ComfyUI's models folder

VGG19_CONVS: Tuple[Tuple[int, int, int], ...] = (  # (features index, in channels, out channels)
    (0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
    (16, 256, 256), (19, 256, 512), (21, 512, 512), (23, 512, 512), (25, 512, 512), (28, 512, 512),
    (30, 512, 512), (32, 512, 512), (34, 512, 512))
VGG19_POOLS = (4, 9, 18, 27, 36)  # max-pool indices of torchvision's layout
VGG19_STYLE_LAYERS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MAKE_VGG19 = (
    "make it once on a machine with torchvision (it downloads torchvision's ImageNet weights):\n"
    "    import torchvision, safetensors.torch\n"
    "    sd = torchvision.models.vgg19(weights='IMAGENET1K_V1').features.state_dict()\n"
    "    safetensors.torch.save_file({f'features.{k}': v.contiguous() for k, v in sd.items()}, "
    f"'{VGG19_FILE}')")


def weight_search_dirs(extra: Sequence[Path | str] = ()) -> List[Path]:
    """Where encoder weights are looked for, in order: the pack's models/weights, then ``extra``."""
    return [PACK_WEIGHTS_DIR, *(Path(d) for d in extra)]


def check_size(x: torch.Tensor, who: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{who}: pictures of shape {tuple(x.shape)}; expected [B, 3, H, W]")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"{who}: a picture of {x.shape[-1]}x{x.shape[-2]} px is too small; expected at least "
                         f"{MIN_SIZE} px per side (StyleEncoder's images, or the walk's width and height)")


class Encoder:
    """Base: ``params`` are the network's tensors; ``features(x)`` the style layers; ``to`` a moved copy."""

    name: ClassVar[str] = ""

    def config(self) -> Dict[str, Any]:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        raise NotImplementedError


@ENCODERS.register("random")
@dataclass(frozen=True)
class RandomEncoder(Encoder):
    """A shallow CNN with fixed random filters, one layer per scale: conv3x3 + ReLU, recorded; then a 2x2
    average pool (box blur, then subsample) before the next scale. Filters are drawn once from ``seed``
    (zero-mean per filter, He-scaled), so the network -- and every statistic it gives -- is a function of
    the seed alone."""

    name: ClassVar[str] = "random"
    seed: int = 0
    widths: Tuple[int, ...] = (32, 64, 64)  # channels per scale
    params: Dict[str, torch.Tensor] = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.params is None:
            g = torch.Generator().manual_seed(int(self.seed))
            params, c_in = {}, 3
            for i, c_out in enumerate(self.widths):
                w = torch.randn(c_out, c_in, 3, 3, generator=g)
                w = w - w.mean(dim=(1, 2, 3), keepdim=True)
                params[f"conv{i}"] = w * (2.0 / (c_in * 9)) ** 0.5
                c_in = c_out
            object.__setattr__(self, "params", params)

    def config(self):
        return {"seed": int(self.seed), "widths": list(self.widths)}

    def to(self, device=None, dtype=None) -> "RandomEncoder":
        return RandomEncoder(self.seed, self.widths, {k: v.to(device=device, dtype=dtype).clone()
                                                      for k, v in self.params.items()})

    def features(self, x):
        check_size(x, "style encoder random")
        out, h = [], x  # x in [-1, 1], zero-centred already
        for i in range(len(self.widths)):
            if i:
                h = F.avg_pool2d(h, 2)
            h = F.relu(F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), self.params[f"conv{i}"]))
            out.append(h)  # [B, C_i, H / 2^i, W / 2^i]
        return out


def find_weights(file_name: str, search_dirs: Sequence[Path | str], who: str, how: str) -> Path:
    dirs = [Path(d) for d in search_dirs]
    for d in dirs:
        if (d / file_name).is_file():
            return d / file_name
    looked = "\n".join(f"  {d}" for d in dirs)
    raise FileNotFoundError(f"{who}: the weights file {file_name!r} was not found; looked in:\n{looked}\n"
                            f"Put {file_name} in one of these folders; {how}")


def load_vgg19_state(path: Path) -> Dict[str, torch.Tensor]:
    """torchvision's VGG19 ``features`` tensors from a safetensors file, every key and shape checked."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    who = f"style encoder vgg19 ({path})"
    read_header(path, who)  # the file size limit and a header that describes its data, before reading it
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{who}: not a readable safetensors file ({error})") from None
    expected = {}
    for index, c_in, c_out in VGG19_CONVS:
        expected[f"features.{index}.weight"] = (c_out, c_in, 3, 3)
        expected[f"features.{index}.bias"] = (c_out,)
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(f"{who}: missing keys {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; "
                         "expected torchvision's VGG19 layout features.{i}.weight/bias")
    unexpected = [k for k in state if k.startswith("features.") and k not in expected]
    if unexpected:
        raise ValueError(f"{who}: unexpected keys {', '.join(unexpected[:6])}; expected only torchvision's VGG19 "
                         "features.{i}.weight/bias (classifier.* keys are ignored)")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(f"{who}: key {key} has shape {tuple(state[key].shape)}; expected {shape}")
    check_float_tensors(state, who, expected)
    return {k: state[k].float() for k in expected}


@ENCODERS.register("vgg19")
@dataclass(frozen=True)
class VGG19Encoder(Encoder):
    """torchvision's VGG19 ``features`` up to relu5_1; style layers relu1_1..relu5_1 (Gatys et al. 2016).
    Input: ImageNet-normalised RGB in [0, 1]."""

    name: ClassVar[str] = "vgg19"
    params: Dict[str, torch.Tensor] = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, search_dirs: Sequence[Path | str] = ()) -> "VGG19Encoder":
        path = find_weights(VGG19_FILE, weight_search_dirs(search_dirs), "style encoder vgg19", MAKE_VGG19)
        return cls(load_vgg19_state(path))

    def config(self):
        return {}

    def to(self, device=None, dtype=None) -> "VGG19Encoder":
        return VGG19Encoder({k: v.to(device=device, dtype=dtype).clone() for k, v in self.params.items()})

    def features(self, x):
        check_size(x, "style encoder vgg19")
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        h = ((x + 1) / 2 - mean) / std
        out = []
        for index in range(max(VGG19_STYLE_LAYERS) + 1):  # torchvision's features.{index}
            if f"features.{index}.weight" in self.params:
                h = F.conv2d(h, self.params[f"features.{index}.weight"], self.params[f"features.{index}.bias"],
                             padding=1)
            elif index in VGG19_POOLS:
                h = F.max_pool2d(h, 2)
            else:
                h = F.relu(h)
            if index in VGG19_STYLE_LAYERS:
                out.append(h)
        return out


#: Bounds of the random encoder's config (a file's metadata may not ask for more): scales and channels per scale.
RANDOM_MAX_SCALES, RANDOM_MAX_WIDTH = 4, 1024  # 4 scales keep 2 px at the coarsest of a MIN_SIZE picture


def random_config(config: Dict[str, Any]) -> Tuple[int, Tuple[int, ...]]:
    """(seed, widths) of a random encoder's config, checked before any filter is drawn."""
    seed, widths = config.get("seed", 0), config.get("widths", (32, 64, 64))
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"style encoder random: seed={seed!r} is not allowed; expected an integer in 0..2**63-1")
    if (not isinstance(widths, (list, tuple)) or not 1 <= len(widths) <= RANDOM_MAX_SCALES
            or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= RANDOM_MAX_WIDTH for w in widths)):
        raise ValueError(f"style encoder random: widths={str(widths)[:80]} is not allowed; expected 1 to "
                         f"{RANDOM_MAX_SCALES} channel counts in 1..{RANDOM_MAX_WIDTH}")
    filters = sum(c_in * c_out * 9 for c_in, c_out in zip((3,) + tuple(widths), widths))
    check_network_params(filters, "style encoder random", f"widths={list(widths)}")
    return seed, tuple(widths)


def build_encoder(name: str, config: Dict[str, Any] | None = None,
                  search_dirs: Sequence[Path | str] = ()) -> Encoder:
    """The encoder ``name`` (unknown names list the valid ones) from its config."""
    if name in WRAPPING_ENCODERS:
        raise ValueError(f"build_encoder: the encoder {name!r} wraps a network that is not the pack's, so a name and "
                         f"config cannot build it; it needs {WRAPPING_ENCODERS[name]}")
    cls = ENCODERS[name]
    config = dict(config or {})
    if cls is RandomEncoder:
        seed, widths = random_config(config)
        return RandomEncoder(seed=seed, widths=widths)
    if cls is vgg_adain.VGG19AdaINEncoder:
        return vgg_adain.build(config, search_dirs)
    return cls.load(search_dirs)


from . import vgg_adain  # noqa: E402  (registers ``vgg19_adain``; it imports this module's helpers)
