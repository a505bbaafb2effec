"""A fixed validation set: the same crops, noise levels and noise every time, so losses compare across steps,
runs and denoisers (the benchmark measures the patch target's denoising error on the same set)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch

from .data import CropSampler, ImageSet

SIGMAS: Tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # covers the walk's useful range
CROPS = 32
CHUNK = 16  # crops per network call


@dataclass(frozen=True)
class ValidationSet:
    crops: torch.Tensor  # [N, 3, S, S] in [-1, 1]
    labels: torch.Tensor  # [N]
    noise: torch.Tensor  # [len(SIGMAS), N, 3, S, S], unit variance
    kind: str  # "held out" (pictures not trained on) or "training crops" (measures the fit only)
    sigma_data: float = 0.5

    @classmethod
    def from_images(cls, data: ImageSet, size: int, seed: int, held_out: bool, count: int = CROPS) -> "ValidationSet":
        g = torch.Generator()
        g.manual_seed(seed)
        crops, labels = CropSampler(data, size, "auto", flip=False).batch(count, g)
        noise = torch.randn((len(SIGMAS),) + tuple(crops.shape), generator=g)
        return cls(crops, labels, noise, "held out" if held_out else "training crops")

    def errors(self, denoise: Callable[..., torch.Tensor], conditional: bool = False) -> Dict[float, float]:
        """Mean squared error of ``denoise(x, sigma[, labels])`` per sigma (pixels in [-1, 1])."""
        out = {}
        with torch.no_grad():
            for k, s in enumerate(SIGMAS):
                total = 0.0
                for i in range(0, len(self.crops), CHUNK):
                    y = self.crops[i:i + CHUNK]
                    sigma = torch.full((len(y),), s)
                    args = (self.labels[i:i + CHUNK],) if conditional else ()
                    d = denoise(y + s * self.noise[k, i:i + CHUNK], sigma, *args)
                    total += float((d.float().cpu() - y).square().sum())
                out[s] = total / self.crops.numel()
        return out

    def loss(self, model) -> float:
        """EDM-weighted loss of an EDMDenoiser averaged over the sigmas (its conditional prediction when it has
        classes)."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()

        def run(x, sigma, labels=None):
            labels = labels.to(device) if labels is not None else None
            return model(x.to(device), sigma.to(device), labels)

        errors = self.errors(run, conditional=bool(model.config.num_classes))
        model.train(was_training)
        sd = self.sigma_data
        return sum((s * s + sd * sd) / (s * sd) ** 2 * e for s, e in errors.items()) / len(errors)
