"""Loading workflows: JSON/PNG sources, format detection, and the editor (UI) -> API conversion.

The UI format is what the ComfyUI editor saves (``nodes``, ``links``, ``widgets_values``); the API
format is what it sends to the server (``{id: {"class_type", "inputs"}}``, a link being
``[source id, output index]``). Conversion follows what the editor does when it queues a prompt:
widget values are matched to the widget inputs in declared order (skipping the extra
"control after generate" and "upload" values), frontend-only nodes (notes, reroutes, primitives)
are resolved away, muted nodes are dropped and bypassed nodes pass a matching input through.
"""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .errors import WorkflowError, unknown_classes_error
from .spec import CONTROL_VALUES, InputSpec, input_specs

log = logging.getLogger(__name__)

#: Editor-only nodes with no backend: dropped, or resolved into the links that pass through them.
NOTE_NODES = frozenset({"Note", "MarkdownNote"})
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
FRONTEND_ONLY = NOTE_NODES | {REROUTE, PRIMITIVE}
MODE_MUTED, MODE_BYPASSED = 2, 4
#: Values the editor stores for an upload button widget.
UPLOAD_VALUES = frozenset({"image", "upload", "video", "audio"})
#: Editor defaults for widgets whose declaration has no default.
_TYPE_DEFAULTS = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}

Source = Union[str, Path, Mapping[str, Any]]


# ---------------------------------------------------------------------------------------- sources

def parse_json(text: str, label: str) -> Any:
    """``json.loads`` whose error names the source, line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkflowError(
            None, None, None, f"{label}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None


def _read_source(src: Source) -> Tuple[Any, str, Optional[Tuple[Any, Any]]]:
    """(parsed data, label, (prompt, workflow) when the source is a PNG)."""
    if isinstance(src, Mapping):
        return copy.deepcopy(dict(src)), "workflow", None
    if isinstance(src, str) and src.lstrip()[:1] in ("{", "["):
        return parse_json(src, "workflow text"), "workflow text", None
    path = Path(src)
    if not path.is_file():
        raise WorkflowError(None, None, None, f"workflow file not found: {path}")
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


def normalize_api(prompt: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """A deep copy with string node ids and links as ``[str id, int index]``."""
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


def load_workflow(src: Source, node_classes: Mapping[str, type]) -> Tuple[Dict[str, Any], Optional[dict]]:
    """Load a workflow (path to .json or .png, JSON text, or dict) as ``(api_prompt, ui_workflow)``.

    A UI workflow is converted with :func:`ui_to_api`; ``ui_workflow`` is None for API sources.
    A PNG saved by ComfyUI or this runner runs the prompt embedded in it.
    """
    data, label, png = _read_source(src)
    if png is not None:
        prompt, workflow = png
        if isinstance(prompt, dict) and prompt:
            detect_format(prompt, label)
            return normalize_api(prompt), workflow if isinstance(workflow, dict) else None
        detect_format(workflow, label)
        return ui_to_api(workflow, node_classes), workflow
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        # the body of a POST /prompt request: {"prompt": {...}, "extra_data": {"extra_pnginfo": ...}}
        ui = ((data.get("extra_data") or {}).get("extra_pnginfo") or {}).get("workflow")
        detect_format(data["prompt"], label)
        return normalize_api(data["prompt"]), ui if isinstance(ui, dict) else None
    if detect_format(data, label) == "ui":
        return ui_to_api(data, node_classes), data
    return normalize_api(data), None


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

    Widgets follow the declared order; an INT with "control after generate" (or named seed /
    noise_seed) is followed by its control value and an upload input by its button's value, both
    skipped. Older editors also kept a hidden widget for ``forceInput`` inputs: they are counted
    only when that makes the number of values match.
    """
    raw = node.get("widgets_values")
    widgets = [s for s in specs.values() if s.is_widget]
    if isinstance(raw, dict):
        return {s.name: s.name for s in widgets if s.name in raw}
    values = list(raw or [])
    plain = [s for s in widgets if not s.force_input]
    size = lambda ws: sum(1 + s.has_control_widget + s.has_upload_widget for s in ws)  # noqa: E731
    chosen = widgets if len(values) == size(widgets) != size(plain) else plain
    layout: Dict[str, Any] = {}
    i = 0
    for k, spec in enumerate(chosen):
        if i >= len(values):
            break
        layout[spec.name] = i
        i += 1
        if spec.has_control_widget and i < len(values) and values[i] in CONTROL_VALUES:
            i += 1
        surplus = (len(values) - i) - size(chosen[k + 1:])
        if spec.has_upload_widget and surplus > 0 and values[i] in UPLOAD_VALUES:
            i += 1
    return layout


def _widget_default(spec: InputSpec) -> Any:
    if "default" in spec.options:
        return spec.options["default"]
    if spec.is_combo:
        return spec.choices[0] if spec.choices else None
    return _TYPE_DEFAULTS.get(spec.type)


def _input_name(entry: Mapping[str, Any]) -> str:
    widget = entry.get("widget")
    return str(widget.get("name")) if isinstance(widget, dict) and widget.get("name") else str(entry.get("name"))


def ui_to_api(ui: Mapping[str, Any], node_classes: Mapping[str, type]) -> Dict[str, Dict[str, Any]]:
    """Convert an editor workflow to the API format, as the editor does when it queues it.

    Raises one :class:`WorkflowError` listing every node class that is not in ``node_classes``.
    """
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
                default = _widget_default(spec)
                if default is not None:
                    log.debug("node %s (%s): input %r not stored in the workflow; using default %r",
                              node_id, kind, name, default)
                    inputs[name] = default
        ordered = {name: inputs[name] for name in specs if name in inputs}
        ordered.update({k: v for k, v in inputs.items() if k not in ordered})
        api[node_id] = {"inputs": ordered, "class_type": kind, "_meta": {"title": node.get("title") or kind}}
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
