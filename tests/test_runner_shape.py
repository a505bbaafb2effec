"""Malformed workflow structure at any depth is one WorkflowError (exit 2), never a traceback (issue 29, item 2)."""
import importlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import _runner_fakes as fakes  # tests/ is on sys.path (conftest.py)
from cli_module import load_cli  # tests/ is on sys.path (conftest.py)

runner = fakes.load_runner()
shape = importlib.import_module("rwalk_core.runner.shape")  # the runner package imports its parts lazily
TABLE = {**fakes.FAKE_NODES, **runner.IO_NODE_CLASSES}
ROOT = Path(__file__).resolve().parents[1]



def ui():
    return fakes.simple_ui()


def refused(doc, needle):
    with pytest.raises(runner.WorkflowError, match=needle):
        api, _ = runner.load_workflow(doc, TABLE)
        runner.check_workflow(api, TABLE)


def test_the_fake_ui_is_valid():
    api, _ = runner.load_workflow(ui(), TABLE)
    runner.check_workflow(api, TABLE)


@pytest.mark.parametrize("change, needle", [
    (lambda d: d.update(nodes=["a", "b"]), r"'nodes'\[0\] is 'a'; expected a node object"),
    (lambda d: d["links"][0].__setitem__(2, "x"), "output slot 'x' is not allowed; expected an integer in 0..1023"),
    (lambda d: d["links"][0].__setitem__(2, 1e308), "output slot 1e\\+308 is not allowed"),
    (lambda d: d["links"][0].__setitem__(2, -1), "output slot -1 is not allowed"),
    (lambda d: d.update(links={"a": 1}), "'links' is .*; expected a list of links"),
    (lambda d: d["nodes"][0].update(inputs="zz"), "'inputs' is 'zz'; expected a list of input entries"),
    (lambda d: d["nodes"][1].update(inputs=[7]), "an entry of 'inputs' is 7"),
    (lambda d: d["nodes"][0].update(widgets_values=5), "'widgets_values' is 5; expected a list"),
    (lambda d: d["nodes"][0].update(mode=[1]), "'mode' is \\[1\\]; expected 0 \\(always\\)"),
    (lambda d: d["nodes"][0].update(type={"a": 1}), "'type' is \\{'a': 1\\}; expected a node class name"),
    (lambda d: d["nodes"][0].update(id=None), r"'nodes'\[0\]: 'id' is None"),
    (lambda d: d["nodes"][1].update(id=d["nodes"][0]["id"]), "node id '1' appears twice"),
    (lambda d: d.update(extra=5), "'extra' is 5; expected an object"),
    (lambda d: d.update(definitions={"subgraphs": 3}), "'definitions.subgraphs' is 3; expected a list"),
    (lambda d: d["nodes"][1]["inputs"][0].update(link=[1]), "'link' is \\[1\\]; expected a link id or null"),
])
def test_malformed_editor_workflows_name_what_is_wrong(change, needle):
    doc = ui()
    change(doc)
    refused(doc, needle)


@pytest.mark.parametrize("doc, needle", [
    ({"1": {"class_type": ["MakeImage"], "inputs": {}}}, "node 1: .*an API-format node must be"),
    ({"1": {"class_type": "MakeImage", "inputs": [1, 2]}}, "'inputs' is \\[1, 2\\]; expected an object"),
    ({"1": {"class_type": "MakeImage", "inputs": {}, "_meta": "t"}}, "'_meta' is 't'"),
    ({"1": "MakeImage"}, "not a ComfyUI workflow"),
    ({}, "not a ComfyUI workflow"),
])
def test_malformed_api_workflows_name_what_is_wrong(doc, needle):
    refused(doc, needle)


def test_editor_workflow_wrapped_as_a_request_prompt_is_refused_by_name():
    refused({"prompt": ui()}, "'prompt' holds an editor-format workflow")
    api = runner.ui_to_api(ui(), TABLE)
    loaded, embedded = runner.load_workflow({"prompt": api, "extra_data": {"extra_pnginfo": {"workflow": ui()}}},
                                            TABLE)
    assert loaded == runner.normalize_api(api) and embedded == ui()
    refused({"prompt": api, "extra_data": 5}, "'extra_data' must be")
    refused({"prompt": api, "extra_data": {"extra_pnginfo": {"workflow": {"nodes": 3}}}}, "expected an object with")


def test_deep_nesting_is_refused_in_text_in_dicts_and_in_set_values():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(runner.WorkflowError, match="nests lists/objects too deeply"):
        runner.load_workflow(deep, TABLE)
    inner = 0
    for _ in range(shape.MAX_DEPTH + 5):  # deep enough for the limit, shallow enough for Python
        inner = [inner]
    doc = {"1": {"class_type": "MakeImage", "inputs": {"width": inner}}}
    with pytest.raises(runner.WorkflowError, match=f"at most {shape.MAX_DEPTH} levels"):
        runner.load_workflow(doc, TABLE)
    with pytest.raises(runner.WorkflowError, match=f"at most {shape.MAX_DEPTH} levels"):
        runner.load_workflow(json.dumps(doc), TABLE)
    ok = inner
    for _ in range(5):
        ok = ok[0]
    shape.check_depth({"a": {"b": ok}}, "x", limit=shape.MAX_DEPTH + 5)  # within the limit: fine


def test_class_type_list_with_seed_through_the_cli_exits_2(tmp_path, capsys):
    cli = load_cli()
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"1": {"class_type": ["WalkSampler"], "inputs": {"seed": 1}}}))
    assert cli.main(["check", str(path), "--seed", "3", "-q"], node_classes=TABLE) == 2
    assert "an API-format node must be" in capsys.readouterr().err


def test_huge_integers_and_invalid_bytes_are_workflow_errors(tmp_path):
    with pytest.raises(runner.WorkflowError, match="a number with 5000 digits; numbers may have at most 4300") as e:
        runner.load_workflow('{"1": {"class_type": "X", "inputs": {"a": ' + "9" * 5000 + "}}}", TABLE)
    assert "set_int_max_str_digits" not in str(e.value)
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(runner.WorkflowError, match="not a UTF-8 JSON file"):
        runner.load_workflow(path, TABLE)
    with pytest.raises(runner.WorkflowError, match="workflow file"):
        runner.load_workflow("wf\x00.json", TABLE)
    with pytest.raises(runner.WorkflowError, match="workflow source int is not allowed"):
        runner.load_workflow(5, TABLE)


def test_unhashable_widget_value_where_a_control_value_belongs_is_named():
    doc = ui()
    node = next(n for n in doc["nodes"] if n["type"] == "MakeImage")
    node["widgets_values"][3] = ["randomize"]
    refused(doc, "control after generate")


def _png_with(tmp_path, *chunks):
    path = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(path)
    blob = path.read_bytes()
    end = blob.rindex(b"IEND") - 4
    extra = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks)
    path.write_bytes(blob[:end] + extra + blob[end:])
    return path


@pytest.mark.parametrize("kind, head", [(b"zTXt", b"prompt\0\0"), (b"iTXt", b"workflow\0\1\0\0\0")])
def test_compressed_text_bomb_is_refused_without_inflating_it(tmp_path, kind, head):
    bomb = zlib.compress(b" " * (64 * 1024 * 1024), 9)  # 64 MiB of text in ~65 kB
    path = _png_with(tmp_path, (kind, head + bomb))
    with pytest.raises(runner.WorkflowError, match="inflates to more than 32 MiB"):
        runner.load_workflow(path, TABLE)


def test_png_text_is_read_without_decoding_pixels_and_damage_is_named(tmp_path):
    api = runner.ui_to_api(ui(), TABLE)
    good = _png_with(tmp_path, (b"tEXt", b"prompt\0" + json.dumps(api).encode()), (b"tEXt", b"\0no keyword"))
    assert runner.load_workflow(good, TABLE)[0] == runner.normalize_api(api)
    blob = good.read_bytes()
    at = blob.index(b"prompt\0") + 10
    (tmp_path / "crc.png").write_bytes(blob[:at] + b"X" + blob[at + 1:])
    with pytest.raises(runner.WorkflowError, match="bad CRC"):
        runner.load_workflow(tmp_path / "crc.png", TABLE)
    (tmp_path / "cut.png").write_bytes(blob[: blob.index(b"prompt\0") + 20])
    with pytest.raises(runner.WorkflowError, match="truncated"):
        runner.load_workflow(tmp_path / "cut.png", TABLE)
    deep = _png_with(tmp_path, (b"tEXt", b"prompt\0" + b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(runner.WorkflowError, match="the PNG's 'prompt' chunk: the JSON nests"):
        runner.load_workflow(deep, TABLE)


def test_png_saved_by_the_runner_round_trips(tmp_path):
    api = runner.ui_to_api(ui(), TABLE)
    path = runner.save_png(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8), prompt=api,
                           extra_pnginfo={"workflow": ui()})
    loaded, embedded = runner.load_workflow(path, TABLE)
    assert loaded == runner.normalize_api(api) and embedded == ui()


def test_validate_inputs_that_cannot_handle_a_type_is_a_workflow_error():
    class Fussy:
        RETURN_TYPES = ()
        FUNCTION = "run"
        OUTPUT_NODE = True

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"a": ("FLOAT", {"min": 0.0, "max": 1.0}), "b": ("*",)}}

        @classmethod
        def VALIDATE_INPUTS(cls, a, b):
            return True if a < b else "a must be below b"

    with pytest.raises(runner.WorkflowError, match="'a'.*'x' is not a number"):  # the type is still checked
        runner.check_workflow({"1": {"class_type": "Fussy", "inputs": {"a": "x", "b": 1}}}, {"Fussy": Fussy})
    with pytest.raises(runner.WorkflowError, match="cannot check these values \\(TypeError"):
        runner.check_workflow({"1": {"class_type": "Fussy", "inputs": {"a": 0.5, "b": "y"}}}, {"Fussy": Fussy})


def test_a_png_whose_prompt_chunk_is_null_says_so(tmp_path):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", "null")
    Image.new("RGB", (2, 2)).save(tmp_path / "null.png", pnginfo=info)
    with pytest.raises(runner.WorkflowError, match="its 'prompt' chunk is null"):
        runner.read_png_workflow(tmp_path / "null.png")
