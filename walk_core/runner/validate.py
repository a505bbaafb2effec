"""Checking an API-format prompt against the node table before anything runs.

Mirrors what ComfyUI checks when a prompt is queued (unknown classes, missing inputs, links,
socket types, value ranges and choices, ``VALIDATE_INPUTS``), plus cycles and unknown extra
inputs. Only the nodes an output node needs are checked and run, as in ComfyUI.
"""
from __future__ import annotations

import inspect
import logging
import math
import re
from typing import Any, Dict, List, Mapping, Optional

from .errors import WorkflowError, unknown_classes_error
from .graph import normalize_api
from .paths import RunnerPaths, use_paths
from .shape import check_api_shape
from .spec import InputSpec, article, hidden_inputs, input_specs, is_output_node, return_types, types_match

log = logging.getLogger(__name__)


def id_key(node_id: str):
    """Sort node ids numerically where they are numbers ("2" before "10")."""
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))


def is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def unwrap(value: Any) -> Any:
    """A literal list is sent as ``{"__value__": [...]}`` so it is not taken for a link."""
    return value["__value__"] if isinstance(value, dict) and "__value__" in value else value


def check_value(spec: InputSpec, value: Any, ranges: bool = True) -> Optional[str]:
    """What is wrong with a literal ``value`` for ``spec`` (None when it is fine).

    ``ranges=False`` checks the type only (numbers stay numbers), for inputs a node's VALIDATE_INPUTS
    checks itself: ComfyUI still converts their type but leaves their range and choices to the node.
    """
    allowed = spec.allowed()
    if spec.is_combo:
        return None if value in spec.choices else f"{value!r} is not among the choices; expected {allowed}"
    kind = spec.type
    if kind in ("INT", "FLOAT"):
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "INT" and number_ok and isinstance(value, float) and not value.is_integer():
            number_ok = False
        if not number_ok:
            return f"{value!r} is not {'an integer' if kind == 'INT' else 'a number'}; expected {allowed}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} is not a finite number; expected {allowed}"
        if not ranges:
            return None
        lo, hi = spec.options.get("min"), spec.options.get("max")
        if lo is not None and value < lo:
            return f"{value!r} is below the minimum {lo}; expected {allowed}"
        if hi is not None and value > hi:
            return f"{value!r} is above the maximum {hi}; expected {allowed}"
        return None
    if kind == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string; expected {allowed}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean; expected {allowed}"
    if kind == "*":
        return None
    return f"this is {article(kind)} {kind} socket: it takes a link from {article(kind)} {kind} output, not the value {value!r}"


def _check_shape(prompt: Any) -> None:
    """The document's structure, before anything reads it (shape.check_api_shape)."""
    check_api_shape(prompt)


def _outputs_text(node_id: str, class_type: str, types) -> str:
    listed = ", ".join(f"{i}: {t if isinstance(t, str) else 'COMBO'}" for i, t in enumerate(types))
    return f"node {node_id} ({class_type}) has {len(types)} output(s){': ' + listed if listed else ''}"


def _check_link(prompt, node_classes, spec: InputSpec, value: Any) -> Optional[str]:
    if not is_link(value):
        return f"bad link {value!r}; a link is [source node id, output index]"
    src_id, slot = str(value[0]), value[1]
    if src_id not in prompt:
        return f"linked to node {src_id}, which is not in the workflow"
    src_class = prompt[src_id]["class_type"]
    types = return_types(node_classes[src_class])
    if not 0 <= slot < len(types):
        return f"linked to output {slot} of node {src_id}, but {_outputs_text(src_id, src_class, types)}"
    received = types[slot]
    if not types_match(received, spec):
        shown = "COMBO" if isinstance(received, (list, tuple)) else received
        return (f"linked to output {slot} of node {src_id} ({src_class}), which gives {shown}, "
                f"but this input takes {spec.type}")
    return None


def _call_validate_inputs(cls: type, literals: Dict[str, Any], hook: str = "VALIDATE_INPUTS") -> Optional[tuple]:
    """Run a node's own ``VALIDATE_INPUTS`` (or the headless-only ``VALIDATE_LITERALS``, a check of the literal
    inputs that ComfyUI does not call); (input names, message) when it refuses."""
    fn = getattr(cls, hook, None)
    if fn is None:
        return None
    params = inspect.signature(fn).parameters
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    args = {k: v for k, v in literals.items() if takes_kwargs or k in params}
    needed = [n for n, p in params.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(n not in args for n in needed):
        return None  # a needed input is linked: known only at run time
    try:
        result = fn(**args)
    except ValueError as e:
        result = str(e)
    except (TypeError, OverflowError) as e:  # values the node's own check cannot handle
        result = f"cannot check these values ({type(e).__name__}: {e})"
    if result is True:
        return None
    names = [k for k in args if k in params] or list(args)
    message = result if isinstance(result, str) else f"rejected the values {args!r}"
    named = _NAMED_INPUT.match(message)
    if named and named.group(1) in names:  # "width=5000 is ..." is about that input alone
        names = [named.group(1)]
    return names, message


#: A VALIDATE_INPUTS message about one input starts with ``name=`` (after an optional ``Who: ``).
_NAMED_INPUT = re.compile(r"(?:[\w .()]+: )?(\w+)=")


def check_node(node_id: str, prompt: Mapping[str, Any], node_classes: Mapping[str, type]) -> List[WorkflowError]:
    """Every problem of one node's inputs."""
    node = prompt[node_id]
    class_type = node["class_type"]
    cls = node_classes[class_type]
    specs = input_specs(cls)
    inputs = node.get("inputs") or {}
    hidden = hidden_inputs(cls)
    custom = getattr(cls, "VALIDATE_INPUTS", None)
    custom_params = set(inspect.signature(custom).parameters) if custom is not None else set()
    errors: List[WorkflowError] = []

    def fail(name, message):
        errors.append(WorkflowError(node_id, class_type, name, message))

    for name in inputs:
        if name not in specs and name not in hidden:
            fail(name, f"{class_type} has no input named {name!r}; its inputs are: {', '.join(specs) or '(none)'}")
    literals: Dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in inputs:
            if spec.category == "required":
                fail(name, f"required input is missing; expected {spec.allowed()}")
            continue
        value = inputs[name]
        if isinstance(value, list):
            problem = _check_link(prompt, node_classes, spec, value)
            if problem:
                fail(name, problem)
            continue
        value = unwrap(value)
        literals[name] = value
        if name not in custom_params or not spec.is_combo:  # a node that checks an input itself gets its type
            problem = check_value(spec, value, ranges=name not in custom_params)
            if problem:
                fail(name, problem)
    if not errors:
        refused = _call_validate_inputs(cls, literals) or _call_validate_inputs(cls, literals, "VALIDATE_LITERALS")
        if refused:
            names, message = refused
            fail(", ".join(names) or None, message)
    return errors


def _needed(prompt: Mapping[str, Any], outputs: List[str]) -> set:
    needed, stack = set(), list(outputs)
    while stack:
        node_id = stack.pop()
        if node_id in needed or node_id not in prompt:
            continue
        needed.add(node_id)
        for value in (prompt[node_id].get("inputs") or {}).values():
            if is_link(value):
                stack.append(str(value[0]))
    return needed


def _topological_order(prompt: Mapping[str, Any], outputs: List[str]) -> List[str]:
    """Dependencies first, each node once; a cycle is a WorkflowError showing the loop."""
    order: List[str] = []
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in outputs:
        if state.get(root) == 2:
            continue
        path: List[tuple] = []  # (node id, iterator over its links)
        state[root] = 1
        path.append((root, iter(_links(prompt, root))))
        while path:
            node_id, links = path[-1]
            step = next(links, None)
            if step is None:
                path.pop()
                state[node_id] = 2
                order.append(node_id)
                continue
            input_name, src = step
            if state.get(src) == 1:
                loop = [n for n, _ in path][[n for n, _ in path].index(src):] + [src]
                shown = " -> ".join(f"{n} ({prompt[n]['class_type']})" for n in reversed(loop))
                raise WorkflowError(node_id, prompt[node_id]["class_type"], input_name,
                                    f"the graph has a cycle: {shown}; a node cannot depend on its own output")
            if state.get(src) is None:
                state[src] = 1
                path.append((src, iter(_links(prompt, src))))
    return order


def _links(prompt: Mapping[str, Any], node_id: str):
    for name, value in (prompt[node_id].get("inputs") or {}).items():
        if is_link(value):
            yield name, str(value[0])


def plan_workflow(prompt: Mapping[str, Any], node_classes: Mapping[str, type],
                  *, paths: Optional[RunnerPaths] = None) -> List[str]:
    """Validate ``prompt`` and return the ids of the nodes to run, dependencies first."""
    _check_shape(prompt)
    prompt = normalize_api(prompt)
    with use_paths(paths):
        unknown: Dict[str, list] = {}
        for node_id in sorted(prompt, key=id_key):
            class_type = prompt[node_id]["class_type"]
            if class_type not in node_classes:
                unknown.setdefault(class_type, []).append(str(node_id))
        if unknown:
            raise unknown_classes_error(unknown, list(node_classes))
        outputs = [n for n in sorted(prompt, key=id_key) if is_output_node(node_classes[prompt[n]["class_type"]])]
        if not outputs:
            raise WorkflowError(None, None, None,
                                "the workflow has no output node (such as SaveImage or PreviewImage), "
                                "so nothing would run; add one")
        needed = _needed(prompt, outputs)
        skipped = sorted(set(prompt) - needed, key=id_key)
        if skipped:
            log.info("nodes not needed by any output node (not run): %s", ", ".join(skipped))
        errors: List[WorkflowError] = []
        for node_id in sorted(needed, key=id_key):
            errors.extend(check_node(node_id, prompt, node_classes))
        if errors:
            raise errors[0].with_others(errors[1:])
        return _topological_order(prompt, outputs)


def check_workflow(api_prompt: Mapping[str, Any], node_classes: Mapping[str, type],
                   *, paths: Optional[RunnerPaths] = None) -> None:
    """Raise one :class:`WorkflowError` for the first problem of the workflow (others summarised)."""
    plan_workflow(api_prompt, node_classes, paths=paths)
