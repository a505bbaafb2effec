"""Every shipped workflow as the ComfyUI editor reads and draws it.

The rules (from the ComfyUI frontend; walk_core/runner/editor.py says where): widgets_values hold one value per
widget input in declared order, plus a "control after generate" value after every INT input named seed or
noise_seed or declared with control_after_generate; the editor draws a node at least as large as its
computed size, with a 30 px title bar above its pos. Written here on their own, not through the generator.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from rwalk.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from rwalk.walk_core.runner import IO_NODE_CLASSES
from rwalk.walk_core.runner.editor import node_size
from rwalk.walk_core.runner.spec import InputSpec, input_specs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "workflows").glob("*.json"))
CONTROL = {"fixed", "increment", "decrement", "randomize"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
TITLE = 30  # LiteGraph.NODE_TITLE_HEIGHT: drawn above a node's pos
NOTES = {"Note", "MarkdownNote"}


def _comfy_declarations():
    """ComfyUI's own nodes used by the examples, as scripts/comfy_core_nodes.py declares them."""
    spec = importlib.util.spec_from_file_location("comfy_core_nodes", ROOT / "scripts" / "comfy_core_nodes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMFY = _comfy_declarations()
TABLE = {**COMFY.comfy_node_table(), **NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
TITLES = {**COMFY.display_names(), **NODE_DISPLAY_NAME_MAPPINGS}  # a node's title unless it has its own


def expected_places(cls) -> list:
    """(input name, is it the control value) for every place of widgets_values, by the editor's rules."""
    declared = cls.INPUT_TYPES()
    places = []
    for section in ("required", "optional"):
        for name, entry in (declared.get(section) or {}).items():
            kind, options = entry[0], (entry[1] if len(entry) > 1 else {})
            if options.get("forceInput") or not (isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES):
                continue  # a socket
            places.append((name, False))
            flag = options.get("control_after_generate")
            if kind == "INT" and (flag if flag is not None else name in ("seed", "noise_seed")):
                places.append((name, True))
            if options.get("image_upload"):
                places.append((name, False))
    return places


def editor_problems(workflow: dict) -> list:
    """What the editor would read or draw differently from what the file means; [] when nothing."""
    problems = []
    nodes = workflow["nodes"]
    for node in nodes:
        kind, label = node["type"], f"node {node['id']} ({node['type']})"
        if kind in NOTES:
            continue
        places, values = expected_places(TABLE[kind]), node["widgets_values"]
        if len(values) != len(places):
            problems.append(f"{label}: {len(values)} widget values, the editor makes {len(places)} widgets")
        for i, (name, control) in enumerate(places[:len(values)]):
            if control and values[i] not in CONTROL:
                problems.append(f"{label}: widgets_values[{i}] = {values[i]!r} after {name}; expected a control value")
        specs = input_specs(TABLE[kind]).values()
        names = [o["name"] for o in node["outputs"]]
        width, height = node_size(specs, names, node.get("title") or TITLES.get(kind, kind))
        if node["size"][0] < width or node["size"][1] < height:
            problems.append(f"{label}: saved size {node['size']} is smaller than the drawn {[width, height]}")
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if _intersect(a, b):
                problems.append(f"node {a['id']} ({a['type']}) and node {b['id']} ({b['type']}) overlap")
    return problems


def _intersect(a: dict, b: dict) -> bool:
    """Rectangles from the top of the title bar to the bottom of the body."""
    (ax, ay), (aw, ah) = a["pos"], a["size"]
    (bx, by), (bw, bh) = b["pos"], b["size"]
    return ax < bx + bw and bx < ax + aw and ay - TITLE < by + bh and by - TITLE < ay + ah


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_shipped_workflow_reads_and_draws_as_the_editor_does(path):
    assert editor_problems(json.loads(path.read_text())) == []


def test_the_check_finds_a_missing_control_value_a_short_node_and_an_overlap():
    """The failures of issue 33: no control value after Train Walk Model's seed, sizes below the drawn ones."""
    good = json.loads((ROOT / "workflows" / "train_then_walk.json").read_text())
    trainer = next(n for n in good["nodes"] if n["type"] == "TrainWalkModel")
    place = [name for name, _ in expected_places(TABLE["TrainWalkModel"])].index("seed") + 1
    no_control = copy.deepcopy(good)
    del next(n for n in no_control["nodes"] if n["id"] == trainer["id"])["widgets_values"][place]
    assert any("widget values" in p for p in editor_problems(no_control))
    assert any("expected a control value" in p for p in editor_problems(no_control))
    short = copy.deepcopy(good)
    next(n for n in short["nodes"] if n["type"] == "WalkSampler")["size"][1] = 520
    assert any("smaller than the drawn" in p for p in editor_problems(short))
    crowded = copy.deepcopy(good)
    first, second = crowded["nodes"][0], crowded["nodes"][1]
    second["pos"] = [first["pos"][0] + 10, first["pos"][1] + first["size"][1] + TITLE - 5]
    assert any("overlap" in p for p in editor_problems(crowded))


def test_node_size_is_the_height_the_editor_drew():
    """WalkSampler as the editor drew it in issue 33: 5 sockets, 3 outputs, 20 widgets + a seed's control: 618 px."""
    sockets = [InputSpec(n, t) for n, t in [("target", "WALK_TARGET"), ("guidance", "WALK_GUIDANCE"),
                                            ("init_image", "IMAGE"), ("init_latent", "LATENT"), ("mask", "MASK")]]
    widgets = [InputSpec("seed", "INT")] + [InputSpec(f"w{i}", "FLOAT") for i in range(19)]
    assert node_size(sockets + widgets, ["image", "latent", "trajectory"], "Walk Sampler")[1] == 618
    text = [InputSpec("text", "STRING", {"multiline": True}), InputSpec("clip", "CLIP")]
    assert node_size(text, ["CONDITIONING"], "CLIP Text Encode (Prompt)")[1] == 20 + 54 + 8 + 6


def test_every_example_is_where_the_template_browser_looks():
    """ComfyUI lists <pack>/workflows/*.json (one level) with the .jpg of the same name as thumbnail."""
    assert not list((ROOT / "workflows").glob("*/*.json")), "the template browser does not look in subfolders"
    assert len(EXAMPLES) >= 25
    for path in EXAMPLES:
        assert path.with_suffix(".jpg").is_file(), f"{path.name} needs a .jpg thumbnail beside it"
