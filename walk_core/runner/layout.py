"""Editor (UI format) workflows built the way the ComfyUI editor saves them, laid out from the sizes it draws.

Each node's ``widgets_values`` follow the editor's places (:mod:`.editor`): its widgets in
declared order, "fixed" after every seed, "" for a combo's control filter, "image" for an upload button. Each
node gets at least the size the editor computes for it, and the graph is laid out from those sizes: nodes
given the same x form a column and nodes given the same y a row (:func:`lay_out`); columns sit side by side and
nodes are stacked in them, 40 px apart, title bars included, so nothing overlaps.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional

from .editor import TITLE_HEIGHT, node_size, widget_slots
from .spec import InputSpec, input_specs, widget_default

NOTES = ("Note", "MarkdownNote")
IMAGE_OUTPUTS = ("SaveImage", "PreviewImage", "SaveAnimatedWEBP")  # the editor shows the result in them
NODE_WIDTH = 340  # every column is at least this wide
PREVIEW_HEIGHT = 300  # room for the picture an output node shows once it has run
GAP, LEFT, TOP = 40, 40, 40
NOTE_CHAR, NOTE_LINE = 7.0, 18.0  # a note's text: px per character and per line, roughly
_COMPANION_VALUES = {"control": "fixed", "filter": "", "upload": "image"}


def note_node(node_id: int, kind: str, text: str) -> dict:
    """A Note: one multiline text widget, tall enough to show ``text`` whole."""
    width, height = node_size([InputSpec("", "STRING", {"multiline": True})], [], kind)
    width = max(width, NODE_WIDTH)
    lines = math.ceil(len(text) * NOTE_CHAR / (width - 20))
    height = max(height, math.ceil(40 + NOTE_LINE * lines))
    return {"id": node_id, "type": kind, "pos": [0, 0], "size": [width, height], "flags": {}, "order": 0,
            "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": [text]}


def ui_node(table: Mapping[str, type], display: Mapping[str, str], node_id: int, kind: str,
            widgets: Optional[dict] = None, links_in: Optional[dict] = None, title: Optional[str] = None) -> dict:
    """One editor node: widget values from the declared defaults and ``widgets``; ``links_in`` {input: link id}."""
    widgets, links_in = dict(widgets or {}), dict(links_in or {})
    if kind in NOTES:
        return note_node(node_id, kind, widgets.pop("text"))
    if kind not in table:
        raise ValueError(f"node {node_id}: unknown node class {kind!r}; known: {', '.join(sorted(table))}")
    cls = table[kind]
    specs = input_specs(cls)
    values = []
    for slot in widget_slots(specs.values()):
        if slot.role == "value":
            values.append(widgets.pop(slot.name, widget_default(specs[slot.name])))
        else:
            values.append(_COMPANION_VALUES[slot.role])
    inputs = []
    for spec in specs.values():
        if not spec.is_widget or spec.force_input:
            entry = {"name": spec.name, "type": spec.type, "link": links_in.pop(spec.name, None)}
            if spec.category == "optional":
                entry["shape"] = 7
            inputs.append(entry)
    if widgets or links_in:
        raise ValueError(f"node {node_id} ({kind}): unknown inputs {sorted(widgets) + sorted(links_in)}; "
                         f"declared: {', '.join(specs)}")
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    outputs = [{"name": n, "type": t, "links": [], "slot_index": i}
               for i, (n, t) in enumerate(zip(names, cls.RETURN_TYPES))]
    width, height = node_size(specs.values(), list(names), title or display.get(kind, kind))
    if kind in IMAGE_OUTPUTS:
        height = max(height, PREVIEW_HEIGHT)
    node = {"id": node_id, "type": kind, "pos": [0, 0], "size": [max(width, NODE_WIDTH), height], "flags": {},
            "order": 0, "mode": 0, "inputs": inputs, "outputs": outputs,
            "properties": {"Node name for S&R": kind}, "widgets_values": values}
    if title:
        node["title"] = title
    return node


def lay_out(nodes: Dict[int, dict], places: Mapping[int, tuple]) -> None:
    """Set every node's pos from the sizes: columns by given x, rows by given y.

    Columns (nodes of one given x) sit left to right, each as wide as its widest node, 40 px apart. Rows
    (nodes of one given y) are placed top down: a row starts below everything already in each of its
    columns, so nodes of a row stay level and no node reaches into the one below it.
    """
    xs = sorted({x for x, _ in places.values()})
    left, lefts = LEFT, {}
    for x in xs:
        lefts[x] = left
        left += max(nodes[i]["size"][0] for i, (nx, _) in places.items() if nx == x) + GAP
    tops = {x: TOP + TITLE_HEIGHT for x in xs}  # pos is the top of the body; the title bar is drawn above it
    for y in sorted({y for _, y in places.values()}):
        row = [i for i, (_, ny) in places.items() if ny == y]
        top = max(tops[places[i][0]] for i in row)
        for node_id in row:
            x = places[node_id][0]
            start = max(top, tops[x])  # two nodes of one row in one column go one below the other
            nodes[node_id]["pos"] = [lefts[x], start]
            tops[x] = start + nodes[node_id]["size"][1] + GAP + TITLE_HEIGHT


def workflow(table: Mapping[str, type], display: Mapping[str, str], title: str, nodes: list, wires: list) -> dict:
    """``nodes``: (id, kind, (x, y), widgets[, title]); ``wires``: (from id, output slot, to id, input name).

    (x, y) place a node in a column and in the column's order; the positions written come from the sizes.
    """
    links, links_in = [], {}
    for link_id, (src, slot, dst, name) in enumerate(wires, start=1):
        links_in.setdefault(dst, {})[name] = link_id
        links.append((link_id, src, slot, dst, name))
    built, places = {}, {}
    for node_id, kind, place, widgets, *rest in nodes:
        built[node_id] = ui_node(table, display, node_id, kind, widgets, links_in.get(node_id, {}),
                                 rest[0] if rest else None)
        places[node_id] = place
    lay_out(built, places)
    table_links = []
    for link_id, src, slot, dst, name in links:
        out = built[src]["outputs"][slot]
        out["links"].append(link_id)
        index = next(i for i, e in enumerate(built[dst]["inputs"]) if e["name"] == name)
        table_links.append([link_id, src, slot, dst, index, out["type"]])
    for order, node in enumerate(built.values()):
        node["order"] = order
    return {"last_node_id": max(built), "last_link_id": len(links), "nodes": list(built.values()),
            "links": table_links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "title": title}, "version": 0.4}

