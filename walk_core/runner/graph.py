"""Loading workflows: JSON/PNG sources, format detection, and the editor (UI) -> API conversion.

The UI format is what the ComfyUI editor saves (``nodes``, ``links``, ``widgets_values``); the API
format is what it sends to the server (``{id: {"class_type", "inputs"}}``, a link being
``[source id, output index]``). Conversion follows what the editor does when it queues a prompt:
widget values are matched by position to the widgets in declared order, each followed by its
"control after generate" or upload companion (the editor's rules: ``editor.py``), frontend-only
nodes (notes, reroutes, primitives) are resolved away, muted nodes are dropped and bypassed nodes
pass a matching input through.
"""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ..limits import current_limits, gib
from .errors import WorkflowError, unknown_classes_error
from .editor import widget_slots
from .shape import check_api_shape, check_depth, check_ui_shape, parse_json
from .spec import CONTROL_VALUES, InputSpec, input_specs, widget_default

log = logging.getLogger(__name__)

#: Editor-only nodes with no backend: dropped, or resolved into the links that pass through them.
NOTE_NODES = frozenset({"Note", "MarkdownNote"})
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
FRONTEND_ONLY = NOTE_NODES | {REROUTE, PRIMITIVE}
MODE_MUTED, MODE_BYPASSED = 2, 4
#: Editor defaults for widgets whose declaration has no default.

Source = Union[str, Path, Mapping[str, Any]]


# ---------------------------------------------------------------------------------------- sources

def _check_size(size: int, label: str) -> None:
    limit = current_limits().max_workflow_bytes
    if size > limit:
        raise WorkflowError(None, None, None, f"{label}: {gib(size)} is more than a workflow may be ({gib(limit)}); "
                            "raise the limit with the environment variable WALK_MAX_WORKFLOW_MB")


def _read_source(src: Source) -> Tuple[Any, str, Optional[Tuple[Any, Any]]]:
    """(parsed data, label, (prompt, workflow) when the source is a PNG)."""
    if isinstance(src, Mapping):
        check_depth(src, "workflow")  # before deepcopy, which recurses once per level
        return copy.deepcopy(dict(src)), "workflow", None
    if isinstance(src, str) and src.lstrip()[:1] in ("{", "["):
        _check_size(len(src), "workflow text")
        return parse_json(src, "workflow text"), "workflow text", None
    if not isinstance(src, (str, Path)):
        raise WorkflowError(None, None, None, f"workflow source {type(src).__name__} is not allowed; expected a "
                            "path to a .json or .png file, JSON text, or a dict")
    try:
        path = Path(src)
        found = path.is_file()
    except (OSError, ValueError) as e:  # a name with NUL bytes, or too long for the file system
        raise WorkflowError(None, None, None, f"workflow file {str(src)[:200]!r} cannot be read ({e})") from None
    if not found:
        raise WorkflowError(None, None, None, f"workflow file not found: {path}")
    _check_size(path.stat().st_size, str(path))
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89PNG\r\n\x1a\n":
        from .png import read_png_workflow

        return None, str(path), read_png_workflow(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise WorkflowError(None, None, None, f"{path}: not a UTF-8 JSON file ({e.reason} at byte {e.start})") from None
    return parse_json(text, str(path)), str(path), None


def detect_format(data: Any, label: str = "workflow") -> str:
    """``"api"`` or ``"ui"``; anything else is a :class:`WorkflowError` saying what was expected."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return "ui"
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        missing = [str(k) for k, v in data.items() if "class_type" not in v]
        if not missing:
            return "api"
        if len(missing) < len(data):
            bad = missing[0]
            raise WorkflowError(bad, None, None, f"{label}: API-format node {bad!r} has no 'class_type'")
    raise WorkflowError(
        None, None, None,
        f"{label}: not a ComfyUI workflow; expected the editor's format (with 'nodes' and 'links') "
        "or the API format ({\"<id>\": {\"class_type\": ..., \"inputs\": {...}}})",
    )


def normalize_api(prompt: Mapping[str, Any], label: str = "workflow") -> Dict[str, Dict[str, Any]]:
    """A deep copy with string node ids and links as ``[str id, int index]``.

    The prompt's shape is checked first (shape.check_api_shape): a malformed one is a WorkflowError.
    """
    check_api_shape(prompt, label)
    out: Dict[str, Dict[str, Any]] = {}
    for node_id, node in prompt.items():
        node = copy.deepcopy(node)
        inputs = node.get("inputs")
        if inputs is None:
            node["inputs"] = inputs = {}
        if isinstance(inputs, dict):
            for name, value in inputs.items():
                if _is_link(value):
                    inputs[name] = [str(value[0]), value[1]]
        out[str(node_id)] = node
    return out


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def load_workflow(src: Source, node_classes: Mapping[str, type],
                  display_names: Optional[Mapping[str, str]] = None) -> Tuple[Dict[str, Any], Optional[dict]]:
    """Load a workflow (path to .json or .png, JSON text, or dict) as ``(api_prompt, ui_workflow)``.

    A UI workflow is converted with :func:`ui_to_api` (``display_names`` as there); ``ui_workflow`` is None for
    API sources.
    A PNG saved by ComfyUI or this runner runs the prompt embedded in it.
    """
    data, label, png = _read_source(src)
    if png is not None:
        prompt, workflow = png
        ui = _embedded_ui(workflow, f"{label}: the 'workflow' chunk")
        if isinstance(prompt, dict) and prompt:
            if detect_format(prompt, label) != "api":
                raise WorkflowError(None, None, None, f"{label}: the 'prompt' chunk holds an editor-format workflow; "
                                    "ComfyUI writes the API format there")
            return normalize_api(prompt, label), ui
        if ui is None:
            raise WorkflowError(None, None, None, f"{label}: this PNG carries no usable workflow")
        return ui_to_api(ui, node_classes, label, display_names), ui
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        return _request_body(data, label)
    if detect_format(data, label) == "ui":
        return ui_to_api(data, node_classes, label, display_names), data
    return normalize_api(data, label), None


def _embedded_ui(workflow: Any, label: str) -> Optional[dict]:
    """An editor workflow that travels beside a prompt (PNG chunk, request body): checked, or None."""
    if workflow is None:
        return None
    check_ui_shape(workflow, label)
    return workflow


def _request_body(data: Mapping[str, Any], label: str) -> Tuple[Dict[str, Any], Optional[dict]]:
    """The body of a POST /prompt request: ``{"prompt": {...}, "extra_data": {"extra_pnginfo": {"workflow"}}}``."""
    prompt = data["prompt"]
    if detect_format(prompt, f"{label}: 'prompt'") != "api":
        raise WorkflowError(None, None, None, f"{label}: 'prompt' holds an editor-format workflow; the prompt of a "
                            "request body must be in the API format. Load the editor workflow itself (not wrapped "
                            "in {\"prompt\": ...}), or export it with \"Export (API)\"")
    extra = data.get("extra_data")
    info = extra.get("extra_pnginfo") if isinstance(extra, Mapping) else None
    if (extra is not None and not isinstance(extra, Mapping)) or (info is not None and not isinstance(info, Mapping)):
        raise WorkflowError(None, None, None, f"{label}: 'extra_data' must be {{\"extra_pnginfo\": {{\"workflow\": "
                            "...}}}; got something else")
    ui = info.get("workflow") if isinstance(info, Mapping) else None
    return normalize_api(prompt, label), _embedded_ui(ui, f"{label}: 'extra_data.extra_pnginfo.workflow'")


def api_to_json(api_prompt: Mapping[str, Any]) -> str:
    """API-format JSON text, as ComfyUI's "Export (API)" writes it."""
    return json.dumps(api_prompt, indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------ UI -> API format

class _UiGraph:
    """Index of an editor workflow: nodes by id and links by id (list or object form)."""

    def __init__(self, ui: Mapping[str, Any]):
        self.nodes: Dict[str, dict] = {str(n.get("id")): n for n in ui.get("nodes") or []}
        self.links: Dict[Any, Tuple[str, int, Any]] = {}
        for link in ui.get("links") or []:
            if isinstance(link, dict):
                lid, src, slot, ltype = link.get("id"), link.get("origin_id"), link.get("origin_slot"), link.get("type")
            elif isinstance(link, (list, tuple)) and len(link) >= 5:
                lid, src, slot, ltype = link[0], link[1], link[2], link[5] if len(link) > 5 else None
            else:
                raise WorkflowError(None, None, None, f"malformed link {link!r}; expected [id, from_node, from_slot, to_node, to_slot, type]")
            self.links[lid] = (str(src), int(slot), ltype)

    def resolve(self, link_id: Any, wanted_type: Any) -> Optional[Tuple[str, Any]]:
        """Follow a link through reroutes, primitives and bypassed nodes.

        Returns ``("link", [node id, output index])``, ``("value", v)`` for a primitive's value,
        or None when nothing feeds the input (muted or missing source).
        """
        seen = set()
        while link_id is not None:
            if link_id in seen:
                raise WorkflowError(None, None, None, f"link {link_id} loops through reroutes or bypassed nodes")
            seen.add(link_id)
            if link_id not in self.links:
                log.warning("workflow references link %s, which is not in its 'links' list; ignoring it", link_id)
                return None
            src_id, slot, link_type = self.links[link_id]
            src = self.nodes.get(src_id)
            if src is None:
                return None
            kind, mode = src.get("type"), src.get("mode", 0)
            if kind == REROUTE:
                link_id = _input_link(src, 0)
            elif kind == PRIMITIVE:
                values = src.get("widgets_values")
                if isinstance(values, dict):
                    values = list(values.values())
                return ("value", _wrap_list(values[0])) if values else None
            elif kind in NOTE_NODES or mode == MODE_MUTED:
                return None
            elif mode == MODE_BYPASSED:
                want = link_type if wanted_type in (None, "*") else wanted_type
                link_id = self._bypass_input(src, slot, want)
            else:
                return ("link", [src_id, slot])
        return None

    @staticmethod
    def _bypass_input(node: dict, slot: int, wanted_type: Any) -> Any:
        """The link feeding a bypassed node's output ``slot``: its first input of the same type."""
        inputs = node.get("inputs") or []
        order = ([slot] if slot < len(inputs) else []) + list(range(len(inputs)))
        for i in order:
            if inputs[i].get("type") == wanted_type:
                return inputs[i].get("link")
        return None


def _input_link(node: dict, index: int) -> Any:
    inputs = node.get("inputs") or []
    return inputs[index].get("link") if index < len(inputs) else None


def _wrap_list(value: Any) -> Any:
    """A list literal must not look like a link in the API format."""
    return {"__value__": value} if isinstance(value, list) else value


def _subgraph_ids(ui: Mapping[str, Any]) -> Dict[str, str]:
    subgraphs = ((ui.get("definitions") or {}).get("subgraphs")) or []
    return {str(sg.get("id")): str(sg.get("name") or sg.get("id")) for sg in subgraphs if isinstance(sg, dict)}


def _check_node_kinds(graph: _UiGraph, ui: Mapping[str, Any], node_classes: Mapping[str, type]) -> None:
    subgraphs = _subgraph_ids(ui)
    group_nodes = set(((ui.get("extra") or {}).get("groupNodes") or {}))
    unknown: Dict[str, list] = {}
    for node_id, node in graph.nodes.items():
        kind = str(node.get("type"))
        if kind in FRONTEND_ONLY or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASSED):
            continue
        if kind in subgraphs:
            raise WorkflowError(node_id, f"subgraph {subgraphs[kind]!r}", None,
                                "the headless runner does not run subgraphs yet; unpack it in the editor "
                                "(right-click > Unpack Subgraph), save and try again")
        if kind.startswith("workflow>") or kind.startswith("workflow/") or kind in group_nodes:
            raise WorkflowError(node_id, kind, None, "group nodes are not supported headless; convert the "
                                "group node back to nodes in the editor, save and try again")
        if kind not in node_classes:
            unknown.setdefault(kind, []).append(node_id)
    if unknown:
        raise unknown_classes_error(unknown, list(node_classes))


def widget_layout(node: Mapping[str, Any], specs: Mapping[str, InputSpec]) -> Dict[str, Any]:
    """Where each widget input's value sits in ``widgets_values``: name -> list index (or dict key).

    Positional, as the editor reads it (:func:`.editor.widget_slots`): every widget in declared order, each
    followed by its companions (the "control after generate" value of a seed, an upload button), which take a
    place of their own. Older editors also kept a hidden widget for ``forceInput`` inputs: those places are
    counted only when that makes the number of values match. A place meant for a control value that holds
    something else is a :class:`WorkflowError`: the editor would read every later value one place off.
    """
    raw = node.get("widgets_values")
    if isinstance(raw, dict):
        return {s.name: s.name for s in specs.values() if s.is_widget and s.name in raw}
    values = list(raw or [])
    slots = widget_slots(specs.values())
    legacy = widget_slots(specs.values(), force_input_widgets=True)
    if len(values) == len(legacy) != len(slots):
        slots = legacy
    if len(values) != len(slots):
        _warn_widget_count(node, slots, values)
    layout: Dict[str, Any] = {}
    for i, slot in enumerate(slots[:len(values)]):
        if slot.role == "value":
            layout[slot.name] = i
        elif slot.role == "control" and not (isinstance(values[i], str)
                                             and values[i] in _control_values(specs[slot.name])):
            allowed = ", ".join(repr(v) for v in sorted(_control_values(specs[slot.name])))
            raise WorkflowError(
                node.get("id"), node.get("type"), slot.name,
                f"widgets_values[{i}] = {values[i]!r} sits where the editor keeps this input's \"control after "
                f"generate\" value; expected one of {allowed}. The editor would read every later widget value "
                "one place off: insert the control value after the seed (or re-save the workflow in the editor)")
    return layout


def _warn_widget_count(node: Mapping[str, Any], slots, values) -> None:
    """The editor fills missing widget values with defaults and drops extra ones without a word: say so."""
    where = f"node {node.get('id')} ({node.get('type')})"
    if len(values) < len(slots):
        missing = [s.name for s in slots[len(values):] if s.role == "value"]
        log.warning("%s: widgets_values has %d value(s) for %d widget(s); these inputs take their defaults: %s",
                    where, len(values), len(slots), ", ".join(missing) or "(none)")
    else:
        log.warning("%s: widgets_values has %d value(s) for %d widget(s); the %d extra value(s) %s are ignored",
                    where, len(values), len(slots), len(values) - len(slots),
                    ", ".join(repr(v) for v in values[len(slots):]))


def _control_values(spec: InputSpec) -> frozenset:
    """Values of a control widget: a combo's may also wrap around."""
    return CONTROL_VALUES | {"increment-wrap"} if spec.is_combo else CONTROL_VALUES


def _input_name(entry: Mapping[str, Any]) -> str:
    widget = entry.get("widget")
    return str(widget.get("name")) if isinstance(widget, dict) and widget.get("name") else str(entry.get("name"))


def node_title(node: Mapping[str, Any], display_names: Optional[Mapping[str, str]] = None) -> str:
    """What the editor writes as a node's ``_meta.title``: the title the user gave it, else the title the editor
    gave it, which is the class's display name (NODE_DISPLAY_NAME_MAPPINGS; the class name when it has none)."""
    title = node.get("title")
    if isinstance(title, str) and title:
        return title
    kind = str(node.get("type"))
    return str((display_names or {}).get(kind) or kind)


def ui_to_api(ui: Mapping[str, Any], node_classes: Mapping[str, type], label: str = "workflow",
              display_names: Optional[Mapping[str, str]] = None) -> Dict[str, Dict[str, Any]]:
    """Convert an editor workflow to the API format, as the editor does when it queues it.

    ``display_names`` (class -> display name: the pack's NODE_DISPLAY_NAME_MAPPINGS, a server's display_name)
    give each untitled node's ``_meta.title`` as the editor writes it; without them it is the class name.
    Raises a :class:`WorkflowError` for a malformed document (shape.check_ui_shape), and one listing every
    node class that is not in ``node_classes``.
    """
    check_ui_shape(ui, label)
    graph = _UiGraph(ui)
    _check_node_kinds(graph, ui, node_classes)
    api: Dict[str, Dict[str, Any]] = {}
    for node_id, node in graph.nodes.items():
        kind = str(node.get("type"))
        if kind in FRONTEND_ONLY or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASSED):
            continue
        specs = input_specs(node_classes[kind])
        raw = node.get("widgets_values")
        inputs: Dict[str, Any] = {}
        for name, where in widget_layout(node, specs).items():
            inputs[name] = _wrap_list(raw[where])
        linked = set()
        for entry in node.get("inputs") or []:
            name = _input_name(entry)
            if entry.get("link") is None:
                continue
            linked.add(name)
            wanted = specs[name].type if name in specs else entry.get("type")
            resolved = graph.resolve(entry.get("link"), entry.get("type") or wanted)
            if resolved is not None:
                inputs[name] = resolved[1]
        for name, spec in specs.items():  # widgets added after the workflow was saved
            if spec.is_widget and not spec.force_input and name not in inputs and name not in linked:
                default = widget_default(spec)
                if default is not None:
                    log.debug("node %s (%s): input %r not stored in the workflow; using default %r",
                              node_id, kind, name, default)
                    inputs[name] = default
        ordered = {name: inputs[name] for name in specs if name in inputs}
        ordered.update({k: v for k, v in inputs.items() if k not in ordered})
        api[node_id] = {"inputs": ordered, "class_type": kind, "_meta": {"title": node_title(node, display_names)}}
    return api


def set_ui_widget(ui: Mapping[str, Any], node_id: str, input_name: str, value: Any,
                  node_classes: Mapping[str, type]) -> bool:
    """Write ``value`` into the editor workflow (in place) where ``input_name`` of ``node_id`` lives.

    Follows a link to a PrimitiveNode when the widget is fed by one. False when the value has no
    place in the UI workflow (e.g. the input is fed by another node's output).
    """
    graph = _UiGraph(ui)
    node = graph.nodes.get(str(node_id))
    if node is None or node.get("type") not in node_classes:
        return False
    for entry in node.get("inputs") or []:
        if _input_name(entry) == input_name and entry.get("link") is not None:
            link_id = entry.get("link")
            while link_id in graph.links:
                src = graph.nodes.get(graph.links[link_id][0])
                if src is None:
                    return False
                if src.get("type") == REROUTE:
                    link_id = _input_link(src, 0)
                    continue
                values = src.get("widgets_values")
                if src.get("type") == PRIMITIVE and isinstance(values, list) and values:
                    values[0] = value
                    return True
                return False
            return False
    specs = input_specs(node_classes[node["type"]])
    where = widget_layout(node, specs).get(input_name)
    if where is None:
        return False
    node["widgets_values"][where] = value
    return True
