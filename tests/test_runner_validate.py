"""Validation of workflows: the bad-workflow corpus, and what must be accepted."""
import json
import sys
from pathlib import Path

import pytest

import _runner_fakes as fakes  # tests/ is on sys.path (conftest.py)

runner = fakes.load_runner()
TABLE = fakes.node_table(runner)
BAD = Path(__file__).with_name("bad_workflows")
EXPECTED = json.loads((BAD / "expected.json").read_text())


@pytest.fixture(autouse=True)
def _clear_calls():
    fakes.CALLS.clear()


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "input").mkdir()
    return runner.RunnerPaths(tmp_path / "input", tmp_path / "output")


def test_corpus_is_complete():
    assert sorted(EXPECTED) == sorted(p.name for p in BAD.glob("*.json") if p.name != "expected.json")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_workflow_gives_one_clear_error_before_anything_runs(name, paths):
    expected = EXPECTED[name]
    with pytest.raises(runner.WorkflowError) as info:
        api, ui = runner.load_workflow(BAD / name, TABLE)
        runner.run_workflow(api, TABLE, ui_workflow=ui, paths=paths, progress=False)
    error = info.value
    for text in expected["substrings"]:
        assert text in str(error), f"{text!r} not in {str(error)!r}"
    assert (error.node_id, error.class_type, error.input_name) == (
        expected["node_id"], expected["class_type"], expected["input_name"])
    for part in filter(None, (expected["node_id"], expected["class_type"], expected["input_name"])):
        assert part in str(error)
    assert fakes.CALLS == []
    assert not paths.output_dir.exists()
    assert isinstance(error, ValueError)


def test_check_workflow_reports_further_problems_in_the_same_error():
    api = {"1": {"class_type": "MakeImage", "inputs": {"width": 0, "height": 99, "seed": 0, "color": "red"}},
           "2": {"class_type": "Collect", "inputs": {"images": ["1", 0]}}}
    with pytest.raises(runner.WorkflowError) as info:
        runner.check_workflow(api, TABLE)
    assert info.value.input_name == "width"
    assert len(info.value.others) == 1 and "height" in str(info.value)


def test_unused_nodes_are_not_checked_as_in_comfyui():
    api = fakes.simple_api()
    api["4"]["inputs"]["width"] = 0  # node 4 feeds no output node
    runner.check_workflow(api, TABLE)


def test_any_type_combo_link_and_union_types_are_accepted():
    class ComboOut:
        RETURN_TYPES = (["a", "b"], "IMAGE,MASK")
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

    table = {**TABLE, "ComboOut": ComboOut}
    api = {"1": {"class_type": "MakeImage", "inputs": {"width": 8, "height": 8, "seed": 0, "color": "red"}},
           "2": {"class_type": "ComboOut", "inputs": {}},
           "3": {"class_type": "Options", "inputs": {"mode": ["2", 0], "flag": False, "text": "", "anything": ["1", 0]}},
           "4": {"class_type": "Collect", "inputs": {"images": ["2", 1], "value": ["3", 0]}}}
    runner.check_workflow(api, table)


def test_integral_float_for_int_and_int_for_float_are_accepted():
    api = {"1": {"class_type": "MakeImage", "inputs": {"width": 8.0, "height": 8, "seed": 0, "color": "red"}},
           "2": {"class_type": "Invert", "inputs": {"image": ["1", 0], "strength": 1}},
           "3": {"class_type": "Collect", "inputs": {"images": ["2", 0]}}}
    runner.check_workflow(api, TABLE)
    with pytest.raises(runner.WorkflowError, match="8.5 is not an integer"):
        api["1"]["inputs"]["width"] = 8.5
        runner.check_workflow(api, TABLE)
    with pytest.raises(runner.WorkflowError, match="True is not an integer"):
        api["1"]["inputs"]["width"] = True
        runner.check_workflow(api, TABLE)


def test_validate_inputs_of_a_node_is_used():
    class Picky:
        RETURN_TYPES = ()
        FUNCTION = "run"
        OUTPUT_NODE = True

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"n": ("INT", {"min": 0, "max": 10})}}

        @classmethod
        def VALIDATE_INPUTS(cls, n):
            return True if n % 2 == 0 else f"n={n} must be even"

    table = {"Picky": Picky}
    runner.check_workflow({"1": {"class_type": "Picky", "inputs": {"n": 40}}}, table)  # range left to the node
    with pytest.raises(runner.WorkflowError) as info:
        runner.check_workflow({"1": {"class_type": "Picky", "inputs": {"n": 3}}}, table)
    assert (info.value.node_id, info.value.input_name) == ("1", "n") and "must be even" in str(info.value)


def test_malformed_api_node_is_named():
    with pytest.raises(runner.WorkflowError, match="node 3"):
        runner.check_workflow({"3": {"inputs": {}}, "4": {"class_type": "Collect"}}, TABLE)
