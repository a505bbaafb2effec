"""Issue 29 audit: what ComfyUI lets through to a node (constants on sockets, NaN floats, bad weights) is refused
with the input's name, early where the values alone show it, and each refusal is said once."""
from __future__ import annotations

import inspect
import logging
import math

import pytest
import torch

from rwalk.nodes import NODE_CLASS_MAPPINGS as NODES
from rwalk.nodes.style import parse_weights
from rwalk.walk_core.runner.graph import ui_to_api

SAMPLER = dict(walk="euler", schedule="karras", steps=2, seed=0, batch_size=1, width=8, height=8, sigma_max=0.0,
               sigma_min=0.0, eta=1.0, s_noise=1.0, churn=0.0, snr=0.0, corrector_steps=1, order=0, denoise=1.0,
               trajectory_every=0)


def target():
    return NODES["TargetDistributionMixture"]().build(detail=0.05, variation=0.15, weights="", spread_scales="",
                                                      structure_seed=0)[0]


def test_a_constant_on_a_socket_names_the_input():
    with pytest.raises(ValueError, match=r"^WalkSampler: input 'target' must be linked to a WALK_TARGET output; "
                                         r"got the value '2'$"):
        NODES["WalkSampler"]().sample(target="2", **SAMPLER)
    with pytest.raises(ValueError, match="input 'guidance' must be linked to a WALK_GUIDANCE output; got the value "
                                         "'hello'"):
        NODES["WalkSampler"]().sample(target(), guidance="hello", **SAMPLER)
    with pytest.raises(ValueError, match="input 'init_image' must be linked to an IMAGE output; got the value 5"):
        NODES["WalkSampler"]().sample(target(), init_image=5, **SAMPLER)
    with pytest.raises(ValueError, match="WalkWander: input 'target' must be linked to a WALK_TARGET output"):
        NODES["WalkWander"]().wander("2", 2, 0.1, "euler", "karras", 2, 0, 8, 8)
    with pytest.raises(ValueError, match="StyleEncoder: input 'images' must be linked to an IMAGE output"):
        NODES["StyleEncoder"]().encode("x", "random", "gram", "", 0)


def test_guidance_nodes_check_their_sockets_too():
    checked = 0
    for name, cls in NODES.items():
        if not name.startswith("GuidanceStep"):
            continue
        specs = cls.INPUT_TYPES()
        sockets = [k for part in specs.values() for k, v in part.items()
                   if isinstance(v[0], str) and v[0].startswith("WALK_")]
        fn = getattr(cls(), cls.FUNCTION)
        for socket in sockets:
            with pytest.raises(ValueError, match=f"{name}: input '{socket}' must be linked"):
                fn(**{socket: "3"})
            checked += 1
    assert checked


def test_nan_floats_are_refused_with_the_runners_message():
    for name, expected in (("eta", "0.0..2.0"), ("s_noise", "0.0..2.0"), ("sigma_min", "0.0..1000.0")):
        with pytest.raises(ValueError, match=rf"WalkSampler: input '{name}': nan is not a finite number; "
                                             rf"expected a number in {expected}"):
            NODES["WalkSampler"]().sample(target(), **{**SAMPLER, name: math.nan})


@pytest.mark.parametrize("text", ["nan", "1e400", "-1", "0", "inf"])
def test_weights_must_be_finite_and_positive(text):
    message = f"weights={text!r}; expected finite positive numbers, comma-separated"
    with pytest.raises(ValueError, match=f"^StyleEncoder: {message}$".replace("(", r"\(").replace(")", r"\)")):
        parse_weights(text, 1, "StyleEncoder")
    assert NODES["TargetDistributionPatches"].VALIDATE_INPUTS(weights=text) == message
    assert parse_weights("1, 0.5", 2, "X") == (1.0, 0.5)


def test_patch_weights_syntax_is_refused_before_running_count_later():
    validate = NODES["TargetDistributionPatches"].VALIDATE_INPUTS
    assert "expected finite positive numbers" in validate(weights="1; 2")
    assert validate(weights="1, 2, 3") is True and validate(weights="") is True
    assert list(inspect.signature(validate).parameters) == ["weights"]


def test_reversed_sigma_range_is_refused_at_validation_without_a_class_prefix():
    validate = NODES["WalkSampler"].VALIDATE_INPUTS
    message = validate(sigma_min=5.0, sigma_max=1.0)
    assert isinstance(message, str) and "sigma_min 5.0 is above sigma_max 1.0" in message
    assert not message.startswith("WalkSampler")
    assert validate(sigma_min=0.0, sigma_max=1.0) is True and validate(sigma_min=0.5, sigma_max=0.0) is True
    assert validate(sigma_min=0.002, sigma_max=80.0) is True


def test_validate_inputs_list_only_what_their_checks_need():
    # ComfyUI repeats a refusal under every input VALIDATE_INPUTS lists and skips its own min/max for them
    assert list(inspect.signature(NODES["WalkSampler"].VALIDATE_INPUTS).parameters) == ["sigma_min", "sigma_max"]
    for name in ("WalkWander", "WalkGrid"):
        assert "VALIDATE_INPUTS" not in NODES[name].__dict__
        assert callable(NODES[name].VALIDATE_LITERALS)  # the headless runner's memory check at validation


def test_too_few_or_too_many_widget_values_are_logged(caplog):
    def ui(values):
        return {"nodes": [{"id": 7, "type": "WalkSampler", "mode": 0, "inputs": [], "outputs": [],
                           "widgets_values": values}], "links": []}

    with caplog.at_level(logging.WARNING):
        api = ui_to_api(ui(["euler", "karras", 20]), NODES)
    text = caplog.text
    assert "node 7 (WalkSampler): widgets_values has 3 value(s) for" in text
    assert "take their defaults: seed" in text and "width" in text and "height" in text
    assert api["7"]["inputs"]["width"] == 64
    caplog.clear()
    full = [v for v in _full_values()]
    with caplog.at_level(logging.WARNING):
        ui_to_api(ui(full + ["extra"]), NODES)
    assert "extra value(s) 'extra' are ignored" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ui_to_api(ui(full), NODES)
    assert "widgets_values" not in caplog.text


def _full_values():
    from rwalk.walk_core.runner.editor import widget_slots
    from rwalk.walk_core.runner.spec import input_specs

    values = []
    for slot in widget_slots(input_specs(NODES["WalkSampler"]).values()):
        if slot.role == "control":
            values.append("fixed")
        else:
            spec = input_specs(NODES["WalkSampler"])[slot.name]
            values.append(spec.options.get("default", spec.choices[0] if spec.choices else 0))
    return values
