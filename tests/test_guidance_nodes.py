"""GuidanceStep nodes and the class-conditional mixture node: chains, inputs, graph checks, walks."""
import dataclasses

import pytest
import torch

from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes.guidance import GUIDANCE_NODES, STEPS, GuidanceStepBase
from rwalk.walk_core.guidance import CFG, TERMS, GuidanceChain
from rwalk.walk_core.runner import IO_NODE_CLASSES, WorkflowError, check_workflow
from rwalk.walk_core.targets import WalkTarget
from rwalk.walk_core.targets.mixture import GaussianMixture
from rwalk.walk_core.targets.patterns import PATTERNS

STEP_IDS = sorted(GUIDANCE_NODES)
MIXTURE = NODE_CLASS_MAPPINGS["TargetDistributionMixture"]
SAMPLER = NODE_CLASS_MAPPINGS["WalkSampler"]
# the built-in patterns in two classes: curved shapes and straight ones
CURVED_LABELS = "curved, straight, straight, curved, curved, curved, straight, straight"


def mixture(**inputs) -> WalkTarget:
    args = {"detail": 0.05, "variation": 0.15, "weights": "", "spread_scales": "", "structure_seed": 0,
            "labels": "", "class": "", **inputs}
    return MIXTURE().build(**args)[0]


def required(node_id):
    return NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"]


def is_widget(kind):
    return isinstance(kind, (list, tuple)) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")


def socket_value(kind):
    assert kind == "WALK_TARGET", f"no stand-in for a {kind} input"
    return mixture(detail=0.2)


def defaults(node_id):
    return {name: options["default"] if is_widget(kind) else socket_value(kind)
            for name, (kind, options) in required(node_id).items()}


def varied(node_id):
    """Inputs that differ from the defaults where the widget allows it (to see that they reach the term)."""
    values = {}
    for name, (kind, options) in required(node_id).items():
        if isinstance(kind, (list, tuple)):
            values[name] = next(c for c in reversed(kind) if c != options["default"]) if len(kind) > 1 else kind[0]
        elif kind == "FLOAT":
            lo, hi, d = options["min"], options["max"], options["default"]
            values[name] = round(d + 0.25 * (hi - d) if hi > d else d - 0.25 * (d - lo), 4)
        else:
            values[name] = options["default"] if is_widget(kind) else socket_value(kind)
    values["start_percent"], values["end_percent"] = 0.1, 0.9
    return values


def call(node_id, **inputs):
    cls = NODE_CLASS_MAPPINGS[node_id]
    return getattr(cls(), cls.FUNCTION)(**inputs)


# ---------------------------------------------------------------- the table


def test_every_term_kind_has_a_node():
    """A new term is one class in TERMS and one GuidanceStep node (a Step entry, or a hand-written
    GuidanceStepBase subclass where the term needs converted inputs) registered in the node table."""
    nodes = {cls.TERM.kind: node_id for node_id, cls in NODE_CLASS_MAPPINGS.items()
             if isinstance(cls, type) and issubclass(cls, GuidanceStepBase)}
    missing = [kind for kind in TERMS if kind not in nodes]
    assert not missing, f"guidance terms without a GuidanceStep node in nodes/table.py: {missing}"
    assert {step.node_id for step in STEPS} == set(GUIDANCE_NODES), "every Step entry's term is registered"


@pytest.mark.parametrize("node_id", STEP_IDS)
def test_step_declares_exactly_its_terms_fields(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert cls.CATEGORY.endswith("/guidance") and cls.RETURN_TYPES == ("WALK_GUIDANCE",)
    assert cls.INPUT_TYPES()["optional"]["guidance"][0] == "WALK_GUIDANCE"
    fields = {f.name: f for f in dataclasses.fields(cls.TERM) if f.init}
    declared = required(node_id)
    assert set(declared) <= set(fields), f"inputs that are not fields of {cls.TERM.__name__}"
    missing = set(fields) - set(declared) - {"weight"}
    assert not missing, f"{cls.TERM.__name__} fields without an input: {missing}"
    assert set(declared["schedule"][0]) == {"constant", "linear", "cosine"}
    for name, (kind, options) in declared.items():
        if is_widget(kind) and fields[name].default is not dataclasses.MISSING:
            assert options["default"] == fields[name].default, f"{node_id}.{name}: default differs from the term's"


@pytest.mark.parametrize("node_id", STEP_IDS)
def test_widget_limits_are_accepted_by_the_term(node_id):
    """Every value the editor lets through (min, default, max of each number) makes a valid term."""
    base = defaults(node_id)
    for name, (kind, options) in required(node_id).items():
        if kind not in ("INT", "FLOAT") or name in ("start_percent", "end_percent"):
            continue
        for value in (options["min"], options["default"], options["max"]):
            (chain,) = call(node_id, **{**base, name: value})
            assert getattr(chain.terms[-1], name) == value


# ---------------------------------------------------------------- chains


@pytest.mark.parametrize("node_id", STEP_IDS)
def test_step_appends_one_term_and_leaves_its_input_alone(node_id):
    inputs = varied(node_id)
    previous = GuidanceChain().plus(CFG(weight=2.0))
    before = previous.terms
    (chain,) = call(node_id, guidance=previous, **inputs)
    assert isinstance(chain, GuidanceChain) and len(chain) == len(previous) + 1
    assert previous.terms is before and len(previous) == 1, "the input chain must not change"
    assert chain.terms[:-1] == before
    term = chain.terms[-1]
    assert type(term) is TERMS[term.kind] and term.kind == NODE_CLASS_MAPPINGS[node_id].TERM.kind
    for name, value in inputs.items():
        assert getattr(term, name) is value or getattr(term, name) == value, name
    (alone,) = call(node_id, **inputs)  # no guidance input = an empty chain
    assert len(alone) == 1 and alone.terms[0] == term


@pytest.mark.parametrize("node_id", STEP_IDS)
def test_one_chain_can_feed_two_steps(node_id):
    (base,) = call("GuidanceStepCFG", **defaults("GuidanceStepCFG"))
    (a,) = call(node_id, guidance=base, **defaults(node_id))
    (b,) = call(node_id, guidance=base, **varied(node_id))
    assert len(base) == 1 and len(a) == len(b) == 2 and a.terms[0] is b.terms[0] is base.terms[0]


# ---------------------------------------------------------------- checks before anything runs


@pytest.mark.parametrize("node_id", STEP_IDS)
def test_validate_inputs_rejects_start_after_end(node_id):
    validate = NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS
    assert validate(start_percent=0.2, end_percent=0.8) is True
    assert validate(start_percent=0.5, end_percent=0.5) is True
    assert validate(start_percent=None, end_percent=0.3) is True  # linked: known only when it runs
    refused = validate(start_percent=0.8, end_percent=0.2)
    assert isinstance(refused, str)
    for text in (node_id, "start_percent=0.8", "end_percent=0.2", "start_percent <= end_percent"):
        assert text in refused
    out_of_range = validate(start_percent=1.5, end_percent=None)
    assert isinstance(out_of_range, str) and "start_percent=1.5" in out_of_range and "0..1" in out_of_range
    with pytest.raises(ValueError, match="start_percent"):  # and the term itself refuses it at run time
        call(node_id, **{**defaults(node_id), "start_percent": 0.8, "end_percent": 0.2})


def guided_api(**cfg_inputs):
    cfg = {"weight": 3.0, "start_percent": 0.0, "end_percent": 1.0, "schedule": "constant", **cfg_inputs}
    return {
        "1": {"class_type": "TargetDistributionMixture", "inputs": {
            "detail": 0.05, "variation": 0.15, "weights": "", "spread_scales": "", "structure_seed": 0,
            "labels": CURVED_LABELS, "class": "curved"}},
        "2": {"class_type": "GuidanceStepCFG", "inputs": cfg},
        "3": {"class_type": "WalkSampler", "inputs": {
            "target": ["1", 0], "guidance": ["2", 0], "walk": "euler_ancestral", "schedule": "karras", "steps": 3,
            "seed": 0, "batch_size": 1, "width": 16, "height": 16, "sigma_max": 0.0, "sigma_min": 0.0, "eta": 1.0,
            "s_noise": 1.0, "churn": 40.0, "snr": 0.0, "corrector_steps": 1, "order": 0, "denoise": 1.0,
            "trajectory_every": 5}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "t"}},
    }


def test_runner_reports_start_after_end_naming_node_class_and_input():
    table = {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
    check_workflow(guided_api(), table)  # the good graph passes
    with pytest.raises(WorkflowError) as info:
        check_workflow(guided_api(start_percent=0.9, end_percent=0.1), table)
    error = info.value
    assert (error.node_id, error.class_type) == ("2", "GuidanceStepCFG")
    assert "start_percent" in error.input_name
    for text in ("node 2", "GuidanceStepCFG", "start_percent=0.9", "end_percent=0.1"):
        assert text in str(error)
    with pytest.raises(WorkflowError, match="end_percent=2"):
        check_workflow(guided_api(end_percent=2.0), table)


# ---------------------------------------------------------------- walks


SMALL_WALK = {"walk": "euler_ancestral", "schedule": "karras", "steps": 3, "seed": 0, "batch_size": 2,
              "width": 16, "height": 16, "sigma_max": 0.0, "sigma_min": 0.0, "eta": 1.0, "s_noise": 1.0,
              "churn": 40.0, "snr": 0.0, "corrector_steps": 1, "order": 0, "denoise": 1.0, "trajectory_every": 5}


def cfg_chain(scale=3.0):
    return call("GuidanceStepCFG", weight=scale, start_percent=0.0, end_percent=1.0, schedule="constant")[0]


def test_cfg_without_a_class_fails_before_any_evaluation(monkeypatch):
    calls = []
    original = GaussianMixture.denoise

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GaussianMixture, "denoise", counted)
    target = mixture(labels=CURVED_LABELS)  # classes, but none chosen
    with pytest.raises(ValueError, match="'class' input") as info:
        SAMPLER().sample(target=target, guidance=cfg_chain(), **SMALL_WALK)
    assert "cfg" in str(info.value)
    assert calls == [], "the walk evaluated the denoiser before refusing the guidance"


def test_cfg_with_a_class_walks_and_guides():
    target = mixture(labels=CURVED_LABELS, **{"class": "curved"})
    image, latent, trajectory, *_ = SAMPLER().sample(target=target, guidance=cfg_chain(3.0), **SMALL_WALK)
    assert tuple(image.shape) == (2, 16, 16, 3) and bool(torch.isfinite(image).all())
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    plain = SAMPLER().sample(target=target, guidance=cfg_chain(1.0), **SMALL_WALK)[0]
    unguided = SAMPLER().sample(target=target, **SMALL_WALK)[0]
    torch.testing.assert_close(plain, unguided, atol=1e-4, rtol=0)  # scale 1 = the conditional walk
    assert float((image - plain).abs().max()) > 1e-3, "CFG scale 3 changed nothing"


# ---------------------------------------------------------------- the mixture's labels and class


def test_mixture_keeps_its_old_widget_order():
    """The editor lists widgets required-then-optional in declared order; new inputs only append."""
    declared = MIXTURE.INPUT_TYPES()
    widgets = [name for section in ("required", "optional") for name, (kind, _) in declared[section].items()
               if kind != "IMAGE"]
    assert widgets == ["detail", "variation", "weights", "spread_scales", "structure_seed", "labels", "class"]
    assert {"labels", "class"} <= set(declared["optional"])  # API prompts saved before them still validate


def test_class_selects_the_labelled_components():
    target = mixture(labels=CURVED_LABELS, **{"class": "straight"})
    assert target.unconditional is not None and "straight" in target.name
    unconditional = mixture(labels=CURVED_LABELS)
    assert unconditional.unconditional is None
    by_pattern = mixture(**{"class": "rings"})  # no labels: each pattern is its own class
    assert "rings" in by_pattern.name


def test_unknown_class_lists_the_classes():
    with pytest.raises(ValueError, match="class='round'") as info:
        mixture(labels=CURVED_LABELS, **{"class": "round"})
    assert "curved" in str(info.value) and "straight" in str(info.value)
    with pytest.raises(ValueError) as info:
        mixture(**{"class": "round"})
    assert all(name in str(info.value) for name in PATTERNS)


def test_labels_need_one_name_per_component():
    with pytest.raises(ValueError, match="labels"):
        mixture(labels="curved, straight")
    images = torch.rand(3, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    target = MIXTURE().build(0.05, 0.15, "", "", 0, labels="a, b, a", images=images, **{"class": "a"})[0]
    assert target.unconditional is not None
    with pytest.raises(ValueError, match="expected one of: 0, 1, 2"):
        MIXTURE().build(0.05, 0.15, "", "", 0, images=images, **{"class": "3"})
