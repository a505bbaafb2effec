"""ComfyUI's samplers as peers: ``comfy/k_diffusion/sampling.py`` read from a ComfyUI checkout at run time.

Set ``WALK_COMFYUI`` to the checkout's root (the folder holding ``comfy/``). Nothing of ComfyUI is copied
into this project: its four files ``comfy/k_diffusion/{utils,deis,sa_solver,sampling}.py`` are executed from
the checkout as ``_rwalk_peer_comfy.k_diffusion.*``, with the interpreter running the benchmark (scipy,
torchsde and tqdm are needed, as for k-diffusion).

``sampling.py`` imports ``comfy.model_patcher`` and ``comfy.model_sampling``, which pull in ComfyUI's whole
model-management stack. Its samplers only use them to ask the model for its ``model_sampling`` object (to
tell a rectified-flow model, ``CONST``, from an EDM/eps one, and for ``percent_to_sigma`` / ``noise_scaling``)
and, in the ``*_cfg_pp`` samplers, to install a post-CFG hook in ComfyUI's guider. While the file loads,
small stand-ins serve those two imports (restored afterwards); the model handed to a ComfyUI sampler is the
plain denoiser wrapped by :class:`ComfyModel`, which exposes an EDM/eps ``model_sampling`` stand-in
(:class:`EpsModelSampling`). The ``cfg_pp`` samplers (need the guider) and the ``_RF`` ones (rectified flow)
are skipped and listed as such.
"""
from __future__ import annotations

import logging
import math
import os
import types
from pathlib import Path
from typing import Optional

import torch

from .module_loader import load_file, stand_ins, stub_module, synthetic_package

log = logging.getLogger(__name__)

ENV = "WALK_COMFYUI"
PACKAGE = "_rwalk_peer_comfy"
FILES = ("utils", "deis", "sa_solver", "sampling")  # load order: sampling imports the other three
_loaded: dict = {}


class ConstStandIn:
    """Stands in for ``comfy.model_sampling.CONST`` (rectified flow); the benchmark's models are never one."""


class EpsModelSampling:
    """The part of ComfyUI's EDM/eps ``model_sampling`` its samplers use, for x = x0 + sigma * noise."""

    def __init__(self, sigma_min: float, sigma_max: float):
        self.sigma_min = torch.tensor(float(sigma_min))
        self.sigma_max = torch.tensor(float(sigma_max))

    def percent_to_sigma(self, percent: float) -> float:
        """Percent of the walk -> sigma, log-linear from sigma_max (0) to sigma_min (1), as ComfyUI's EDM."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        lo, hi = math.log(float(self.sigma_min)), math.log(float(self.sigma_max))
        return math.exp(hi + percent * (lo - hi))

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        sigma = torch.as_tensor(sigma, dtype=noise.dtype, device=noise.device)
        scale = (1.0 + sigma**2).sqrt() if max_denoise else sigma
        if scale.ndim:  # one sigma per item
            scale = scale.reshape(-1, *([1] * (noise.ndim - 1)))
        return latent_image + noise * scale


class ComfyModel:
    """A plain denoiser ``D(x, sigma, **extra)`` with the attributes ComfyUI's samplers read from their model:
    ``model.inner_model.inner_model.model_sampling`` and ``model.inner_model.model_patcher.get_model_object``."""

    def __init__(self, denoiser, sigma_min: float, sigma_max: float):
        self.denoiser = denoiser
        sampling = EpsModelSampling(sigma_min, sigma_max)
        patcher = types.SimpleNamespace(get_model_object=lambda name: sampling if name == "model_sampling" else None)
        self.inner_model = types.SimpleNamespace(inner_model=types.SimpleNamespace(model_sampling=sampling),
                                                 model_patcher=patcher)

    def __call__(self, x, sigma, **extra):
        return self.denoiser(x, sigma, **extra)


def _needs_guider(*args, **kwargs):
    raise NotImplementedError("this ComfyUI sampler needs ComfyUI's CFG guider (post-CFG hook); "
                              "not available to a plain denoiser")


def _comfy_stand_ins() -> dict:
    sampling = stub_module("comfy.model_sampling", CONST=ConstStandIn)
    patcher = stub_module("comfy.model_patcher", set_model_options_post_cfg_function=_needs_guider)
    package = stub_module("comfy", model_sampling=sampling, model_patcher=patcher)
    package.__path__ = []
    return {"comfy": package, "comfy.model_sampling": sampling, "comfy.model_patcher": patcher}


def comfy_root(root: Optional[str] = None) -> Optional[Path]:
    """The checkout named by ``root`` or ``$WALK_COMFYUI`` (None when neither is set)."""
    value = root if root is not None else os.environ.get(ENV, "")
    return Path(value).expanduser().resolve() if value else None


def load_comfy_sampling(root: Optional[str] = None) -> types.ModuleType:
    """ComfyUI's ``k_diffusion.sampling`` module from the checkout (loaded once per checkout).

    Raises ValueError when no checkout is given or it has no ``comfy/k_diffusion/sampling.py``, ImportError
    when a module it needs is not installed."""
    folder = comfy_root(root)
    if folder is None:
        raise ValueError(f"peers: ${ENV} is not set; expected the path of a ComfyUI checkout")
    source = folder / "comfy" / "k_diffusion"
    if not (source / "sampling.py").is_file():
        raise ValueError(f"peers: {ENV}={folder} has no comfy/k_diffusion/sampling.py; expected a ComfyUI checkout")
    if folder in _loaded:
        return _loaded[folder]
    package = f"{PACKAGE}{len(_loaded) or ''}"
    synthetic_package(f"{package}.k_diffusion", source)
    with stand_ins(_comfy_stand_ins()):
        for name in FILES:
            module = load_file(f"{package}.k_diffusion.{name}", source / f"{name}.py")
    _loaded[folder] = module
    log.info("peers: ComfyUI sampling loaded from %s", source)
    return module
