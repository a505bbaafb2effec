"""GuidanceStep family: each node takes the previous WALK_GUIDANCE chain, adds one term, returns the new chain.

One node per guidance term kind (``walk_core.guidance.TERMS``), declared from one :class:`Step` entry:
its node id, display name, description, what its weight means, and the term's own inputs. The inputs
are named exactly as the term's dataclass fields and take the term's defaults, so a node call is
``chain.plus(Term(**inputs))``. A kind without a Step entry has no node (the tests say which).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..walk_core.guidance import TERMS, GuidanceChain
from .inputs import pick, pick_as
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET

Declaration = Tuple[Any, Dict[str, Any]]  # (socket type or combo choices, options)


@dataclass(frozen=True)
class Step:
    """One GuidanceStep node. ``weight`` holds the weight's limits and tooltip (None: the term has no
    weight of its own and the node no weight input); ``fields`` the term's own inputs (named as the
    term's fields). Widget defaults come from the term's dataclass defaults."""

    kind: str
    node_id: str
    display_name: str
    description: str
    weight: Optional[Dict[str, Any]]
    fields: Dict[str, Declaration] = field(default_factory=dict)


def _scale(meaning: str, hi: float = 30.0) -> Dict[str, Any]:
    return {"min": 0.0, "max": hi, "step": 0.1, "tooltip": meaning}


STEPS: Tuple[Step, ...] = (
    Step("cfg", "GuidanceStepCFG", "Guidance Step: CFG", (
        "Classifier-free guidance (Ho & Salimans 2022): D = D_u + w (D_c - D_u), pushing each step's denoised "
        "estimate away from the unconditional prediction. Needs a target with a conditional branch: a class "
        "chosen on the mixture target, or a MODEL target with prompts."),
        _scale("CFG scale w: D = D_u + w (D_c - D_u). 1 = the conditional prediction unchanged (no guidance); "
               "above 1 pushes samples towards the chosen class and away from the others; 0 = unconditional.")),
    Step("rescale", "GuidanceStepRescale", "Guidance Step: CFG Rescale", (
        "CFG rescale (Lin et al. 2023, 'Common Diffusion Noise Schedules and Sample Steps are Flawed'): "
        "scales each image's guided estimate back to the standard deviation of the conditional prediction, "
        "undoing the over-exposure of a high CFG scale. Put it after a CFG (or APG) step. It has no weight of "
        "its own: phi sets how much, start/end percent and the schedule where."),
        None,
        {
            "phi": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Rescale fraction phi: D = phi * rescaled + (1 - phi) * guided, where rescaled has the "
                "conditional prediction's std. 0 = off (plain CFG), 0.7 = the paper's choice, 1 = fully "
                "rescaled.")}),
        }),
    Step("apg", "GuidanceStepAPG", "Guidance Step: APG", (
        "Adaptive projected guidance (Sadat, Hilliges & Weber 2024, 'Eliminating Oversaturation and Artifacts "
        "of High Guidance Scales in Diffusion Models'): the CFG update split into parts parallel and "
        "orthogonal to the conditional prediction, the parallel part (which over-saturates) down-weighted, the "
        "update's norm optionally capped, with reverse momentum across evaluations. Use it instead of CFG at "
        "high scales; it needs a conditional branch, like CFG."),
        _scale("Guidance scale w, as CFG's: D = D_c + (w - 1) (update). 1 = no guidance, higher = stronger "
               "pull towards the class."),
        {
            "eta": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Weight of the update's part parallel to the conditional prediction (the part that "
                "over-saturates): 0 = dropped (the paper's choice), 1 = kept as in CFG.")}),
            "norm_threshold": ("FLOAT", {"min": 0.0, "max": 10000.0, "step": 0.1, "tooltip": (
                "Cap r on the norm of each image's guidance update (scaled down to r when larger); 0 = no cap. "
                "The norm grows with the image size: for n values (3 x width x height) about 0.5 * sqrt(n) "
                "caps the update at an RMS of 0.5 per value.")}),
            "momentum": ("FLOAT", {"min": -0.99, "max": 0.99, "step": 0.01, "tooltip": (
                "Momentum beta on the guidance update across evaluations; negative (the paper uses -0.5 with "
                "DDIM) pushes away from the previous update, 0 = off (the default: with stochastic walks or 20 "
                "steps or fewer the reverse momentum was measured to throw pictures off the target).")}),
        }),
    Step("dynamic_threshold", "GuidanceStepDynamicThreshold", "Guidance Step: Dynamic Threshold", (
        "Dynamic thresholding (Saharia et al. 2022, Imagen): each image's denoised estimate is clipped to its "
        "own percentile s of absolute pixel values (when s > 1) and divided by s, so strong guidance is pulled "
        "back into [-1, 1] rather than clipped flat. Put it after the guidance it tames; pixel targets. It has "
        "no weight of its own: start/end percent and the schedule set where it acts."),
        None,
        {
            "percentile": ("FLOAT", {"min": 0.5, "max": 1.0, "step": 0.001, "tooltip": (
                "Percentile p of absolute pixel values that sets each image's threshold s (Imagen: 0.995); "
                "1 = the maximum.")}),
        }),
    Step("autoguidance", "GuidanceStepAutoguidance", "Guidance Step: Autoguidance", (
        "Autoguidance (Karras et al. 2024, 'Guiding a Diffusion Model with a Bad Version of Itself'): "
        "D = D_guide + w (D - D_guide), extrapolating away from a weaker guide target of the same shape "
        "(e.g. a mixture with more spread). Needs no class or prompt."),
        _scale("Guidance scale w: D = D_guide + w (D - D_guide). 1 = no guidance; 2-3 is typical."),
        {
            "guide": (WALK_TARGET, {"tooltip": (
                "The weaker target to guide away from (a TargetDistribution node, same space and shape as "
                "the walked target), e.g. the same mixture with larger detail/variation.")}),
        }),
)

STEP_OUTPUT_TOOLTIP = "The chain with this term appended: connect to WalkSampler's guidance or the next GuidanceStep."
GUIDANCE_INPUT_TOOLTIP = ("The guidance chain so far (another GuidanceStep); none = start a new chain. "
                          "Terms apply in chain order to each step's denoised estimate.")


def _interval_problem(node_id: str, start_percent: Any, end_percent: Any) -> Any:
    """True, or what is wrong with the literal start/end percents (None = linked, known only at run time)."""
    for name, value in (("start_percent", start_percent), ("end_percent", end_percent)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            return f"{node_id}: {name}={value!r} is not allowed; expected a number in 0..1"
    if start_percent is not None and end_percent is not None and start_percent > end_percent:
        return (f"{node_id}: start_percent={start_percent} is after end_percent={end_percent}; expected "
                "start_percent <= end_percent (the term acts from start_percent to end_percent of the walk)")
    return True


class GuidanceStepBase:
    """What every GuidanceStep node shares; :func:`step_node` fills in one term's inputs."""

    CATEGORY = f"{CATEGORY}/guidance"
    RETURN_TYPES = (WALK_GUIDANCE,)
    RETURN_NAMES = ("guidance",)
    OUTPUT_TOOLTIPS = (STEP_OUTPUT_TOOLTIP,)
    FUNCTION = "add"
    NODE_ID = "GuidanceStep"
    TERM: type = None  # the GuidanceTerm class
    TERM_INPUTS: Dict[str, Declaration] = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict(cls.TERM_INPUTS),
                "optional": {"guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_INPUT_TOOLTIP})}}

    @classmethod
    def VALIDATE_INPUTS(cls, start_percent=None, end_percent=None):
        # ComfyUI (and the headless runner) call this with the literal values when the graph is queued, and
        # then skip their own range check of these two inputs: it is done here.
        return _interval_problem(cls.NODE_ID, start_percent, end_percent)

    def add(self, guidance=None, **inputs):
        chain = GuidanceChain() if guidance is None else guidance
        return (chain.plus(self.TERM(**inputs)),)


def _with_default(term: type, name: str, declaration: Declaration) -> Declaration:
    """A widget declaration with the term's dataclass default (sockets stay as they are)."""
    kind, options = declaration
    defaults = {f.name: f.default for f in dataclasses.fields(term) if f.default is not dataclasses.MISSING}
    is_widget = isinstance(kind, (list, tuple)) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")
    if is_widget and "default" not in options and name in defaults:
        options = {"default": defaults[name], **options}
    return kind, options


def step_node(step: Step) -> type:
    """The node class of ``step`` (its term must be registered in TERMS)."""
    term = TERMS[step.kind]
    declared = {
        **({} if step.weight is None else {"weight": ("FLOAT", step.weight)}),
        **pick("start_percent", "end_percent"),
        **pick_as("schedule", "strength_schedule"),
        **step.fields,
    }
    term_inputs = {name: _with_default(term, name, d) for name, d in declared.items()}

    def add(self, guidance=None, **inputs):
        return GuidanceStepBase.add(self, guidance, **inputs)

    # ComfyUI calls FUNCTION with keyword arguments; the signature shows the term's inputs by name.
    P = inspect.Parameter
    add.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)] + [P(name, P.KEYWORD_ONLY) for name in term_inputs]
        + [P("guidance", P.KEYWORD_ONLY, default=None)])
    return type(step.node_id, (GuidanceStepBase,), {
        "__module__": __name__, "__qualname__": step.node_id, "__doc__": step.description,
        "DESCRIPTION": step.description, "NODE_ID": step.node_id, "TERM": term, "TERM_INPUTS": term_inputs,
        "add": add,
    })


# node id -> (class, display name), for the kinds registered now
GUIDANCE_NODES = {step.node_id: (step_node(step), step.display_name) for step in STEPS if step.kind in TERMS}
