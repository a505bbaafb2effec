"""Fuzzing the path from bytes to a graph, and command lines (issue 29): mutations of the shipped workflows.

Property: every document, in either format and by every route (a dict, JSON text, a file through the CLI),
is answered by success or by the runner's own WorkflowError -- exit 0 or 2, never a traceback, and nothing
written by validation. Executed cases (tiny sizes) may also end in exit 1 naming the node; every file they
leave is complete and inside the output folder. Budget and the long run: tests/fuzz_support.py.
"""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from PIL import Image

from fuzz_support import fuzz_settings, mutate, outcomes, to_text  # noqa: F401 (outcomes: a fixture)
from rwalk.walk_core import limits
from cli_module import load_cli  # tests/ is on sys.path (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "workflows").glob("*.json"))
SIZE_INPUTS = {"width": 16, "height": 16, "steps": 2, "batch_size": 1, "size": 16, "frames": 2, "count": 1,
               "items": 1, "trajectory_every": 0}


def _cli():
    return load_cli()


CLI = _cli()
RUNNER = CLI.load_runner()
TABLE = CLI.node_table()
UI_DOCS = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SHIPPED}


def _api(ui):
    try:
        return RUNNER.ui_to_api(ui, TABLE)
    except RUNNER.WorkflowError:  # ComfyUI-only workflows: keep their editor form only
        return None


API_DOCS = {name: api for name, api in ((n, _api(d)) for n, d in UI_DOCS.items()) if api is not None}
BASES = [("ui", n) for n in UI_DOCS] + [("api", n) for n in API_DOCS]


def _base(kind: str, name: str):
    return copy.deepcopy(UI_DOCS[name] if kind == "ui" else API_DOCS[name])


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its size (what a run may have written)."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "input").mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(root / "input" / "red.png")
    return root


def _check(doc, paths):
    """Load then validate; "valid", or "refused" for a WorkflowError. Anything else fails the test."""
    try:
        api, _ui = RUNNER.load_workflow(doc, TABLE)
        RUNNER.plan_workflow(api, TABLE, paths=paths)
    except RUNNER.WorkflowError as error:
        assert str(error).strip(), "a WorkflowError must say what is wrong"
        return "refused"
    return "valid"


def _routes():
    return st.sampled_from(["dict", "text"])


@fuzz_settings(scale=2)
@given(data=st.data(), base=st.sampled_from(BASES), route=_routes())
def test_mutated_workflows_validate_or_raise_workflow_error(data, base, route, folders, outcomes):
    doc, _ops = mutate(data, _base(*base))
    paths = RUNNER.RunnerPaths(folders / "input", folders / "output")
    before = tree(folders)
    result = _check(doc if route == "dict" else to_text(doc), paths)
    outcomes("validate mutated workflows").add(result)
    assert tree(folders) == before, "validation wrote files"


@fuzz_settings()
@given(data=st.data(), base=st.sampled_from(BASES), seed=st.one_of(st.none(), st.integers(-2, 2 ** 64)),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_mutated_workflow_files_through_the_cli_exit_0_or_2(data, base, seed, cut, folders, outcomes, capsys):
    doc, _ops = mutate(data, _base(*base))
    text = to_text(doc)
    if cut is not None:  # a truncated or damaged file
        text = text[: int(len(text) * cut)]
    path = folders / "wf.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = tree(folders)
    argv = ["check", str(path), "-q", "--input-dir", str(folders / "input"), "--output-dir", str(folders / "output")]
    if seed is not None:
        argv += ["--seed", str(seed)]
    code = CLI.main(argv, node_classes=TABLE)
    capsys.readouterr()
    outcomes("cli check of mutated files").add(f"exit {code}")
    assert code in (0, 2)
    assert tree(folders) == before, "check wrote files"


OPTION_POOL = [  # the first ones, each more than once, make a tiny run that succeeds
    ["--set", "WalkSampler.width=16"], ["--set", "WalkSampler.height=16"], ["--set", "WalkSampler.steps=2"],
    ["--set", "WalkSampler.width=16"], ["--set", "WalkSampler.height=16"], ["--set", "WalkSampler.steps=2"],
    ["--set", "WalkSampler.steps=0"], ["--set", "WalkSampler.width=4096"], ["--set", "WalkSampler.batch_size=64"],
    ["--set", "3.walk=nope"], ["--set", "nonode.x=1"], ["--set", "=="], ["--set", "WalkSampler.seed=-1"],
    ["--set", "SaveImage.filename_prefix=../out"], ["--set", "SaveImage.filename_prefix=fz"],
    ["--seed", "5"], ["--seed", "99999999999999999999999"], ["--seed", "x"], ["--max-memory", "0.05"],
    ["--max-memory", "-1"], ["--max-memory", "nan"], ["-q"], ["-v"], ["--bogus"],
]


@fuzz_settings(scale=0.5)
@given(command=st.sampled_from(["check", "run", "convert"]),
       source=st.sampled_from(["exact_mixture.json"] * 3 + ["default.json"] * 2 + ["missing.json", "-dir-", "png"]),
       options=st.lists(st.sampled_from(OPTION_POOL), max_size=4),
       texts=st.lists(st.text(max_size=10), max_size=1))
def test_command_lines_exit_0_1_or_2_and_write_only_complete_files_in_their_folder(
        command, source, options, texts, folders, outcomes, capsys, monkeypatch):
    tmp_path = Path(tempfile.mkdtemp(dir=folders))
    monkeypatch.chdir(tmp_path)  # the working folder must stay empty
    out = tmp_path / "out"
    out.mkdir()
    if command == "run" and source == "default.json":  # the patch target takes seconds to build: keep runs fast
        source = "exact_mixture.json"
    if source == "-dir-":
        workflow = str(folders)
    elif source == "png":
        workflow = str(folders / "input" / "red.png")  # a picture without a workflow
    else:
        workflow = str(ROOT / "workflows" / source)
    argv = [command, workflow]
    if command == "convert":
        argv += ["-q"] + (["-o", str(out / "api.json")] if options else [])
    else:
        argv += ["--input-dir", str(folders / "input"), "--output-dir", str(out), "-q", "--max-memory", "0.05",
                 "--set", "WalkSampler.steps=2"]
        argv += [part for option in options for part in option] + [part for t in texts for part in ("--set", t)]
    try:
        code = CLI.main(argv, node_classes=TABLE)
    except SystemExit as exit_:  # argparse: unknown option or bad value
        code = exit_.code
    capsys.readouterr()
    outcomes("command lines").add(f"{command} exit {code}")
    assert code in ((0, 2) if command != "run" else (0, 1, 2))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(out in p.parents for p in written), f"written outside the output folder: {written}"
    for path in written:
        if path.suffix == ".png":
            with Image.open(path) as img:
                img.verify()  # a complete PNG, CRCs included
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            raise AssertionError(f"unexpected file {path}")


def _clamp(doc):
    """Sizes of every node made tiny, so an executed example stays fast (mutations may undo it: the limits
    then refuse the run)."""
    nodes = doc.values() if isinstance(doc, dict) else []
    for node in nodes:
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if isinstance(inputs, dict):
            for name, small in SIZE_INPUTS.items():
                if isinstance(inputs.get(name), (int, float)) and not isinstance(inputs.get(name), bool):
                    inputs[name] = small
    return doc


@fuzz_settings(scale=0.3)
@given(data=st.data())
def test_executed_mutations_finish_or_name_the_node_and_leave_only_complete_files(data, folders, outcomes):
    tmp_path = Path(tempfile.mkdtemp(dir=folders))
    doc = _clamp(copy.deepcopy(API_DOCS["exact_mixture.json"]))
    doc, _ops = mutate(data, doc)
    doc = _clamp(doc) if data.draw(st.booleans(), label="clamp again") else doc
    paths = RUNNER.RunnerPaths(tmp_path / "input", tmp_path / "output")
    (tmp_path / "input").mkdir()
    try:
        with limits.use_limits(max_memory_gb=0.05):  # only tiny walks run
            api, ui = RUNNER.load_workflow(doc, TABLE)
            RUNNER.run_workflow(api, TABLE, ui_workflow=ui, progress=False, paths=paths)
        result = "ran"
    except RUNNER.WorkflowError:
        result = "refused before running"
    except RUNNER.NodeExecutionError as error:
        assert error.node_id and error.class_type
        result = "node failed"
    outcomes("executed mutations").add(result)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert paths.output_dir in path.parents, f"written outside the output folder: {path}"
            with Image.open(path) as img:
                img.verify()


def test_the_fuzz_bases_are_the_shipped_workflows():
    assert len(UI_DOCS) >= 10 and len(API_DOCS) >= 10
    assert "exact_mixture.json" in API_DOCS
