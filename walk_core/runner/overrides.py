"""``--set NODE.INPUT=VALUE`` overrides and ``--seed``: changing input values of a loaded workflow."""
from __future__ import annotations

import inspect
import json
import logging
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .errors import WorkflowError
from .graph import normalize_api, set_ui_widget
from .shape import check_depth
from .spec import SEED_NAMES, InputSpec, article, input_specs
from .validate import id_key, is_link

log = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_override(text: str) -> Tuple[str, str, str]:
    """``"5.steps=4"`` -> ("5", "steps", "4")."""
    left, sep, raw = str(text).partition("=")
    target, dot, name = left.strip().rpartition(".")
    if not sep or not dot or not target or not name:
        raise WorkflowError(None, None, None,
                            f"override {text!r}: expected NODE.INPUT=VALUE, e.g. 5.steps=20 "
                            "(NODE is a node id, or a class name or title used by one node only)")
    return target, name.strip(), raw


def find_node(prompt: Mapping[str, Any], target: str) -> str:
    """A node id from an id, or from a class name / title that exactly one node has."""
    if target in prompt:
        return target
    matches = [n for n, node in prompt.items()
               if target in (node.get("class_type"), (node.get("_meta") or {}).get("title"))]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(f"{n} ({prompt[n].get('class_type')})" for n in sorted(prompt, key=id_key))
    if matches:
        raise WorkflowError(None, target, None, f"{len(matches)} nodes match {target!r} "
                            f"(ids {', '.join(sorted(matches, key=id_key))}); name the node by id")
    raise WorkflowError(target, None, None, f"no node {target!r} in this workflow; its nodes are: {listing}")


def parse_value(spec: InputSpec, raw: str, node_id: str, class_type: str) -> Any:
    """The text of an override as a value of the input's declared type."""
    def fail() -> WorkflowError:
        return WorkflowError(node_id, class_type, spec.name, f"cannot use {raw!r}; expected {spec.allowed()}")

    text = raw.strip()
    if spec.is_combo:
        for choice in spec.choices:
            if raw == choice or text == str(choice):
                return choice
        raise fail()
    if spec.type == "INT":
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise fail() from None
            if number.is_integer():
                return int(number)
            raise fail() from None
    if spec.type == "FLOAT":
        try:
            return float(text)
        except ValueError:
            raise fail() from None
    if spec.type == "BOOLEAN":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise fail()
    if spec.type == "STRING":
        return raw
    if spec.type == "*":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return raw
        except (RecursionError, ValueError):  # nested too deep, or an integer too long to read
            raise fail() from None
        check_depth(value, f"node {node_id} ({class_type}), input {spec.name!r}")
        return value
    raise WorkflowError(node_id, class_type, spec.name,
                        f"this is {article(spec.type)} {spec.type} socket: it takes a link, so it cannot be set to {raw!r}")


def _override_value(cls: type, spec: InputSpec, raw: str, node_id: str, class_type: str) -> Any:
    """parse_value, except that a choice input the class checks itself (named in its VALIDATE_INPUTS, as
    LoadImage's ``image``: a file in the input folder or a subfolder) takes any text, checked when the
    workflow is planned -- ComfyUI's rule for such inputs."""
    try:
        return parse_value(spec, raw, node_id, class_type)
    except WorkflowError:
        custom = getattr(cls, "VALIDATE_INPUTS", None)
        if spec.is_combo and custom is not None and spec.name in inspect.signature(custom).parameters:
            return raw.strip()
        raise


def apply_overrides(api_prompt: Mapping[str, Any], overrides: Iterable[str], node_classes: Mapping[str, type],
                    *, ui_workflow: Optional[dict] = None) -> Dict[str, Any]:
    """A copy of ``api_prompt`` with each ``"NODE.INPUT=VALUE"`` applied (a value replaces a link).

    When ``ui_workflow`` is given the values are written into it too (in place), so a saved PNG's
    embedded editor workflow shows the values that ran.
    """
    prompt = normalize_api(api_prompt)
    for text in overrides:
        target, name, raw = parse_override(text)
        node_id = find_node(prompt, target)
        class_type = prompt[node_id].get("class_type")
        cls = node_classes.get(class_type)
        if cls is None:
            raise WorkflowError(node_id, class_type, name, f"cannot set {raw!r}: the node class is unknown here")
        specs = input_specs(cls)
        if name not in specs:
            raise WorkflowError(node_id, class_type, name,
                                f"cannot set {raw!r}: {class_type} has no input {name!r}; its inputs are: "
                                f"{', '.join(specs) or '(none)'}")
        value = _override_value(cls, specs[name], raw, node_id, class_type)
        inputs = prompt[node_id].setdefault("inputs", {})
        if is_link(inputs.get(name)):
            log.info("node %s (%s): input %r was linked to node %s; using %r instead",
                     node_id, class_type, name, inputs[name][0], value)
        inputs[name] = value
        if ui_workflow is not None and not set_ui_widget(ui_workflow, node_id, name, value, node_classes):
            log.warning("node %s (%s): %s=%r could not be written into the editor workflow embedded in "
                        "saved PNGs; their 'prompt' chunk has it", node_id, class_type, name, value)
    return prompt


def seed_overrides(api_prompt: Mapping[str, Any], seed: int, node_classes: Mapping[str, type]) -> List[str]:
    """Overrides setting every INT input named seed / noise_seed (that is not linked) to ``seed``.

    A seed outside an input's declared range is one WorkflowError about the seed itself (not one per node)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise WorkflowError(None, None, None, f"seed {seed!r} is not an integer; expected a whole number")
    found = []
    for node_id in sorted(api_prompt, key=lambda n: id_key(str(n))):
        node = api_prompt[node_id]
        cls = node_classes.get(node.get("class_type"))
        if cls is None:
            continue
        inputs = node.get("inputs") or {}
        for name, spec in input_specs(cls).items():
            if name in SEED_NAMES and spec.type == "INT" and not is_link(inputs.get(name)):
                _check_seed_range(seed, spec, node_id, node.get("class_type"))
                found.append(f"{node_id}.{name}={int(seed)}")
    if not found:
        log.warning("seed %s: no node in this workflow has a seed input to set", seed)
    return found


def _check_seed_range(seed: int, spec: InputSpec, node_id: str, class_type: Any) -> None:
    low, high = spec.options.get("min"), spec.options.get("max")
    side = ("below the minimum", low) if low is not None and seed < low else \
        ("above the maximum", high) if high is not None and seed > high else None
    if side:
        allowed = f"{'' if low is None else low}..{'' if high is None else high}"
        raise WorkflowError(None, None, None, f"seed {seed} is {side[0]} {side[1]} of node {node_id} ({class_type}), "
                                              f"input {spec.name!r}; expected a seed in {allowed}")


def set_seed(api_prompt: Mapping[str, Any], seed: int, node_classes: Mapping[str, type],
             *, ui_workflow: Optional[dict] = None) -> Dict[str, Any]:
    """A copy of ``api_prompt`` with every unlinked seed / noise_seed input set to ``seed``."""
    return apply_overrides(api_prompt, seed_overrides(api_prompt, seed, node_classes), node_classes,
                           ui_workflow=ui_workflow)
