"""The WALK_STYLE value: a StyleCode (encoder + per-layer statistics of weighted references), its
differentiable distance to pictures, and safetensors save/load."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

import torch

from ..atomic_files import write_new, write_replace
from ..limits import LimitError
from ..safetensors_header import check_float_entries, read_header
from ..weight_checks import check_float_tensors
from .clip_vision import NAME as CLIP_VISION, rebuild as rebuild_clip_vision
from .encoders import Encoder, build_encoder
from .spectrum import BINS, log_spectrum
from .statistics import KINDS, PROJECTIONS, QUANTILES, STATISTICS, projections, relative_distance, statistics_of

FORMAT = "rwalk.style"
VERSION = "1"


@dataclass(frozen=True)
class StyleCode:
    """Style statistics of one or several weighted references.

    ``stats`` maps ``{kind}.{layer}`` (kind: gram, mean, std, swd) to the weighted average over the references
    (no batch dimension); ``proj`` holds the sliced-Wasserstein directions per layer (``proj.{layer}``).
    ``encoder`` is the network the statistics came from (rebuilt from ``encoder_name``/``encoder_config``).
    ``spectrum`` is the references' log radial power spectrum [BINS] (style/spectrum.py; None in codes saved
    before it existed)."""

    encoder_name: str
    encoder_config: Dict[str, Any] = field(compare=False)
    statistics: str
    weights: Tuple[float, ...]
    stats: Dict[str, torch.Tensor] = field(compare=False, repr=False)
    proj: Dict[str, torch.Tensor] = field(compare=False, repr=False)
    encoder: Encoder = field(compare=False, repr=False)
    spectrum: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)

    @property
    def layers(self) -> int:
        return 1 + max(int(k.split(".")[1]) for k in self.stats)

    def projections(self) -> Dict[int, torch.Tensor]:
        return {int(k.split(".")[1]): v for k, v in self.proj.items()}

    def to(self, device=None, dtype=None) -> "StyleCode":
        """A copy with fresh (never inference-mode) tensors on ``device``/``dtype``."""
        move = lambda d: {k: v.to(device=device, dtype=dtype).clone() for k, v in d.items()}  # noqa: E731
        spectrum = None if self.spectrum is None else self.spectrum.to(device=device, dtype=dtype).clone()
        return StyleCode(self.encoder_name, dict(self.encoder_config), self.statistics, self.weights,
                         move(self.stats), move(self.proj), self.encoder.to(device, dtype), spectrum)


def _weights(weights: Sequence[float] | None, n: int, who: str) -> Tuple[float, ...]:
    if weights is None or len(weights) == 0:
        return (1.0 / n,) * n
    if len(weights) != n:
        raise ValueError(f"{who}: {len(weights)} weights for {n} reference pictures; expected one per picture")
    if any(not (w >= 0) or w == float("inf") for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{who}: weights {list(weights)}; expected finite values >= 0 with a positive sum")
    total = float(sum(weights))
    return tuple(float(w) / total for w in weights)


def encode_style(pictures: torch.Tensor, encoder: Union[str, Encoder] = "random", statistics: str = "gram",
                 weights: Sequence[float] | None = None, encoder_config: Dict[str, Any] | None = None,
                 search_dirs: Sequence[Path | str] = ()) -> StyleCode:
    """The StyleCode of ``pictures`` [N, 3, H, W] in [-1, 1]: each picture's statistics, averaged with
    ``weights`` (normalised to sum 1; empty = equal). ``encoder`` is a name built with ``encoder_config``, or a
    ready encoder (e.g. ``ClipVisionEncoder.wrap(model)``), whose own config is recorded."""
    who = "StyleEncoder"
    if isinstance(encoder, Encoder) and encoder_config:
        raise ValueError(f"{who}: encoder_config={encoder_config!r} with a ready {encoder.name!r} encoder; "
                         "expected encoder_config only with an encoder name")
    if statistics not in STATISTICS:
        raise ValueError(f"{who}: statistics={statistics!r}; expected one of {', '.join(STATISTICS)}")
    if not isinstance(pictures, torch.Tensor) or pictures.ndim != 4 or pictures.shape[1] != 3:
        shown = list(pictures.shape) if isinstance(pictures, torch.Tensor) else type(pictures).__name__
        raise ValueError(f"{who}: images of shape {shown}; expected a batch of RGB pictures [N, 3, H, W]")
    if pictures.shape[0] < 1:
        raise ValueError(f"{who}: images is an empty batch (0 pictures); expected at least one reference picture")
    finite = torch.isfinite(pictures.flatten(1)).all(1)
    if not bool(finite.all()):
        bad = [i for i, ok in enumerate(finite.tolist()) if not ok]
        raise ValueError(f"{who}: images picture(s) {bad} of {pictures.shape[0]} have non-finite pixels (NaN or inf); "
                         "expected finite values (pictures in [0, 1], walk space [-1, 1])")
    w = _weights(weights, pictures.shape[0], who)
    net = encoder if isinstance(encoder, Encoder) else build_encoder(encoder, encoder_config, search_dirs)
    with torch.no_grad():  # one picture at a time: a picture's statistics never depend on its batch
        features = [net.features(p[None].float()) for p in pictures]
    proj = {f"proj.{i}": projections(f.shape[1], i, net.config().get("seed", 0)) for i, f in enumerate(features[0])
            } if "swd" in KINDS[statistics] else {}
    per_picture = [statistics_of(f, statistics, {int(k[5:]): v for k, v in proj.items()}) for f in features]
    stats = {}
    for key in per_picture[0]:  # weighted average over the pictures, [...]
        acc = per_picture[0][key][0] * w[0]
        for i in range(1, len(per_picture)):
            acc = acc + per_picture[i][key][0] * w[i]
        stats[key] = acc.contiguous()
    return StyleCode(net.name, net.config(), statistics, w, stats, proj, net, log_spectrum(pictures, w))


def style_distance(code: StyleCode, x: torch.Tensor) -> torch.Tensor:
    """Per-item style distance of x [B, 3, H, W] in [-1, 1] to ``code``, [B]; differentiable in x.

    The mean over layers and statistics of the relative squared distances (statistics.relative_distance)."""
    features = code.encoder.features(x)
    ours = statistics_of(features, code.statistics, code.projections())
    total = x.new_zeros(x.shape[0])
    for key, reference in sorted(code.stats.items()):  # a fixed order: the sum is the same after load
        total = total + relative_distance(ours[key], reference.to(x))
    return total / len(code.stats)


def _writer(code: StyleCode):
    """``write(path)`` putting ``code`` there as safetensors; the encoder and its config go into the metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().float().contiguous().cpu() for k, v in {**code.stats, **code.proj}.items()}
    if code.spectrum is not None:
        tensors["spectrum"] = code.spectrum.detach().float().contiguous().cpu()
    metadata = {"format": FORMAT, "version": VERSION, "encoder": code.encoder_name,
                "encoder_config": json.dumps(code.encoder_config), "statistics": code.statistics,
                "weights": json.dumps(list(code.weights))}
    return lambda path: save_file(tensors, str(path), metadata=metadata)


def save_style(code: StyleCode, path: Path | str) -> Path:
    """Write ``code`` as safetensors at ``path``, atomically (a complete file or none; an existing one replaced)."""
    return write_replace(path, _writer(code))


def save_style_new(code: StyleCode, candidates: Iterable[Path | str]) -> Path:
    """Write ``code`` under the first of ``candidates`` (one folder) that no file has, claimed exclusively."""
    return write_new(candidates, _writer(code))


def _encoder_of_file(name: Any, config: Dict[str, Any], search_dirs: Sequence[Path | str], who: str) -> Encoder:
    """build_encoder for a file's metadata: its errors name the file (an over-limit one stays a LimitError)."""
    try:
        return build_encoder(name, config, search_dirs)
    except LimitError as error:
        raise LimitError(f"{who}: {error}") from None
    except (ValueError, TypeError) as error:
        raise ValueError(f"{who}: the metadata's encoder {str(name)[:80]!r} with encoder_config "
                         f"{str(config)[:120]}: {error}") from None


def load_style(path: Path | str, search_dirs: Sequence[Path | str] = (), clip_vision: Any = None) -> StyleCode:
    """Read a StyleCode written by ``save_style``, checking the format, the metadata and every key.

    A code made with a CLIP vision model (encoder ``clip_vision``) needs that model as ``clip_vision``; the
    file only records its config, which must match the model's."""
    from safetensors import SafetensorError, safe_open

    who = f"load_style ({path})"
    if not Path(path).is_file():
        raise FileNotFoundError(f"{who}: no such file; expected a style code written by save_style (.safetensors)")
    # the file size limit, a header that describes its data, and float statistics -- before any tensor is read
    check_float_entries(read_header(path, who), who)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{who}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{who}: metadata format {metadata.get('format')!r}; expected {FORMAT!r} "
                         "(a style code written by save_style)")
    if metadata.get("version") != VERSION:
        raise ValueError(f"{who}: version {str(metadata.get('version'))[:40]!r}; this pack reads style codes of "
                         f"version {VERSION!r} (a code from a newer pack needs that pack)")
    try:
        statistics, encoder = metadata["statistics"], metadata["encoder"]
        config, weights = json.loads(metadata["encoder_config"]), tuple(json.loads(metadata["weights"]))
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise ValueError(f"{who}: damaged metadata ({str(error)[:200]!r}); expected encoder, encoder_config, "
                         "statistics, weights") from None
    if not isinstance(config, dict) or not all(isinstance(w, (int, float)) and not isinstance(w, bool)
                                               for w in weights):
        raise ValueError(f"{who}: damaged metadata: encoder_config must be a JSON object and weights a list of "
                         f"numbers; got {str(config)[:80]} and {str(list(weights))[:80]}")
    if statistics not in STATISTICS:
        raise ValueError(f"{who}: statistics {statistics!r}; expected one of {', '.join(STATISTICS)}")
    check_float_tensors(tensors, who)  # integer statistics would be truncated, NaN ones blamed on the walk
    if encoder == CLIP_VISION:
        net = rebuild_clip_vision(config, clip_vision, who)
    elif clip_vision is not None:
        raise ValueError(f"{who}: clip_vision was given, but the code was made with encoder {encoder!r}; expected "
                         f"clip_vision only for codes of encoder {CLIP_VISION!r}")
    else:
        net = _encoder_of_file(encoder, config, search_dirs, who)
    with torch.no_grad():
        channels = [f.shape[1] for f in net.features(torch.zeros(1, 3, 16, 16))]
    shapes = {"gram": lambda c: (c, c), "mean": lambda c: (c,), "std": lambda c: (c,),
              "swd": lambda c: (PROJECTIONS, QUANTILES), "proj": lambda c: (c, PROJECTIONS)}
    kinds = KINDS[statistics] + (("proj",) if "swd" in KINDS[statistics] else ())
    expected = {f"{kind}.{i}": shapes[kind](c) for i, c in enumerate(channels) for kind in kinds}
    spectrum = tensors.pop("spectrum", None)  # absent from codes saved before it existed
    if spectrum is not None and tuple(spectrum.shape) != (BINS,):
        raise ValueError(f"{who}: key spectrum has shape {tuple(spectrum.shape)}; expected ({BINS},)")
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        raise ValueError(f"{who}: keys missing {missing or 'none'}, unexpected {extra or 'none'}; expected "
                         f"{', '.join(expected)} for encoder {encoder!r} with statistics {statistics!r}")
    for key, shape in expected.items():
        if tuple(tensors[key].shape) != shape:
            raise ValueError(f"{who}: key {key} has shape {tuple(tensors[key].shape)}; expected {shape}")
    stats = {k: v for k, v in tensors.items() if not k.startswith("proj.")}
    proj = {k: v for k, v in tensors.items() if k.startswith("proj.")}
    return StyleCode(encoder, config, statistics, weights, stats, proj, net, spectrum)
