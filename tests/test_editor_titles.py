"""``_meta.title`` as the ComfyUI editor writes it: the node's own title, else its class's display name."""
from __future__ import annotations

import json

from test_workflows import ROOT, load_cli
from rwalk.nodes import NODE_DISPLAY_NAME_MAPPINGS
from rwalk.walk_core.runner import load_workflow, node_title, remote, ui_to_api

WORKFLOW = ROOT / "workflows" / "default.json"


class Empty:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}


def _ui(*nodes):
    return {"last_node_id": len(nodes), "last_link_id": 0, "links": [], "version": 0.4,
            "nodes": [{"id": i + 1, "type": kind, "inputs": [], "outputs": [], "widgets_values": [],
                       **({"title": title} if title is not None else {})} for i, (kind, title) in enumerate(nodes)]}


def test_the_title_is_the_users_then_the_display_name_then_the_class():
    ui = _ui(("Empty", None), ("Empty", "My picture"), ("Other", None), ("Empty", ""))
    table = {"Empty": Empty, "Other": Empty}
    api = ui_to_api(ui, table, display_names={"Empty": "Empty Picture"})
    assert [api[k]["_meta"]["title"] for k in "1234"] == ["Empty Picture", "My picture", "Other", "Empty Picture"]
    assert ui_to_api(ui, table)["1"]["_meta"]["title"] == "Empty"  # no display names known: the class name
    assert node_title({"type": "Empty", "title": 3}, {"Empty": "Empty Picture"}) == "Empty Picture"


def test_cli_convert_writes_the_editors_titles(capsys):
    assert load_cli().main(["convert", str(WORKFLOW)]) == 0
    api = json.loads(capsys.readouterr().out)
    nodes = {str(n["id"]): n for n in json.loads(WORKFLOW.read_text())["nodes"]}
    io_names = {"SaveImage": "Save Image", "LoadImage": "Load Image", "PreviewImage": "Preview Image"}
    for node_id, node in api.items():
        kind = node["class_type"]
        expected = nodes[node_id].get("title") or NODE_DISPLAY_NAME_MAPPINGS.get(kind) or io_names[kind]
        assert node["_meta"]["title"] == expected
    assert {n["_meta"]["title"] for n in api.values()} >= {"Walk Sampler", "Save Image"}


def test_a_servers_display_names_title_comfyuis_nodes(monkeypatch):
    info = {"EmptyImage": {"input": {"required": {}}, "output": ["IMAGE"], "display_name": "EmptyImage"},
            "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": True,
                          "display_name": "Save Image"},
            "Nameless": {"input": {"required": {}}, "output": ["IMAGE"]}}
    monkeypatch.setattr(remote, "_request", lambda url, data=None, timeout=30.0: json.dumps(info).encode())
    table, names = remote.server_nodes("http://127.0.0.1:1")
    assert set(table) == set(info) and names == {"EmptyImage": "EmptyImage", "SaveImage": "Save Image",
                                                 "Nameless": "Nameless"}
    api, _ = load_workflow(_ui(("SaveImage", None), ("EmptyImage", "Blank")), table, names)
    assert api["1"]["_meta"]["title"] == "Save Image" and api["2"]["_meta"]["title"] == "Blank"

