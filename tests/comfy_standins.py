"""Stand-ins for the ComfyUI objects the pack's MODEL adapters touch, written from ComfyUI's conventions.

A model here is exact: its data are Gaussian, x0 ~ N(mean, scale^2) per value, with the mean set by the
prompt (a CONDITIONING whose tensor holds the mean). Its network returns what a model of each prediction type
returns (EPS: the noise; V: v; EDM: F; flow: the velocity), and ``model_sampling`` turns that into the
denoised estimate the way ComfyUI's does -- so a walk on it must reproduce N(mean, scale^2) whatever the type.

``fake_comfy(monkeypatch)`` installs minimal ``comfy.samplers`` / ``comfy.sample`` / ``comfy.utils`` /
``comfy.model_management`` / ``latent_preview`` modules that run a GUIDER and a SAMPLER the way ComfyUI's
sampling does (noise scaling, latent scaling, the callback), for tests of the nodes without ComfyUI.
"""
from __future__ import annotations

import math
import sys
import types

import torch


class Sampling:
    """ComfyUI-style model_sampling of one prediction type: eps, v, edm (VE family) or flow (CONST)."""

    def __init__(self, kind: str, sigma_min: float = 0.0292, sigma_max: float = 14.6146, sigma_data: float = 1.0):
        self.kind, self.sigma_data = kind, sigma_data
        if kind == "flow":
            sigma_min, sigma_max = 0.002, 1.0
        self.sigma_min, self.sigma_max = torch.tensor(sigma_min), torch.tensor(sigma_max)

    @staticmethod
    def _view(sigma, like):
        return torch.as_tensor(sigma, dtype=like.dtype).reshape(-1, *(1,) * (like.ndim - 1))

    def calculate_input(self, sigma, x):
        if self.kind == "flow":
            return x
        return x / (self._view(sigma, x) ** 2 + self.sigma_data ** 2).sqrt()

    def calculate_denoised(self, sigma, out, x):
        s, d = self._view(sigma, x), self.sigma_data
        if self.kind in ("eps", "flow"):
            return x - out * s
        skip, gain = d ** 2 / (s ** 2 + d ** 2), s * d / (s ** 2 + d ** 2).sqrt()
        return x * skip - out * gain if self.kind == "v" else x * skip + out * gain

    def network_output(self, sigma, x, denoised):
        """What the network of this type outputs for the exact denoised estimate (calculate_denoised inverted)."""
        s, d = self._view(sigma, x), self.sigma_data
        if self.kind in ("eps", "flow"):
            return (x - denoised) / s
        skip, gain = d ** 2 / (s ** 2 + d ** 2), s * d / (s ** 2 + d ** 2).sqrt()
        return (x * skip - denoised) / gain if self.kind == "v" else (denoised - x * skip) / gain

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        s = self._view(sigma, noise)
        if self.kind == "flow":
            return s * noise + (1 - s) * latent_image
        return noise * ((1 + s ** 2).sqrt() if max_denoise else s) + latent_image

    def inverse_noise_scaling(self, sigma, latent):
        return latent / (1 - self._view(sigma, latent)) if self.kind == "flow" else latent

    def exact_denoised(self, x, sigma, mean, scale):
        """E[x0 | x] for x0 ~ N(mean, scale^2): VE x = x0 + s n; flow x = (1 - t) x0 + t n."""
        s = self._view(sigma, x)
        a = (1 - s) if self.kind == "flow" else torch.ones_like(s)
        var = a ** 2 * scale ** 2 + s ** 2
        return mean + a * scale ** 2 / var * (x - a * mean)


class LatentFormat:
    latent_channels = 4
    scale_factor = 0.5
    latent_rgb_factors = [[0.3, 0.2, 0.3], [0.3, 0.5, 0.2], [-0.3, 0.2, 0.3], [-0.2, -0.3, -0.7]]
    latent_rgb_factors_bias = None

    def process_in(self, latent):
        return latent * self.scale_factor

    def process_out(self, latent):
        return latent / self.scale_factor


class BaseModel:
    """The inner model: ``apply_model(x, sigma, mean)`` -> denoised through the prediction type's network."""

    def __init__(self, sampling: Sampling, scale: float = 0.7):
        self.model_sampling, self.latent_format, self.scale = sampling, LatentFormat(), scale
        self.calls = []  # the batch size of every network call
        self.diffusion_model = torch.nn.Conv2d(4, 4, 3, padding=1)  # only its padding mode is watched
        self.padding_seen = []  # the conv's padding mode at every call

    def process_latent_in(self, latent):
        return self.latent_format.process_in(latent)

    def process_latent_out(self, latent):
        return self.latent_format.process_out(latent)

    def apply_model(self, x, sigma, mean):
        self.calls.append(x.shape[0])
        self.padding_seen.append(self.diffusion_model.padding_mode)
        ms = self.model_sampling
        exact = ms.exact_denoised(x, sigma, mean, self.scale)
        out = ms.network_output(sigma, x, exact)  # what a network of this type would output
        return ms.calculate_denoised(sigma, out, x)


class ModelPatcher:
    """A ModelPatcher stand-in: get_model_object, model_options, load_device."""

    def __init__(self, kind: str = "eps", scale: float = 0.7):
        self.model = BaseModel(Sampling(kind), scale)
        self.model_options = {"transformer_options": {}}
        self.load_device = torch.device("cpu")

    def get_model_object(self, name):
        return {"model_sampling": self.model.model_sampling, "latent_format": self.model.latent_format}[name]


def conditioning(mean: float):
    """A CONDITIONING stand-in whose tensor is the data mean the prompt asks for."""
    return [[torch.full((1, 1, 1), float(mean)), {}]]


class Decoder(torch.nn.Module):
    """A first_stage_model: a fixed 1x1 convolution to RGB, upsampled 8x, squashed to [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.rgb = torch.nn.Conv2d(4, 3, 1, bias=False)
        with torch.no_grad():
            self.rgb.weight.copy_(torch.tensor(LatentFormat.latent_rgb_factors).t().reshape(3, 4, 1, 1))

    def decode(self, z):
        return torch.nn.functional.interpolate(self.rgb(z), scale_factor=8, mode="nearest").tanh()


class VAE:
    """Decodes a latent [B, 4, h, w] to pixels [B, 8h, 8w, 3] in [0, 1] (ComfyUI's VAE.decode layout)."""

    def __init__(self):
        self.first_stage_model = Decoder()
        self.vae_dtype, self.device = torch.float32, torch.device("cpu")

    def decode(self, latent):
        with torch.no_grad():
            return ((self.first_stage_model.decode(latent.float()) + 1) / 2).permute(0, 2, 3, 1)

    def encode(self, pixels):
        """IMAGE [B, H, W, 3] -> latent [B, 4, H/8, W/8]: 8x8 means through a fixed 3 -> 4 map."""
        x = torch.nn.functional.avg_pool2d(pixels.permute(0, 3, 1, 2).float() * 2 - 1, 8)
        return torch.einsum("bchw,cd->bdhw", x, torch.tensor(LatentFormat.latent_rgb_factors).t())


def calc_cond_batch(model, conds, x, sigma, model_options):
    """ComfyUI's calc_cond_batch in miniature: one network call for all the prompts given; None -> zeros."""
    means = [None if c is None else float(c[0]["mean"]) for c in conds]
    live = [m for m in means if m is not None]
    batch = torch.cat([x] * len(live))
    mean = torch.cat([torch.full((x.shape[0],) + (1,) * (x.ndim - 1), m) for m in live]).to(x)
    sig = torch.as_tensor(sigma).reshape(-1).expand(x.shape[0]).repeat(len(live))
    out = model.apply_model(batch, sig, mean).chunk(len(live))
    it = iter(out)
    return [torch.zeros_like(x) if m is None else next(it) for m in means]


class _Inpaint:
    """KSamplerX0Inpaint's role: the guider as a model(x, sigma, **extra_args), plus the mask blending."""

    def __init__(self, guider):
        self.inner_model = guider

    def __call__(self, x, sigma, denoise_mask=None, model_options=None, seed=None):
        out = self.inner_model(x, sigma, model_options=model_options or {}, seed=seed)
        if denoise_mask is not None:
            out = out * denoise_mask + self.latent_image * (1 - denoise_mask)
        return out


class KSAMPLER:
    def __init__(self, sampler_function, extra_options=None, inpaint_options=None):
        self.sampler_function, self.extra_options = sampler_function, dict(extra_options or {})

    def sample(self, guider, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        ms = guider.inner_model.model_sampling
        extra_args["denoise_mask"] = denoise_mask
        model_k = _Inpaint(guider)
        model_k.latent_image = latent_image
        max_denoise = math.isclose(float(sigmas[0]), float(ms.sigma_max), rel_tol=1e-5)
        x = ms.noise_scaling(sigmas[0], noise, latent_image, max_denoise)
        k_callback = None if callback is None else (
            lambda d: callback(d["i"], d["denoised"], d["x"], len(sigmas) - 1))
        x = self.sampler_function(model_k, x, sigmas, extra_args=extra_args, callback=k_callback,
                                  disable=disable_pbar, **self.extra_options)
        return ms.inverse_noise_scaling(sigmas[-1], x)


class CFGGuider:
    """CFGGuider's life cycle in miniature: conds with their mean, latent scaling, the sampler, back out."""

    def __init__(self, model_patcher):
        self.model_patcher, self.model_options, self.cfg = model_patcher, model_patcher.model_options, 1.0

    def set_conds(self, positive, negative):
        self.original_conds = {"positive": positive, "negative": negative}

    def inner_set_conds(self, conds):  # more prompts under their own keys (ComfyUI's PerpNegGuider uses it)
        self.original_conds.update(conds)

    def set_cfg(self, cfg):
        self.cfg = cfg

    def __call__(self, x, timestep, model_options=None, seed=None):
        return self.predict_noise(x, timestep, model_options or {}, seed)

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        cond, uncond = calc_cond_batch(self.inner_model, [self.conds["positive"], self.conds["negative"]], x,
                                       timestep, model_options)
        return uncond + self.cfg * (cond - uncond)

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        self.inner_model = self.model_patcher.model
        self.conds = {k: [{"mean": v[0][0].reshape(-1)[0]}] for k, v in self.original_conds.items()}
        if torch.count_nonzero(latent_image) > 0:
            latent_image = self.inner_model.process_latent_in(latent_image)
        if denoise_mask is not None:  # ComfyUI's prepare_mask: [B, 1, h, w] at the latent's size
            mask = denoise_mask.reshape((-1, 1) + tuple(denoise_mask.shape[-2:])).float()
            mask = torch.nn.functional.interpolate(mask, size=tuple(noise.shape[-2:]), mode="bilinear")
            denoise_mask = mask.expand(noise.shape[0], noise.shape[1], -1, -1)
        extra_args = {"model_options": dict(self.model_options), "seed": seed}
        out = sampler.sample(self, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
        return self.inner_model.process_latent_out(out.float())


def fake_comfy(monkeypatch):
    """Install the stand-in ComfyUI modules for one test (monkeypatch removes them afterwards)."""
    comfy = types.ModuleType("comfy")
    samplers = types.ModuleType("comfy.samplers")
    samplers.KSAMPLER, samplers.CFGGuider, samplers.calc_cond_batch = KSAMPLER, CFGGuider, calc_cond_batch
    sample = types.ModuleType("comfy.sample")
    sample.fix_empty_latent_channels = lambda model, latent: latent
    utils = types.ModuleType("comfy.utils")
    utils.PROGRESS_BAR_ENABLED = False
    utils.ProgressBar = lambda total: types.SimpleNamespace(update_absolute=lambda *a, **k: None)
    mm = types.ModuleType("comfy.model_management")
    mm.interrupted = False

    def check():
        if mm.interrupted:
            raise RuntimeError("interrupted")

    mm.throw_exception_if_processing_interrupted = check
    mm.intermediate_device = lambda: torch.device("cpu")
    preview = types.ModuleType("latent_preview")
    preview.steps = []
    preview.prepare_callback = lambda model, steps, x0_output=None: (
        lambda step, x0, x, total: preview.steps.append(step))
    comfy.samplers, comfy.sample, comfy.utils, comfy.model_management = samplers, sample, utils, mm
    for name, module in (("comfy", comfy), ("comfy.samplers", samplers), ("comfy.sample", sample),
                         ("comfy.utils", utils), ("comfy.model_management", mm), ("latent_preview", preview)):
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(comfy=comfy, model_management=mm, latent_preview=preview)
