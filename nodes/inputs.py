"""Shared input declarations: every limit lives in this one table and every input has a tooltip."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..walk_core import SCHEDULES, WALKS
from ..walk_core.guidance import STRENGTH_SCHEDULES
from ..walk_core.noise import SEED_MAX
from . import schedule_folder  # noqa: F401  (ComfyUI's models/walk_schedules, before the choices below)

# name -> (type, options). Nodes pick entries with ``pick(...)`` so a shared input is declared once.
INPUTS: Dict[str, Tuple[Any, Dict[str, Any]]] = {
    "walk": (WALKS.names(), {"default": "euler_ancestral", "tooltip": (
        "The random walk from noise to the target. euler/heun: deterministic ODE baselines; euler_ancestral: "
        "ancestral (DDPM) steps; edm: Karras et al. 2022 churned Heun; langevin: annealed Langevin dynamics "
        "(Song & Ermon 2019); pc: predictor-corrector (Song et al. 2021); adams: deterministic multistep on the "
        "noise prediction in log sigma (DEIS-style exponential integrator), the most accurate at 10-20 steps; "
        "er_sde: multistep exponential integrator of the extended reverse SDE (Cui et al. 2023), the most "
        "accurate stochastic walk at 10-20 steps; restart: Heun with restarts (Xu et al. 2023), fresh noise up to "
        "a higher level and back, an SDE's error contraction at an ODE's accuracy. The higher-order walks guard "
        "their steps, so none blows up under strong CFG (docs/walks.md).")}),
    "schedule": (SCHEDULES.names() + SCHEDULES.learned_names(), {"default": "karras", "tooltip": (
        "How the noise level sigma falls from sigma_max to sigma_min: karras (rho 7), exponential (uniform in "
        "log sigma), polyexponential, linear (uniform in sigma), vp (the VP-SDE's); learned:<name> = a schedule "
        "learned for a walk, NFE and target (Learn Walk Schedule, cli.py learn-schedule; docs/schedules.md).")}),
    "steps": ("INT", {"default": 20, "min": 1, "max": 10000, "tooltip": (
        "Number of noise levels. Evaluations per step: 1 for euler, euler_ancestral, adams, er_sde; ~2 for heun, "
        "edm; ~2 plus 6 per restart for restart (one restart from 4 levels, two from 7); corrector_steps (+1 at "
        "the end) for langevin; 1 + corrector_steps for pc.")}),
    "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True, "tooltip": (
        "Seed of the walk's noise. Item i of a batch uses seed + i, so any image can be remade alone.")}),
    "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": "How many pictures to walk at once."}),
    "width": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 8, "tooltip": (
        "Output width in pixels, for targets that take a size (mixture, patches, own models, MODEL: a multiple "
        "of its latent cell, 8); ignored by fixed-size targets and when an init latent sets the size.")}),
    "height": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 8, "tooltip": (
        "Output height in pixels, for targets that take a size (mixture, patches, own models, MODEL: a multiple "
        "of its latent cell, 8); ignored by fixed-size targets and when an init latent sets the size.")}),
    "sigma_max": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1000.0, "step": 0.01, "tooltip": (
        "Highest noise level the walk starts from; 0 = the target's own (80 for pixel targets; a MODEL's from its "
        "model_sampling, e.g. 14.6 for SD1.5, 1 for flow models).")}),
    "sigma_min": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1000.0, "step": 0.001, "tooltip": (
        "Lowest noise level before the final step to 0; 0 = the target's own (0.002 for pixel targets; a "
        "MODEL's from its model_sampling).")}),
    "eta": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip": (
        "Used by euler_ancestral and pc: scale of the fresh noise of each ancestral step (0 = deterministic, "
        "1 = exact ancestral sampling).")}),
    "s_noise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.001, "tooltip": (
        "Used by euler_ancestral, edm, langevin, pc, er_sde and restart: multiplies every fresh noise draw "
        "(EDM's S_noise; slightly above 1 can offset detail loss; the patch-target examples use 1.15).")}),
    "churn": ("FLOAT", {"default": 40.0, "min": 0.0, "max": 1000.0, "step": 0.1, "tooltip": (
        "Used by edm: S_churn, the total amount of noise re-added (per step gamma = min(churn/steps, "
        "sqrt2-1), inside sigma 0.05..50). 0 = Heun's ODE.")}),
    "snr": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip": (
        "Used by langevin and pc: signal-to-noise ratio that sets the Langevin step, eps = 2 (snr sigma)^2. "
        "0 = the walk's own default (langevin 0.5, pc 0.16).")}),
    "corrector_steps": ("INT", {"default": 1, "min": 0, "max": 100, "tooltip": (
        "Used by langevin (Langevin steps per noise level, at least 1) and pc (corrector steps per level; "
        "0 = the predictor alone).")}),
    "order": ("INT", {"default": 0, "min": 0, "max": 4, "tooltip": (
        "Used by adams and er_sde: how many past estimates their polynomial uses (1 = first order; 3 = their "
        "default, the most accurate unguided; 2 is steadier under strong guidance at 10 steps or fewer). 0 = "
        "the walk's default.")}),
    "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": (
        "With an init image or latent: how much of the walk to run from it (1 = start from pure noise and "
        "ignore the init's content, 0.3 = keep most of it).")}),
    "trajectory_every": ("INT", {"default": 5, "min": 0, "max": 10000, "tooltip": (
        "Keep an x-hat-0 snapshot every this many steps for the trajectory output (the last step is always "
        "kept; 0 = the last only).")}),
    # guidance terms (GuidanceStep nodes): where in the walk a term acts, and how strongly
    "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
        "Where in the walk this term starts acting: 0 = from the first step, 0.3 = after 30% of the walk. "
        "Measured log-linearly in sigma over the walk's range, so it is the same sigma for every walk, "
        "schedule and step count. Must not be after end_percent.")}),
    "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
        "Where in the walk this term stops acting: 1 = up to the last step, 0.8 = not in the last 20% "
        "(fine detail). Must not be before start_percent.")}),
    "strength_schedule": (list(STRENGTH_SCHEDULES), {"default": "constant", "tooltip": (
        "How the term's strength varies between start_percent and end_percent: constant = full strength "
        "throughout; linear / cosine = fading from full at start_percent to none at end_percent (in log "
        "sigma). Strength s blends current + s * (term(current) - current).")}),
}


def pick(*names: str, **overrides: Dict[str, Any]) -> Dict[str, Tuple[Any, Dict[str, Any]]]:
    """The declarations of ``names`` from the table; ``overrides`` may change options of one entry."""
    out = {}
    for name in names:
        kind, options = INPUTS[name]
        out[name] = (kind, {**options, **overrides.get(name, {})})
    return out


def pick_as(input_name: str, entry: str, **options: Any) -> Dict[str, Tuple[Any, Dict[str, Any]]]:
    """The table's ``entry`` declared under another input name (GuidanceStep's ``schedule`` is the
    ``strength_schedule`` entry: the name ``schedule`` is taken by the walk's sigma schedule)."""
    kind, base = INPUTS[entry]
    return {input_name: (kind, {**base, **options})}


# ---- checks at the start of a node's function ------------------------------------------------------------
# ComfyUI checks neither a constant given where a socket link belongs (an API prompt's "target": "2") nor a
# NaN float (its min/max comparisons are false for NaN): the node function checks both itself.

_PLAIN_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "*", "COMBO")


def _socket_ok(kind: str, value: Any) -> bool:
    if isinstance(value, (str, bytes, int, float, bool)):
        return False
    if kind in ("IMAGE", "MASK"):
        return hasattr(value, "shape") and hasattr(value, "dim")
    if kind == "LATENT":
        return isinstance(value, dict) and "samples" in value
    return True


def input_problem(cls: type, who: str, values: Dict[str, Any]) -> Any:
    """The first of ``values`` (input name -> value) that a node cannot take: a constant where a socket link
    belongs, or a FLOAT that is not finite. None when all are fine."""
    import math

    from ..walk_core.runner.spec import article, input_specs

    specs = input_specs(cls)
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None or value is None or spec.is_combo:
            continue
        if spec.type == "FLOAT":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
                return (f"{who}: input {name!r}: {value!r} is not a finite number; "
                        f"expected {spec.allowed()}")
        elif spec.type not in _PLAIN_TYPES and isinstance(spec.type, str) and not _socket_ok(spec.type, value):
            shown = repr(value) if isinstance(value, (str, bytes, int, float, bool)) else type(value).__name__
            return (f"{who}: input {name!r} must be linked to {article(spec.type)} {spec.type} output; "
                    f"got the value {shown}")
    return None


def check_inputs(cls: type, who: str, values: Dict[str, Any]) -> None:
    """Raise ValueError for :func:`input_problem`."""
    problem = input_problem(cls, who, values)
    if problem:
        raise ValueError(problem)


def checked_function(cls: type) -> type:
    """Make ``cls``'s FUNCTION call :func:`check_inputs` on its arguments first (once per class)."""
    import functools
    import inspect

    name = getattr(cls, "FUNCTION", None)
    fn = getattr(cls, name, None) if name else None
    if fn is None or not callable(fn) or getattr(fn, "_inputs_checked", False):
        return cls
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            bound = signature.bind_partial(self, *args, **kwargs)
        except TypeError:
            return fn(self, *args, **kwargs)
        values = {k: v for k, v in bound.arguments.items() if k != "self"}
        for k, v in list(values.items()):
            if signature.parameters[k].kind == inspect.Parameter.VAR_KEYWORD:
                values.pop(k)
                values.update(v)
        check_inputs(type(self), type(self).__name__, values)
        return fn(self, *args, **kwargs)

    wrapper._inputs_checked = True
    setattr(cls, name, wrapper)
    return cls
