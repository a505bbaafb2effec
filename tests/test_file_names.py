"""File names a workflow or command line gives are refused when it is checked (exit 2), not when a node runs:
names that escape their folder, names too long for the file system once numbered, convert -o targets."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, WorkflowError, check_workflow

import _runner_fakes as fakes
from cli_module import load_cli  # tests/ is on sys.path (conftest.py)

TABLE = {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "in").mkdir()
    return RunnerPaths(tmp_path / "in", tmp_path / "out")


def defaults(class_type: str, **chosen) -> dict:
    """A node with its required widget inputs at their defaults, ``chosen`` ones set (links included)."""
    declared = TABLE[class_type].INPUT_TYPES()["required"]
    values = {name: options.get("default", kind[0] if isinstance(kind, list) else None)
              for name, (kind, *rest) in declared.items() for options in [rest[0] if rest else {}]}
    return {"class_type": class_type, "inputs": {**{k: v for k, v in values.items() if v is not None}, **chosen}}


def refused(prompt, paths, pattern):
    with pytest.raises(WorkflowError, match=pattern) as caught:
        check_workflow(prompt, TABLE, paths=paths)
    return caught.value


def save(class_type, prefix):
    return {"1": defaults("ReferenceImage", width=16, height=16),
            "2": defaults(class_type, images=["1", 0], filename_prefix=prefix)}


@pytest.mark.parametrize("class_type", ["SaveImage", "SaveAnimatedWEBP"])
def test_a_save_prefix_that_escapes_or_cannot_be_numbered_is_a_validation_error(paths, class_type):
    where = rf"node 2 \({class_type}\), input 'filename_prefix'"
    refused(save(class_type, "../escape"), paths, where + ".*points outside the output folder")
    refused(save(class_type, "x" * 245), paths, where + ".*245 bytes long plus 15 for the counter.*at most 240")
    refused(save(class_type, "y" * 256 + "/run"), paths, where + ".*256 bytes long; .*at most 255")
    (paths.output_dir).mkdir()
    (paths.output_dir / "taken").write_text("a file")
    refused(save(class_type, "taken/run"), paths, where + ".*needs the folder .*taken, but that is a file")
    check_workflow(save(class_type, "é" * 100), TABLE, paths=paths)  # 200 bytes + 15 fit


def test_a_long_load_image_name_is_a_validation_error_not_an_os_error(paths):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "z" * 300 + ".png"}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    refused(prompt, paths, r"node 1 \(LoadImage\), input 'image'.*304 bytes long; .*at most 255")


def test_a_style_save_name_that_escapes_is_a_validation_error(paths):
    prompt = {"1": defaults("ReferenceImage", width=16, height=16),
              "2": defaults("StyleEncoder", images=["1", 0]),
              "3": {"class_type": "StyleEncoderSave", "inputs": {"style": ["2", 0], "name": "../../escape"}}}
    error = refused(prompt, paths, r"node 3 \(StyleEncoderSave\), input 'name'.*points outside the style codes folder")
    assert "StyleEncoderSave: name" not in str(error)  # the node and input are said once
    prompt["3"]["inputs"]["name"] = "s" * 250
    refused(prompt, paths, r"input 'name'.*250 bytes long plus 18")
    prompt["3"]["inputs"]["name"] = 5
    refused(prompt, paths, r"input 'name'.*5 is not")  # text only (a string check of the runner or the node)


def test_a_training_model_name_that_escapes_is_a_validation_error(paths):
    prompt = {"1": defaults("TrainWalkModel", model_name="../../escape", references="painting"),
              "2": defaults("WalkSampler", target=["1", 0], width=16, height=16),
              "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    refused(prompt, paths, r"node 1 \(TrainWalkModel\), input 'model_name.*points outside the models folder")
    prompt["1"]["inputs"].update(model_name=" ", folder="")
    refused(prompt, paths, r"node 1 \(TrainWalkModel\).*model_name=' ' is empty")
    prompt["1"]["inputs"].update(model_name="ok", folder="../elsewhere")
    refused(prompt, paths, r"node 1 \(TrainWalkModel\).*'../elsewhere' points outside the input folder")


def test_a_missing_training_folder_or_unknown_reference_is_a_validation_error(paths):
    """Found before anything runs (exit 2), not after the graph has started."""
    prompt = {"1": defaults("TrainWalkModel", model_name="m", folder="nowhere"),
              "2": defaults("WalkSampler", target=["1", 0], width=16, height=16),
              "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    refused(prompt, paths, r"node 1 \(TrainWalkModel\).*folder 'nowhere' does not exist in the input folder")
    (paths.input_dir / "a_file").write_text("x")
    prompt["1"]["inputs"]["folder"] = "a_file"
    refused(prompt, paths, r"folder 'a_file' is not a folder in the input folder")
    prompt["1"]["inputs"].update(folder="", references="bricks, clouds")
    refused(prompt, paths, r"node 1 \(TrainWalkModel\).*references \['clouds'\] unknown; expected .*bricks")


@pytest.fixture(scope="module")
def cli():
    return load_cli()


@pytest.mark.parametrize("target, needle", [
    ("missing/api.json", r"the folder '.*missing' does not exist"),
    (".", r"is a folder; expected a file name"),
    ("file.txt/api.json", r"the folder '.*file.txt' is a file, not a folder"),
    ("n" * 300 + ".json", r"cannot be a file name here"),
])
def test_convert_output_problems_are_one_clear_error(cli, tmp_path, capsys, target, needle):
    source = tmp_path / "wf.json"
    source.write_text(json.dumps(fakes.simple_ui()))
    (tmp_path / "file.txt").write_text("x")
    table = {**fakes.FAKE_NODES, **IO_NODE_CLASSES}
    assert cli.main(["convert", str(source), "-o", str(tmp_path / target)], node_classes=table) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: -o ") and __import__("re").search(needle, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "wf.json"]  # nothing written


@pytest.mark.parametrize("prefix, pattern", [
    ("a\nb", r"contains a control character \('\\n'\); expected a plain file name"),
    ("a\tb", r"contains a control character \('\\t'\)"),
    ("a\x7fb", r"contains a control character \('\\x7f'\)"),
    ("a\x00b", r"contains a NUL character"),
    ("a\ud800b", r"is not valid UTF-8 text"),
    ("..\\..\\x", r"contains a backslash; use '/' between folders"),
    ("sub\\x", r"contains a backslash; use '/' between folders"),
])
@pytest.mark.parametrize("class_type", ["SaveImage", "SaveAnimatedWEBP"])
def test_a_save_prefix_with_control_characters_or_backslashes_is_refused(paths, class_type, prefix, pattern):
    refused(save(class_type, prefix), paths, rf"node 2 \({class_type}\), input 'filename_prefix'.*" + pattern)
    assert not paths.output_dir.exists() or not any(paths.output_dir.iterdir())


@pytest.mark.parametrize("name, pattern", [
    ("..", r"hidden file name"),
    (".", r"hidden file name|no file name part"),
    (".secret", r"hidden file name"),
    ("sub/.x", r"hidden file name"),
    ("a\nb", r"contains a control character"),
    ("a\ud800b", r"is not valid UTF-8 text"),
])
def test_a_style_save_name_that_is_hidden_or_has_control_characters_is_refused(paths, name, pattern):
    prompt = {"1": defaults("ReferenceImage", width=16, height=16),
              "2": defaults("StyleEncoder", images=["1", 0]),
              "3": {"class_type": "StyleEncoderSave", "inputs": {"style": ["2", 0], "name": name}}}
    refused(prompt, paths, r"node 3 \(StyleEncoderSave\), input 'name'.*" + pattern)


def test_a_training_model_name_with_a_control_character_is_refused(paths):
    prompt = {"1": defaults("TrainWalkModel", model_name="a\nb", references="painting"),
              "2": defaults("WalkSampler", target=["1", 0], width=16, height=16),
              "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    refused(prompt, paths, r"node 1 \(TrainWalkModel\).*contains a control character")
