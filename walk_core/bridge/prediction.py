"""Noise conventions of diffusion models and the change of variables between them.

k-diffusion and the pack's walks assume the variance-exploding (VE) convention x = x0 + s n, and a
denoiser D(x, s). ComfyUI walks EPS, V-prediction and EDM models in exactly that convention (their
``model_sampling`` scales the input inside the model), so nothing changes for them. Rectified-flow models
(ComfyUI's CONST: SD3, Flux, AuraFlow, ...) mix as x = (1 - t) x0 + t n with t in (0, 1] instead. Dividing by
(1 - t) turns that into the VE convention exactly:

    y = x / (1 - t),  s = t / (1 - t)   <=>   x = y / (1 + s),  t = s / (1 + s)

and the denoised estimate (x0) is the same in both. So a walk runs on a flow model by walking y with the
noise levels s, calling the model at x = y / (1 + s), t = s / (1 + s): its stochastic steps then add noise of
the right size (a walk that assumed VE on a flow model's x would not). t = 1 (pure noise, s = infinity) is
walked from ``FLOW_SIGMA_CAP`` instead.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

FLOW_SIGMA_CAP = 1.0 - 1e-4  # the largest flow t walked: s = t / (1 - t) = 9999


def find_model_sampling(model: Any, depth: int = 4) -> Optional[Any]:
    """The ``model_sampling`` object of a ComfyUI model wrapper: on ``model`` itself or on a chain of
    ``inner_model`` attributes (ComfyUI's sampler hands a walk KSamplerX0Inpaint -> guider -> BaseModel)."""
    for _ in range(depth + 1):
        if model is None:
            return None
        found = getattr(model, "model_sampling", None)
        if found is not None:
            return found
        model = getattr(model, "inner_model", None)
    return None


def is_flow(model_sampling: Any) -> bool:
    """True when ``model_sampling`` noises as x = (1 - t) x0 + t n (rectified flow), False for the VE family.

    Decided by behaviour, not by class name: ``noise_scaling(0.5, noise=0, latent=1)`` is 1 for VE models and
    0.5 for flow models (ComfyUI's ``noise_scaling(sigma, noise, latent_image, max_denoise)``)."""
    if model_sampling is None or not hasattr(model_sampling, "noise_scaling"):
        return False
    sigma = torch.tensor([0.5])
    probe = model_sampling.noise_scaling(sigma, torch.zeros(1, 1), torch.ones(1, 1), False)
    return abs(float(torch.as_tensor(probe).reshape(-1)[0]) - 0.5) < 1e-3


class FlowAsVE:
    """A flow model's denoiser seen in the VE convention: ``FlowAsVE(model)(y, s) = model(y / (1 + s), t)``.

    ``sigmas(t)`` maps a flow schedule to VE noise levels (t capped at FLOW_SIGMA_CAP, the final 0 kept),
    ``to_ve`` / ``from_ve`` map states. Extra keyword arguments reach the model unchanged. Attributes of the
    wrapped model that walks read (``guided``, ``sigma_breaks``) are passed through, the breaks mapped to s.
    """

    def __init__(self, model):
        self.model = model
        self.guided = getattr(model, "guided", False)
        breaks = getattr(model, "sigma_breaks", ())
        self.sigma_breaks = tuple(float(self.s_of(torch.tensor(float(b)))) for b in breaks)

    @staticmethod
    def s_of(t: torch.Tensor) -> torch.Tensor:
        t = t.clamp(max=FLOW_SIGMA_CAP)
        return t / (1 - t)

    @staticmethod
    def t_of(s: torch.Tensor) -> torch.Tensor:
        return s / (1 + s)

    def sigmas(self, t: torch.Tensor) -> torch.Tensor:
        return self.s_of(t)

    def to_ve(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).clamp(max=FLOW_SIGMA_CAP)
        return x / (1 - t)

    def from_ve(self, y: torch.Tensor, s) -> torch.Tensor:
        s = torch.as_tensor(s, dtype=y.dtype, device=y.device)
        return y / (1 + s)

    def __call__(self, y: torch.Tensor, s: torch.Tensor, **extra) -> torch.Tensor:
        scale = (1 + s).reshape((-1,) + (1,) * (y.ndim - 1)).to(y.dtype)
        return self.model(y / scale, self.t_of(s), **extra)
