"""A WALK_TARGET (a MODEL target) plus a guidance chain as a ComfyUI GUIDER.

ComfyUI's CFGGuider owns the model's sampling life cycle (loading, prompt preparation, hooks, wrappers);
``WalkGuider`` subclasses it and replaces only ``predict_noise`` -- one evaluation -- with
:class:`GuidedPrediction`. Order of one evaluation (documented in docs/comfyui-models.md):

1. the raw predictions: ComfyUI's ``calc_cond_batch`` for the positive prompt, and in the same batch the
   negative one when an active term needs the unconditional branch (cfg, apg); model patches that act
   inside the model (attention patches, ControlNet, LoRA hooks, ...) act here;
2. the model's ``sampler_pre_cfg_function`` patches, on those predictions;
3. the chain's terms in order; the ``cfg`` term combines with the model's ``sampler_cfg_function`` when a
   patch installed one (RescaleCFG, ...), its weight as the scale -- the chain never installs one itself, so
   it never takes that single slot from another node;
4. the model's ``sampler_post_cfg_function`` patches (PAG, SAG, ...), on the chain's result, with the last
   active cfg term's weight as ``cond_scale`` (1 when none was active).

Nothing imports ComfyUI at module level: the guider class is built on first use.
"""
from __future__ import annotations

import functools
from dataclasses import replace
from typing import Callable, Optional

import torch

from ..walk_core.guidance import GuidanceChain
from ..walk_core.targets import WalkTarget
from .comfy_negative import negative_conds, with_negative_branches
from .comfy_perturb import perturbed_prediction


class GuidedPrediction:
    """One walk's ``predict_noise``: ComfyUI's predictions through the chain and the model's cfg patches.

    ``calc(model, conds, x, timestep, model_options) -> [cond_pred, uncond_pred]`` is ComfyUI's
    ``comfy.samplers.calc_cond_batch`` (a stand-in in tests); ``conds`` ({"positive": [...], "negative":
    [...]}) and ``model`` are the guider's prepared prompts and inner model, given per call.
    """

    def __init__(self, target: WalkTarget, chain: GuidanceChain, sigma_max: float, sigma_min: float,
                 calc: Callable, records: Optional[list] = None):
        self.calc = calc
        self.model = None
        self.conds: dict = {}
        self.last: dict = {}
        view = replace(target, denoiser=self._conditional, unconditional=self._unconditional, paired=self._paired,
                       cfg_formula=self._cfg, perturbed=self._perturbed)
        chain = with_negative_branches(chain, target, self._prompt)  # PerpNeg's negative prompt (comfy_negative.py)
        self.guided = chain.wrap(view, sigma_max, sigma_min, records=records)

    # -- the branches, as the chain asks for them
    def _raw(self, x, sigma, both: bool, model_options, seed):
        conds = [self.conds.get("positive"), self.conds.get("negative") if both else None]
        out = list(self.calc(self.model, conds, x, sigma, model_options))
        for fn in model_options.get("sampler_pre_cfg_function", []):
            out = list(fn({"conds": conds, "conds_out": out, "cond_scale": self.last.get("scale", 1.0),
                           "timestep": sigma, "input": x, "sigma": sigma, "model": self.model,
                           "model_options": model_options}))
        self.last["cond"] = out[0]
        if both:
            self.last["uncond"] = out[1]
        return out

    def _prompt(self, key, x, sigma, model_options=None, seed=None, **_):
        """The prediction for the extra prepared prompt ``key`` (a term's negative, e.g. PerpNeg's)."""
        return self.calc(self.model, [self.conds.get(key)], x, sigma, model_options or {})[0]

    def _conditional(self, x, sigma, model_options=None, seed=None, **_):
        return self._raw(x, sigma, False, model_options or {}, seed)[0]

    def _paired(self, x, sigma, model_options=None, seed=None, **_):
        cond, uncond = self._raw(x, sigma, True, model_options or {}, seed)[:2]
        return cond, uncond

    def _unconditional(self, x, sigma, model_options=None, seed=None, **_):
        return self._paired(x, sigma, model_options, seed)[1]

    def _perturbed(self, x, sigma, perturbation, model_options=None, seed=None, **_):
        """The network's prediction with its insides perturbed (PAG, SEG, SAG, SLG, SWG, TPG, NAG, PLADIS):
        comfy_perturb.py."""
        prompt = self.conds.get("positive" if perturbation.branch == "conditional" else "negative")
        return perturbed_prediction(self.calc, self.model, prompt, x, sigma, model_options or {}, perturbation,
                                    negative=self.conds.get("negative"))

    def _cfg(self, cond, uncond, scale, x, sigma, model_options=None, **_):
        self.last["scale"] = scale
        fn = (model_options or {}).get("sampler_cfg_function")
        if fn is None:
            return uncond + scale * (cond - uncond)
        conds = self.conds
        return x - fn({"cond": x - cond, "uncond": x - uncond, "cond_scale": scale, "timestep": sigma, "input": x,
                       "sigma": sigma, "cond_denoised": cond, "uncond_denoised": uncond, "model": self.model,
                       "model_options": model_options, "input_cond": conds.get("positive"),
                       "input_uncond": conds.get("negative")})

    # -- one evaluation
    def __call__(self, model, conds: dict, x: torch.Tensor, timestep: torch.Tensor, model_options: Optional[dict],
                 seed=None) -> torch.Tensor:
        self.model, self.conds, self.last = model, conds, {}
        model_options = model_options or {}
        both = getattr(self.guided, "with_renoise", None)  # a CFG++ term: keep its re-noising estimate too
        if both is None:
            denoised, renoise = self.guided(x, timestep, model_options=model_options, seed=seed), None
        else:
            denoised, renoise = both(x, timestep, model_options=model_options, seed=seed)
        post = model_options.get("sampler_post_cfg_function", [])
        if post:
            cond = self.last["cond"]
            uncond = self.last.get("uncond")
            uncond = torch.zeros_like(cond) if uncond is None else uncond
            for fn in post:
                denoised = fn({"denoised": denoised, "cond": conds.get("positive"), "uncond": conds.get("negative"),
                               "cond_scale": self.last.get("scale", 1.0), "model": model, "uncond_denoised": uncond,
                               "cond_denoised": cond, "sigma": timestep, "model_options": model_options,
                               "input": x})
        if renoise is not None:  # what the walk adds to x before its step (walk_core.bridge.sampler, walks.base)
            self.last["renoise_shift"] = denoised - renoise
        return denoised


def check_renoise_sampler(chain: GuidanceChain, sampler) -> None:
    """A chain with a CFG++ term needs one of the pack's walks that re-noise (Walk as SAMPLER, or WalkSampler): any
    other SAMPLER would step with the guided noise and silently drop the term's re-noising."""
    if not chain.renoises:
        return
    from ..walk_core.walks import WALKS  # noqa: PLC0415

    name = getattr(getattr(sampler, "sampler_function", None), "walk_name", None)
    if name is None or not WALKS[name].renoise:
        kinds = ", ".join(sorted({t.kind for t in chain.terms if t.renoises}))
        able = ", ".join(n for n in WALKS.names() if WALKS[n].renoise)
        got = f"walk {name!r}" if name else "a SAMPLER that is not one of the pack's walks"
        raise ValueError(f"WalkGuider: the guidance term {kinds} changes the noise the walk steps with; {got} cannot "
                         f"take it. Use Walk as SAMPLER (or WalkSampler) with one of {able}; ComfyUI's own *_cfg_pp "
                         "samplers do CFG++ with its CFGGuider")


def walk_range(sigmas: torch.Tensor) -> tuple:
    """(sigma_max, sigma_min) of a ComfyUI schedule: its first and its last non-zero value."""
    values = [float(s) for s in sigmas.reshape(-1) if float(s) > 0]
    if not values:
        raise ValueError("WalkGuider: the SIGMAS hold no positive noise level; expected a schedule such as "
                         "BasicScheduler's")
    return max(values), min(values)


@functools.lru_cache(maxsize=None)
def guider_class():
    """``WalkGuider``: ComfyUI's CFGGuider with the chain's prediction (built on first use, inside ComfyUI)."""
    import comfy.samplers  # noqa: PLC0415  (only present inside ComfyUI)

    from .comfy_model import circular_padding, source_of  # noqa: PLC0415

    class WalkGuider(comfy.samplers.CFGGuider):
        def __init__(self, model_patcher, target: WalkTarget, chain: GuidanceChain):
            super().__init__(model_patcher)
            self.target, self.chain = target, chain
            self.prediction: Optional[GuidedPrediction] = None
            self.records: Optional[list] = None  # set to a list to collect a GuidanceRecord per evaluation

        def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                   disable_pbar=False, seed=None):
            hi, lo = walk_range(sigmas)
            target = replace(self.target, shape=tuple(noise.shape[1:]))
            self.chain.check(target)
            check_renoise_sampler(self.chain, sampler)
            self.prediction = GuidedPrediction(target, self.chain, hi, lo, comfy.samplers.calc_cond_batch,
                                               records=self.records)
            source = source_of(self.target)
            network = getattr(source.model.model, "diffusion_model", None) if source.tile else None
            try:
                with circular_padding(network):  # a tiled target: the model pads circularly during the walk
                    return super().sample(noise, latent_image, sampler, sigmas, denoise_mask=denoise_mask,
                                          callback=callback, disable_pbar=disable_pbar, seed=seed)
            finally:
                self.prediction = None

        @property
        def walk_renoises(self) -> bool:
            """Whether the chain has a CFG++ term: the pack's walks then read :meth:`walk_renoise_shift`."""
            return self.chain.renoises

        def walk_renoise_shift(self) -> torch.Tensor:
            """D - R of the last prediction: the guided estimate minus the one the walk re-noises with (CFG++)."""
            return self.prediction.last["renoise_shift"]

        def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006  (ComfyUI's signature)
            return self.prediction(self.inner_model, self.conds, x, timestep, model_options, seed)

        @property
        def walk_guided(self) -> bool:
            """Whether the chain combines predictions (a term is on): read by Walk as SAMPLER
            (walk_core.bridge.guider_is_guided), where CFGGuider's own ``cfg`` stays 1."""
            return bool(self.chain.terms)

    return WalkGuider


def make_guider(target: WalkTarget, chain: GuidanceChain):
    """A ComfyUI GUIDER walking ``target`` (a MODEL target) under ``chain``."""
    from .comfy_model import source_of  # noqa: PLC0415

    source = source_of(target)
    if source is None:
        raise ValueError(f"WalkGuider: target {target.name!r} is not a MODEL target; a GUIDER drives a ComfyUI "
                         "MODEL (TargetDistributionModel). Pixel targets walk in WalkSampler")
    for term in chain.terms:
        guide = getattr(term, "guide", None)
        if guide is not None and source_of(guide) is not None:
            raise ValueError(f"GuidanceStep ({term.kind}): guide {guide.name!r} is a ComfyUI MODEL target; guiding a "
                             "MODEL with a second MODEL is not supported (ComfyUI samples one model per guider) -- "
                             "use CFG or APG with the prompts")
    chain.check(target)
    guider = guider_class()(source.model, target, chain)
    guider.set_conds(source.positive, source.negative)
    extra = negative_conds(chain, source)
    if extra:
        guider.inner_set_conds(extra)  # prepared with the others by ComfyUI's sample()
    return guider
