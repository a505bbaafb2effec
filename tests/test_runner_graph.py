"""Loading workflows and the editor (UI) -> API conversion of the headless runner."""
import json
import sys
from pathlib import Path

import pytest

import _runner_fakes as fakes  # tests/ is on sys.path (conftest.py)

runner = fakes.load_runner()
TABLE = fakes.node_table(runner)


def strip_meta(api):
    return {k: {kk: vv for kk, vv in v.items() if kk != "_meta"} for k, v in api.items()}


def test_ui_to_api_skips_control_after_generate_and_matches_api():
    api = runner.ui_to_api(fakes.simple_ui(), TABLE)
    assert strip_meta(api) == fakes.simple_api()
    assert api["1"]["_meta"] == {"title": "MakeImage"}


def test_seed_named_widget_has_control_value_without_option():
    ui = fakes.UiBuilder()
    ui.add(1, "NoiseSeed", [77, "increment", 2.5], outputs=["INT"])
    api = runner.ui_to_api(ui.build(), TABLE)
    assert api["1"]["inputs"] == {"noise_seed": 77, "scale": 2.5}


def test_missing_control_value_is_an_error_naming_the_seed_and_the_value():
    """The editor reads widgets_values by position: without the control value "green" would become it and
    color would fall back to its default. The converter says so instead of guessing."""
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", [16, 8, 42, "green"], outputs=["IMAGE"])  # saved without the control value
    with pytest.raises(runner.WorkflowError, match=r"node 1 \(MakeImage\), input 'seed'.*'green'.*'fixed'"):
        runner.ui_to_api(ui.build(), TABLE)


def test_int_named_seed_gets_a_control_place_unless_declared_off():
    """The frontend's rule: control_after_generate if given (false turns it off), else the name seed/noise_seed;
    only INT widgets (and combos that ask for it, with a filter text as well) get one."""
    from rwalk.walk_core.runner.editor import widget_slots
    from rwalk.walk_core.runner.spec import InputSpec

    def roles(spec):
        return [slot.role for slot in widget_slots([spec])]

    assert roles(InputSpec("seed", "INT", {"default": 0})) == ["value", "control"]
    assert roles(InputSpec("noise_seed", "INT", {})) == ["value", "control"]
    assert roles(InputSpec("seed", "INT", {"control_after_generate": False})) == ["value"]
    assert roles(InputSpec("frame", "INT", {"control_after_generate": "increment"})) == ["value", "control"]
    assert roles(InputSpec("encoder_seed", "INT", {})) == ["value"]
    assert roles(InputSpec("seed", "FLOAT", {"control_after_generate": True})) == ["value"]
    assert roles(InputSpec("name", "COMBO", {"control_after_generate": True}, choices=("a", "b"))) == [
        "value", "control", "filter"]


def test_linked_widget_takes_the_link_not_the_stored_value():
    ui = fakes.UiBuilder()
    ui.add(1, "IntOut", [12], outputs=["INT"])
    ui.add(2, "MakeImage", [16, 8, 42, "fixed", "red"], inputs=[("width", "INT", True)], outputs=["IMAGE"])
    ui.add(3, "Collect", ["x"], inputs=[("images", "IMAGE")])
    ui.link(1, 0, 2, "width")
    ui.link(2, 0, 3, "images")
    api = runner.ui_to_api(ui.build(), TABLE)
    assert api["2"]["inputs"] == {"width": ["1", 0], "height": 8, "seed": 42, "color": "red"}


def test_unlinked_widget_sockets_of_new_editors_keep_their_values():
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", [16, 8, 42, "fixed", "red"],
           inputs=[("width", "INT", True), ("height", "INT", True), ("seed", "INT", True), ("color", "COMBO", True)],
           outputs=["IMAGE"])
    assert runner.ui_to_api(ui.build(), TABLE)["1"]["inputs"] == {"width": 16, "height": 8, "seed": 42, "color": "red"}


def test_reroutes_are_passed_through():
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", [8, 8, 1, "fixed", "red"], outputs=["IMAGE"])
    ui.add(5, "Reroute", [], inputs=[("", "*")], outputs=["IMAGE"])
    ui.add(6, "Reroute", [], inputs=[("", "*")], outputs=["IMAGE"])
    ui.add(3, "Collect", ["x"], inputs=[("images", "IMAGE")])
    ui.link(1, 0, 5, "")
    ui.link(5, 0, 6, "")
    ui.link(6, 0, 3, "images")
    api = runner.ui_to_api(ui.build(), TABLE)
    assert set(api) == {"1", "3"}
    assert api["3"]["inputs"]["images"] == ["1", 0]


def test_primitive_node_feeds_its_value_to_the_widget():
    ui = fakes.UiBuilder()
    ui.add(7, "PrimitiveNode", [123, "fixed"], outputs=["INT"])
    ui.add(1, "MakeImage", [8, 8, 5, "randomize", "red"], inputs=[("seed", "INT", True)], outputs=["IMAGE"])
    ui.add(3, "Collect", ["x"], inputs=[("images", "IMAGE")])
    ui.link(7, 0, 1, "seed")
    ui.link(1, 0, 3, "images")
    api = runner.ui_to_api(ui.build(), TABLE)
    assert "7" not in api
    assert api["1"]["inputs"]["seed"] == 123


def test_notes_are_dropped_and_unknown_notes_are_not_errors():
    ui = fakes.UiBuilder()
    ui.add(8, "Note", ["remember this"])
    ui.add(9, "MarkdownNote", ["# title"])
    ui.add(1, "MakeImage", [8, 8, 1, "fixed", "red"], outputs=["IMAGE"])
    assert set(runner.ui_to_api(ui.build(), TABLE)) == {"1"}


def _chain(mode):
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", [8, 8, 1, "fixed", "red"], outputs=["IMAGE"])
    ui.add(2, "Invert", [0.5], inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=mode)
    ui.add(3, "Collect", ["x"], inputs=[("images", "IMAGE")])
    ui.link(1, 0, 2, "image")
    ui.link(2, 0, 3, "images")
    return ui.build()


def test_muted_node_is_dropped_with_its_links():
    api = runner.ui_to_api(_chain(2), TABLE)
    assert set(api) == {"1", "3"}
    assert "images" not in api["3"]["inputs"]


def test_bypassed_node_passes_its_input_of_the_same_type():
    api = runner.ui_to_api(_chain(4), TABLE)
    assert set(api) == {"1", "3"}
    assert api["3"]["inputs"]["images"] == ["1", 0]


def test_widgets_values_as_dict_and_missing_values_use_defaults():
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", {"width": 32, "seed": 9, "color": "green"}, outputs=["IMAGE"])
    ui.add(2, "MakeImage", [24], outputs=["IMAGE"])  # saved by an older version with fewer widgets
    api = runner.ui_to_api(ui.build(), TABLE)
    assert api["1"]["inputs"] == {"width": 32, "height": 8, "seed": 9, "color": "green"}
    assert api["2"]["inputs"] == {"width": 24, "height": 8, "seed": 0, "color": "red"}


def test_force_input_widget_counted_only_when_the_values_say_so():
    ui = fakes.UiBuilder()
    ui.add(1, "Options", ["b", True, "hi"], outputs=["STRING"])
    ui.add(2, "Options", ["b", True, "hi", "stale"], outputs=["STRING"])  # older editors kept it
    api = runner.ui_to_api(ui.build(), TABLE)
    assert api["1"]["inputs"] == {"mode": "b", "flag": True, "text": "hi"}
    assert api["2"]["inputs"] == {"mode": "b", "flag": True, "text": "hi", "extra": "stale"}


def test_load_image_skips_the_upload_value():
    ui = fakes.UiBuilder()
    ui.add(1, "LoadImage", ["cat.png", "image"], outputs=["IMAGE", "MASK"])
    assert runner.ui_to_api(ui.build(), TABLE)["1"]["inputs"] == {"image": "cat.png"}


def test_link_objects_of_the_newer_schema():
    ui = fakes.simple_ui()
    ui["links"] = [dict(zip(["id", "origin_id", "origin_slot", "target_id", "target_slot", "type"], link))
                   for link in ui["links"]]
    assert strip_meta(runner.ui_to_api(ui, TABLE)) == fakes.simple_api()


def test_unknown_classes_are_listed_in_one_error():
    ui = fakes.simple_ui()
    ui["nodes"].append({"id": 10, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [], "outputs": [],
                        "widgets_values": ["sd15.safetensors"]})
    ui["nodes"].append({"id": 11, "type": "CLIPTextEncode", "mode": 0, "inputs": [], "outputs": [],
                        "widgets_values": ["a cat"]})
    ui["nodes"].append({"id": 12, "type": "VAEDecode", "mode": 4, "inputs": [], "outputs": []})  # bypassed: fine
    with pytest.raises(runner.WorkflowError) as info:
        runner.ui_to_api(ui, TABLE)
    text = str(info.value)
    assert "CheckpointLoaderSimple (node 10)" in text and "CLIPTextEncode (node 11)" in text
    assert "VAEDecode" not in text.split("available here")[0]
    assert "ComfyUI" in text and "MakeImage" in text
    assert info.value.node_id == "10" and info.value.class_type == "CheckpointLoaderSimple"


def test_subgraph_is_a_clear_error():
    ui = fakes.simple_ui()
    ui["definitions"] = {"subgraphs": [{"id": "1f2e-aa", "name": "my block"}]}
    ui["nodes"].append({"id": 20, "type": "1f2e-aa", "mode": 0, "inputs": [], "outputs": []})
    with pytest.raises(runner.WorkflowError, match="subgraph"):
        runner.ui_to_api(ui, TABLE)


@pytest.mark.parametrize("kind", ["dict", "text", "file"])
def test_load_workflow_sources_and_format_detection(tmp_path, kind):
    ui = fakes.simple_ui()
    src = {"dict": ui, "text": json.dumps(ui), "file": tmp_path / "wf.json"}[kind]
    if kind == "file":
        src.write_text(json.dumps(ui))
    api, ui_back = runner.load_workflow(src, TABLE)
    assert strip_meta(api) == fakes.simple_api()
    assert ui_back == ui
    api2, none = runner.load_workflow(json.dumps(fakes.simple_api()), TABLE)
    assert api2 == fakes.simple_api() and none is None
    assert runner.detect_format(ui) == "ui" and runner.detect_format(fakes.simple_api()) == "api"


def test_api_with_int_ids_is_normalised():
    api = {1: {"class_type": "MakeImage", "inputs": {"width": 8, "height": 8, "seed": 0, "color": "red"}},
           2: {"class_type": "Collect", "inputs": {"images": [1, 0]}}}
    loaded, _ = runner.load_workflow(api, TABLE)
    assert loaded["2"]["inputs"]["images"] == ["1", 0]


def test_prompt_request_body_is_accepted():
    body = {"prompt": fakes.simple_api(), "extra_data": {"extra_pnginfo": {"workflow": fakes.simple_ui()}}}
    api, ui = runner.load_workflow(body, TABLE)
    assert api == fakes.simple_api() and ui == fakes.simple_ui()


def test_convert_text_is_api_json():
    text = runner.api_to_json(runner.ui_to_api(fakes.simple_ui(), TABLE))
    assert strip_meta(json.loads(text)) == fakes.simple_api()
