"""The shape of a workflow document, checked right after parsing and before anything copies or reads it.

Every path from bytes to a graph (JSON text, a file, a PNG's text chunks, a dict given by a caller, a
``--set`` value) goes through these checks, so a document of the wrong shape at any depth is one
:class:`WorkflowError` naming where it is wrong -- never a traceback from the code that reads it later.

Limits (README, "Limits"): a document may nest lists and objects at most :data:`MAX_DEPTH` deep (the
editor's own files nest about 8 deep; Python's ``copy.deepcopy`` and ``json`` recurse once per level);
a UI link's output slot and a node's mode are small non-negative integers.
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any, Dict, Mapping

from .errors import WorkflowError

#: Deepest nesting of lists and objects a workflow document may have.
MAX_DEPTH = 64
#: Largest output slot a link may name (ComfyUI nodes have a handful of outputs).
MAX_SLOT = 1023

_ID_TYPES = (int, str)


def _fail(label: str, where: str, message: str, node_id: Any = None, class_type: Any = None) -> WorkflowError:
    text = f"{label}: {where} {message}" if where else f"{label}: {message}"
    return WorkflowError(None if node_id is None else str(node_id),
                         class_type if isinstance(class_type, str) else None, None, text)


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int_digit_limit() -> int:
    """Python's limit on the digits of an integer read from text (4300 by default; 0 means none)."""
    getter = getattr(sys, "get_int_max_str_digits", None)
    return getter() if getter else 4300


def _longest_integer(text: str) -> int:
    """Digits of the longest run of digits in ``text`` (the number the JSON reader refused)."""
    longest = 0
    for match in re.finditer(r"\d+", text if isinstance(text, str) else text.decode("utf-8", "replace")):
        longest = max(longest, len(match.group()))
    return longest


def parse_json(text: str, label: str) -> Any:
    """``json.loads`` whose errors name the source and what is wrong, then the depth check.

    Refuses invalid JSON (line and column), documents nested deeper than Python's parser can go, and
    integers too long to convert (Python's 4300-digit limit) -- each as a WorkflowError.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkflowError(
            None, None, None, f"{label}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise WorkflowError(None, None, None, f"{label}: the JSON nests lists/objects too deeply to read; "
                            f"a workflow may nest at most {MAX_DEPTH} levels") from None
    except ValueError as e:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        if "integer string conversion" in str(e):
            limit = _int_digit_limit()
            size = _longest_integer(text)
            raise WorkflowError(None, None, None, f"{label}: the JSON has a number with {size} digits; numbers may "
                                f"have at most {limit}") from None
        raise WorkflowError(None, None, None, f"{label}: the JSON has a value Python cannot read ({e})") from None
    check_depth(data, label)
    return data


def check_depth(data: Any, label: str, limit: int = MAX_DEPTH) -> None:
    """Refuse lists/objects nested more than ``limit`` deep (iteratively: no recursion on hostile input)."""
    stack = [(data, 1)]
    seen = set()
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (Mapping, list, tuple)):
            if depth > limit:
                raise WorkflowError(None, None, None, f"{label}: lists/objects are nested more than {limit} "
                                    f"levels deep; a workflow may nest at most {limit} levels")
            if id(value) in seen:  # shared (or self-containing) parts of a caller's structure: once
                continue
            seen.add(id(value))
            items = value.values() if isinstance(value, Mapping) else value
            stack.extend((item, depth + 1) for item in items)


def _is_id(value: Any) -> bool:
    return isinstance(value, _ID_TYPES) and not isinstance(value, bool)


def _small_int(value: Any, limit: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


# ------------------------------------------------------------------------------------------- API format

def check_api_shape(prompt: Any, label: str = "workflow") -> None:
    """An API prompt must be ``{id: {"class_type": str, "inputs": {name: value}, "_meta": {...}}}``."""
    check_depth(prompt, label)
    if not isinstance(prompt, Mapping) or not prompt:
        raise _fail(label, "", "the workflow has no nodes; expected {\"<id>\": {\"class_type\": ..., "
                    "\"inputs\": {...}}}")
    ids: Dict[str, Any] = {}
    for node_id, node in prompt.items():
        if not _is_id(node_id):
            raise _fail(label, "", f"node id {_shown(node_id)} is not a string or integer")
        if str(node_id) in ids:
            raise _fail(label, "", f"node id {str(node_id)!r} appears twice", node_id)
        ids[str(node_id)] = node
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            raise _fail(label, "", f"is {_shown(node)}; an API-format node must be "
                        "{\"class_type\": str, \"inputs\": {...}}", node_id)
        class_type = node["class_type"]
        inputs = node.get("inputs")
        if inputs is not None and not isinstance(inputs, Mapping):
            raise _fail(label, "'inputs'", f"is {_shown(inputs)}; expected an object of input names and values",
                        node_id, class_type)
        for name in inputs or {}:
            if not isinstance(name, str):
                raise _fail(label, "an input name", f"{_shown(name)} is not a string", node_id, class_type)
        meta = node.get("_meta")
        if meta is not None and (not isinstance(meta, Mapping) or not isinstance(meta.get("title", ""), (str, type(None)))):
            raise _fail(label, "'_meta'", f"is {_shown(meta)}; expected {{\"title\": str}}", node_id, class_type)


# -------------------------------------------------------------------------------------------- UI format

def _check_ui_input(entry: Any, node_id: Any, kind: str, label: str) -> None:
    if not isinstance(entry, Mapping):
        raise _fail(label, "an entry of 'inputs'", f"is {_shown(entry)}; expected {{\"name\", \"type\", \"link\"}}",
                    node_id, kind)
    if not isinstance(entry.get("name"), str):
        raise _fail(label, "an input's 'name'", f"is {_shown(entry.get('name'))}; expected a string", node_id, kind)
    link = entry.get("link")
    if link is not None and not _is_id(link):
        raise _fail(label, f"input {entry['name']!r}: 'link'", f"is {_shown(link)}; expected a link id or null",
                    node_id, kind)
    widget = entry.get("widget")
    if widget is not None and (not isinstance(widget, Mapping) or not isinstance(widget.get("name", ""), (str, type(None)))):
        raise _fail(label, f"input {entry['name']!r}: 'widget'", f"is {_shown(widget)}; expected {{\"name\": str}}",
                    node_id, kind)
    if not isinstance(entry.get("type"), (str, list, type(None))):
        raise _fail(label, f"input {entry['name']!r}: 'type'", f"is {_shown(entry.get('type'))}; expected a "
                    "type name", node_id, kind)


def _check_ui_node(node: Any, index: int, label: str) -> None:
    if not isinstance(node, Mapping):
        raise _fail(label, f"'nodes'[{index}]", f"is {_shown(node)}; expected a node object "
                    "{\"id\", \"type\", \"inputs\", \"widgets_values\", ...}")
    node_id = node.get("id")
    if not _is_id(node_id):
        raise _fail(label, f"'nodes'[{index}]: 'id'", f"is {_shown(node_id)}; expected an integer or string")
    kind = node.get("type")
    if not isinstance(kind, str):
        raise _fail(label, "'type'", f"is {_shown(kind)}; expected a node class name", node_id)
    if not _small_int(node.get("mode", 0), 255):
        raise _fail(label, "'mode'", f"is {_shown(node.get('mode'))}; expected 0 (always), 2 (muted) or "
                    "4 (bypassed)", node_id, kind)
    if not isinstance(node.get("title"), (str, type(None))):
        raise _fail(label, "'title'", f"is {_shown(node.get('title'))}; expected a string", node_id, kind)
    values = node.get("widgets_values")
    if not isinstance(values, (list, Mapping, type(None))):
        raise _fail(label, "'widgets_values'", f"is {_shown(values)}; expected a list of widget values",
                    node_id, kind)
    inputs = node.get("inputs")
    if not isinstance(inputs, (list, type(None))):
        raise _fail(label, "'inputs'", f"is {_shown(inputs)}; expected a list of input entries", node_id, kind)
    for entry in inputs or []:
        _check_ui_input(entry, node_id, kind, label)


def _check_ui_link(link: Any, label: str) -> None:
    if isinstance(link, Mapping):
        lid, src, slot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
    elif isinstance(link, list) and len(link) >= 5:
        lid, src, slot = link[0], link[1], link[2]
    else:
        raise _fail(label, "", f"malformed link {_shown(link)}; expected [id, from_node, from_slot, to_node, "
                    "to_slot, type]")
    if not _is_id(lid) or not _is_id(src):
        raise _fail(label, "", f"link {_shown(link)}: its id and source node must be integers or strings")
    if not _small_int(slot, MAX_SLOT):
        raise _fail(label, "", f"link {_shown(link)}: output slot {_shown(slot)} is not allowed; expected "
                    f"an integer in 0..{MAX_SLOT}")


def check_ui_shape(ui: Any, label: str = "workflow") -> None:
    """An editor workflow: ``nodes`` (objects with id, type, inputs, widgets_values), ``links`` (lists or
    objects), and optional ``extra`` / ``definitions`` objects -- each field of the type the editor writes."""
    check_depth(ui, label)
    if not isinstance(ui, Mapping) or not isinstance(ui.get("nodes"), list):
        raise _fail(label, "", "not an editor workflow; expected an object with a 'nodes' list")
    ids = set()
    for index, node in enumerate(ui["nodes"]):
        _check_ui_node(node, index, label)
        if str(node["id"]) in ids:
            raise _fail(label, "", f"node id {str(node['id'])!r} appears twice", node["id"], node["type"])
        ids.add(str(node["id"]))
    links = ui.get("links")
    if not isinstance(links, (list, type(None))):
        raise _fail(label, "'links'", f"is {_shown(links)}; expected a list of links")
    for link in links or []:
        _check_ui_link(link, label)
    for key, inner in (("extra", "groupNodes"), ("definitions", "subgraphs")):
        part = ui.get(key)
        if not isinstance(part, (Mapping, type(None))):
            raise _fail(label, f"{key!r}", f"is {_shown(part)}; expected an object")
        nested = (part or {}).get(inner)
        wanted = Mapping if inner == "groupNodes" else list
        if not isinstance(nested, (wanted, type(None))):
            raise _fail(label, f"'{key}.{inner}'", f"is {_shown(nested)}; expected "
                        f"{'an object' if wanted is Mapping else 'a list'}")
