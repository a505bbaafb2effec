"""A style encoder that wraps a CLIP vision model (ComfyUI's CLIP_VISION: CLIP, SigLIP or DINOv2 ViTs).

The wrapped object is taken duck-typed (nothing here imports ComfyUI): it needs ``image_size`` (the square
input side), ``image_mean``/``image_std`` (3 values each) and ``model``, a torch module called as
``model(pixel_values=p, intermediate_output=...)`` that returns ``(last, intermediate, pooled, ...)`` -- the
interface of ComfyUI's ``comfy.clip_vision.ClipVisionModel``. Its transformer blocks are found at
``model.vision_model.encoder.layers`` (CLIP, SigLIP: one call with ``intermediate_output="all"`` returns every
block's output, [B, depth, T, D]) or ``model.encoder.layer`` (DINOv2: one call per chosen block with an integer
``intermediate_output``). Its ``encode_image`` is not used: it rounds the pixels to 8 bits and so passes no
gradient to them.

Layers. Four block outputs spread through the depth: after 1/4, 1/2 and 3/4 of the blocks, and the
penultimate block (the one ComfyUI itself hands to conditioning). This follows Gatys et al.'s choice of
VGG layers from early to deep: early blocks carry local colour and texture, later ones more abstract
appearance. The last block is left out: CLIP trains it to feed the pooled class token, not the patches.
Each output's patch tokens (the class token, where there is one, is dropped) are normalised per token
(layer norm, no affine: the residual stream grows with depth and a few high-norm tokens would otherwise
rule the Gram matrices, Darcet et al. 2024) and reshaped to a feature map [B, D, g, g] on the model's
g x g patch grid, so the statistics of statistics.py apply unchanged.

Input. x [B, 3, H, W] in [-1, 1] becomes the model's input in torch, differentiably: to [0, 1]; resized
(bicubic, antialiased) so the shorter side is ``image_size``; cut into k square windows along the longer
side (k = ceil(long / short); they overlap evenly and cover every pixel, so a guided walk is steered
everywhere, not only in a centre crop); normalised with the model's mean and std. The k windows' feature
maps are laid side by side along the width: the statistics pool over positions, so they see all windows.
Unlike ComfyUI's own preprocessing the pixels are neither clipped nor rounded (both would stop gradients).

Gradients and devices. The model runs on its ``load_device`` (the input's device when it has none) in
float32 (ComfyUI's CLIP vision modules cast their weights to the input); the maps come back on x's device
and dtype. ``prepare`` (optional, given by the node inside ComfyUI) is called before every forward to load the
weights. When x needs a gradient (the style energy), two things of ComfyUI's models would stop autograd, and
both are handled without changing a value: their blocks add residuals in place (``x += ...``), so the forward
runs under ``torch.func.functionalize`` (in-place ops made out of place); and weights made under
``torch.inference_mode`` (as ComfyUI's loaders make them) cannot be saved for backward, so a model with such
tensors runs on plain copies of its parameters and buffers on the run device, made once per encoder (``to``
returns an encoder with none, so a walk's copies go with the walk; they cost the model's size in memory).
Without a gradient the model is called as it is.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .encoders import Encoder, check_size

log = logging.getLogger(__name__)

NAME = "clip_vision"
WHO = "style encoder clip_vision"
LAYER_FRACTIONS = (0.25, 0.5, 0.75)  # plus the penultimate block
BLOCKS = (("vision_model.encoder.layers", True), ("encoder.layer", False))  # (where, takes "all")
REQUIRED = ("image_size", "image_mean", "image_std", "model")


def style_layers(depth: int) -> Tuple[int, ...]:
    """Block indices (0-based) after 1/4, 1/2, 3/4 of ``depth`` blocks and the penultimate one."""
    picks = {max(0, round(f * depth) - 1) for f in LAYER_FRACTIONS} | {max(0, depth - 2)}
    return tuple(sorted(picks))


def _find(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def window_starts(length: int, size: int) -> List[int]:
    """Starts of ceil(length / size) windows of ``size`` that cover 0..length, evenly overlapping."""
    k = math.ceil(length / size)
    return [0] if k == 1 else [round(i * (length - size) / (k - 1)) for i in range(k)]


def _check_vision(vision: Any, who: str) -> Tuple[int, bool]:
    """(depth, takes "all") of a CLIP vision object, or an error naming what it lacks."""
    missing = [a for a in REQUIRED if not hasattr(vision, a)]
    if missing:
        raise ValueError(f"{who}: a {type(vision).__name__} lacks {', '.join(missing)}; expected a CLIP vision "
                         f"model (ComfyUI's CLIP_VISION) with {', '.join(REQUIRED)}")
    if not isinstance(vision.model, torch.nn.Module):
        raise ValueError(f"{who}: its model is a {type(vision.model).__name__}; expected a torch module")
    size = vision.image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"{who}: image_size={size!r}; expected an integer >= 16 (pixels per side)")
    for attr in ("image_mean", "image_std"):
        values = list(getattr(vision, attr))
        if len(values) != 3 or not all(math.isfinite(float(v)) for v in values) or (
                attr == "image_std" and min(float(v) for v in values) <= 0):
            raise ValueError(f"{who}: {attr}={values!r}; expected 3 finite numbers (std > 0)")
    for path, takes_all in BLOCKS:
        blocks = _find(vision.model, path)
        if blocks is not None:
            return len(blocks), takes_all
    raise ValueError(f"{who}: its model ({type(vision.model).__name__}) has none of "
                     f"{', '.join('model.' + p for p, _ in BLOCKS)}; expected ComfyUI's CLIP, SigLIP or DINOv2 "
                     "vision transformer")


@dataclass(frozen=True, eq=False)
class ClipVisionEncoder(Encoder):
    """Patch tokens of four blocks of a wrapped CLIP vision transformer as feature maps (module docstring)."""

    name: ClassVar[str] = NAME
    vision: Any
    depth: int
    layers: Tuple[int, ...]
    takes_all: bool
    prepare: Optional[Callable[[], None]] = None
    _plain: Dict[Any, Dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)  # device -> copies

    @classmethod
    def wrap(cls, vision: Any, prepare: Optional[Callable[[], None]] = None,
             who: str = WHO) -> "ClipVisionEncoder":
        """The encoder of ``vision`` (ComfyUI's ClipVisionModel or an object with its interface)."""
        if isinstance(vision, ClipVisionEncoder):
            return vision
        depth, takes_all = _check_vision(vision, who)
        return cls(vision, depth, style_layers(depth), takes_all, prepare)

    def config(self) -> Dict[str, Any]:
        v = self.vision
        return {"model": type(v.model).__name__, "image_size": int(v.image_size),
                "image_mean": [float(m) for m in v.image_mean], "image_std": [float(s) for s in v.image_std],
                "depth": self.depth, "layers": list(self.layers)}

    def to(self, device=None, dtype=None) -> "ClipVisionEncoder":
        """The same model (not moved: it runs on its own device) with no parameter copies yet."""
        return ClipVisionEncoder(self.vision, self.depth, self.layers, self.takes_all, self.prepare)

    def run_device(self, x: torch.Tensor) -> torch.device:
        device = getattr(self.vision, "load_device", None)
        return x.device if device is None else torch.device(device)

    def pixels(self, x: torch.Tensor) -> Tuple[torch.Tensor, int]:
        """x [B, 3, H, W] in [-1, 1] -> (the model's input [k B, 3, S, S] float32, window-major; k)."""
        s = int(self.vision.image_size)
        u = (x + 1) / 2
        h, w = u.shape[-2:]
        scale = s / min(h, w)
        size = (max(s, round(h * scale)), max(s, round(w * scale)))
        if size != (h, w):
            u = F.interpolate(u, size=size, mode="bicubic", antialias=True, align_corners=False)
        if size[0] > size[1]:
            windows = [u[:, :, t:t + s, :] for t in window_starts(size[0], s)]
        else:
            windows = [u[:, :, :, t:t + s] for t in window_starts(size[1], s)]
        u = torch.cat(windows)
        mean = u.new_tensor([float(m) for m in self.vision.image_mean]).view(1, 3, 1, 1)
        std = u.new_tensor([float(d) for d in self.vision.image_std]).view(1, 3, 1, 1)
        return ((u - mean) / std).float(), len(windows)

    def _forward(self, pixels: torch.Tensor, intermediate_output) -> torch.Tensor:
        """The model's ``intermediate`` output; differentiable in ``pixels`` when they require a gradient."""
        model = self.vision.model
        if not (torch.is_grad_enabled() and pixels.requires_grad):
            return model(pixel_values=pixels, intermediate_output=intermediate_output)[1]
        tensors = dict(chain(model.named_parameters(), model.named_buffers()))
        weights = None
        if any(t.is_inference() for t in tensors.values()):
            weights = self._plain_copies(tensors, pixels.device)

        def call(p):
            kwargs = {"pixel_values": p, "intermediate_output": intermediate_output}
            out = model(**kwargs) if weights is None else torch.func.functional_call(model, weights, (), kwargs)
            return out[1]

        # ComfyUI's CLIP blocks add their residuals in place (x += ...), which autograd refuses to differentiate
        # through; functionalize runs the same ops with the in-place ones made out of place (same values)
        return torch.func.functionalize(call)(pixels)

    def _plain_copies(self, tensors: Dict[str, torch.Tensor], device: torch.device) -> Dict[str, torch.Tensor]:
        """Plain (not inference-mode) copies of the model's tensors on ``device``, made once per encoder."""
        if device not in self._plain:  # inference-mode tensors cannot be saved for backward
            with torch.inference_mode(False):
                self._plain[device] = {k: t.detach().to(device=device, copy=True) for k, t in tensors.items()}
            log.info("%s: the model's weights are inference-mode tensors; made plain copies on %s for gradients",
                     WHO, device)
        return self._plain[device]

    def hidden(self, pixels: torch.Tensor) -> List[torch.Tensor]:
        """The chosen blocks' outputs, each [N, T, D]."""
        if not self.takes_all:
            return [self._forward(pixels, i) for i in self.layers]
        stack = self._forward(pixels, "all")
        if not isinstance(stack, torch.Tensor) or stack.ndim != 4 or stack.shape[1] != self.depth:
            raise ValueError(f"{WHO}: intermediate_output='all' gave {getattr(stack, 'shape', stack)}; expected "
                             f"[N, {self.depth}, tokens, width] (one entry per block)")
        return [stack[:, i] for i in self.layers]

    def feature_map(self, tokens: torch.Tensor, batch: int, k: int) -> torch.Tensor:
        """[k B, T, D] tokens of k windows -> layer-normed patch maps [B, D, g, k g]."""
        n, t, d = tokens.shape
        g = math.isqrt(t)
        if g * g != t:
            g = math.isqrt(t - 1)
            if g * g != t - 1:
                raise ValueError(f"{WHO}: {t} tokens per picture; expected g*g patches, or g*g + 1 with a class "
                                 "token first")
            tokens = tokens[:, 1:]  # the class token
        maps = F.layer_norm(tokens.float(), (d,)).transpose(1, 2).reshape(k, batch, d, g, g)
        return torch.cat(list(maps), dim=3)

    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        check_size(x, WHO)
        if self.prepare is not None:
            self.prepare()
        pixels, k = self.pixels(x.to(self.run_device(x)))
        return [self.feature_map(h, x.shape[0], k).to(device=x.device, dtype=x.dtype) for h in self.hidden(pixels)]


def rebuild(config: Dict[str, Any], vision: Any, who: str) -> ClipVisionEncoder:
    """The encoder of a saved code made with ``config``: ``vision`` must be a model with that config."""
    if vision is None:
        raise ValueError(
            f"{who}: the style code was made with a CLIP vision model ({config.get('model')}, {config.get('depth')} "
            f"blocks, {config.get('image_size')} px), which a file cannot rebuild; pass that model: "
            "load_style(path, clip_vision=model) (in ComfyUI, the CLIP_VISION it was encoded with)")
    net = ClipVisionEncoder.wrap(vision, who=f"{who}: clip_vision")
    ours = net.config()
    differ = [f"{k}: file {config.get(k)!r}, model {ours.get(k)!r}" for k in sorted(set(config) | set(ours))
              if config.get(k) != ours.get(k)]
    if differ:
        raise ValueError(f"{who}: the clip_vision model given is not the one the code was made with ("
                         f"{'; '.join(differ)}); expected the same CLIP vision model")
    return net
