"""The command line (cli.py), called in-process with a fake node table."""
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fakes = _load("_runner_fakes", Path(__file__).with_name("_runner_fakes.py"))


@pytest.fixture(scope="module")
def cli():
    """cli.py as a module (it finds or registers the pack as ``rwalk``)."""
    return _load("rwalk_cli", ROOT / "cli.py")


@pytest.fixture(scope="module")
def table(cli):
    return {**fakes.FAKE_NODES, **cli.load_runner().IO_NODE_CLASSES}


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "in").mkdir()
    return ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]


def write(tmp_path, data, name="wf.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def save_ui():
    ui = fakes.UiBuilder()
    ui.add(1, "MakeImage", [8, 4, 1, "randomize", "green"], outputs=["IMAGE"])
    ui.add(2, "SaveImage", ["cli"], inputs=[("images", "IMAGE")])
    ui.link(1, 0, 2, "images")
    return ui.build()


def test_runner_is_loaded_under_the_fixed_package_name(cli):
    assert cli.load_runner().__name__ == "rwalk.walk_core.runner"


def test_help_lists_the_commands(cli, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("run", "check", "convert", "--set", "examples"):
        assert word in out


def test_help_as_a_script():
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "--seed" in done.stdout and "--output-dir" in done.stdout


def test_check_prints_ok(cli, table, tmp_path, folders, capsys):
    assert cli.main(["check", write(tmp_path, fakes.simple_ui())] + folders, node_classes=table) == 0
    assert capsys.readouterr().out == "ok: 4 nodes\n"


def test_run_prints_saved_paths_and_applies_set_and_seed(cli, table, tmp_path, folders, capsys):
    src = write(tmp_path, save_ui())
    code = cli.main(["run", src, "--set", "1.width=6", "--seed", "3", "-q"] + folders, node_classes=table)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines == [str(tmp_path / "out" / "cli_00001_.png")]
    prompt, workflow = cli.load_runner().read_png_workflow(lines[0])
    assert prompt["1"]["inputs"]["width"] == 6 and prompt["1"]["inputs"]["seed"] == 3
    assert workflow["nodes"][0]["widgets_values"][:3] == [6, 4, 3]
    # the PNG is a workflow source itself
    assert cli.main(["run", lines[0], "-q"] + folders, node_classes=table) == 0
    assert capsys.readouterr().out.strip().endswith("cli_00002_.png")


@pytest.mark.parametrize("seed, side", [("-5", "below the minimum 0"), (str(2**70), "above the maximum")])
def test_a_seed_out_of_range_is_one_error_about_the_seed(cli, table, tmp_path, folders, capsys, seed, side):
    src = write(tmp_path, save_ui())
    assert cli.main(["run", src, "--seed", seed, "-q"] + folders, node_classes=table) == 2
    err = capsys.readouterr().err
    assert f"seed {seed} is {side}" in err and "of node 1" in err and "more problem" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_convert_writes_api_json(cli, table, tmp_path, capsys):
    src = write(tmp_path, fakes.simple_ui())
    assert cli.main(["convert", src], node_classes=table) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: v["inputs"] for k, v in printed.items()} == {k: v["inputs"] for k, v in fakes.simple_api().items()}
    out = tmp_path / "api.json"
    assert cli.main(["convert", src, "-o", str(out)], node_classes=table) == 0
    assert json.loads(out.read_text()) == printed


@pytest.mark.parametrize("workflow, needle", [
    ({"1": {"class_type": "MakeImage", "inputs": {"width": 0, "height": 4, "seed": 0, "color": "red"}},
      "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}},
     "error: node 1 (MakeImage), input 'width': 0 is below the minimum 1"),
    ('{"1": {', "invalid JSON at line 1, column 8"),
    ({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {}}}, "CheckpointLoaderSimple (node 1)"),
])
def test_workflow_errors_exit_2_with_one_message(cli, table, tmp_path, folders, capsys, workflow, needle):
    for command in ("run", "check"):
        assert cli.main([command, write(tmp_path, workflow)] + folders, node_classes=table) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_file_and_bad_set_exit_2(cli, table, tmp_path, folders, capsys):
    assert cli.main(["run", str(tmp_path / "nope.json")] + folders, node_classes=table) == 2
    assert "workflow file not found" in capsys.readouterr().err
    src = write(tmp_path, save_ui())
    assert cli.main(["run", src, "--set", "1.width=wide"] + folders, node_classes=table) == 2
    assert "cannot use 'wide'" in capsys.readouterr().err


def test_set_picks_a_load_image_file_from_the_input_dir(cli, table, tmp_path, folders, capsys):
    """--set on LoadImage's image names a file of --input-dir (or a subfolder of it), not of ./input."""
    from PIL import Image

    (tmp_path / "in" / "sub").mkdir()
    Image.new("RGB", (5, 3), (200, 10, 10)).save(tmp_path / "in" / "red.png")
    Image.new("RGB", (4, 6), (10, 10, 200)).save(tmp_path / "in" / "sub" / "blue.png")
    api = {"1": {"class_type": "LoadImage", "inputs": {"image": "absent.png"}},
           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    src = write(tmp_path, api)
    for name, size in (("red.png", (5, 3)), ("sub/blue.png", (4, 6))):
        assert cli.main(["check", src, "--set", f"1.image={name}"] + folders, node_classes=table) == 0
        assert cli.main(["run", src, "--set", f"1.image={name}", "-q"] + folders, node_classes=table) == 0
        saved = capsys.readouterr().out.splitlines()[-1]
        with Image.open(saved) as picture:
            assert picture.size == size
    assert cli.main(["run", src, "--set", "1.image=other.png"] + folders, node_classes=table) == 2
    err = capsys.readouterr().err
    assert "'other.png' is not a file in" in err and "red.png" in err and "Traceback" not in err


def test_node_failure_exits_1(cli, table, tmp_path, folders, capsys):
    api = {"1": {"class_type": "MakeImage", "inputs": {"width": 4, "height": 4, "seed": 0, "color": "red"}},
           "2": {"class_type": "Boom", "inputs": {"image": ["1", 0]}},
           "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}
    src = write(tmp_path, api)
    assert cli.main(["run", src] + folders, node_classes=table) == 1
    err = capsys.readouterr().err
    assert "node 2 (Boom): RuntimeError: kaboom" in err and "Traceback" not in err
    assert cli.main(["run", src, "-v"] + folders, node_classes=table) == 1
    assert "Traceback" in capsys.readouterr().err


def test_nodes_lists_the_table(cli, table, capsys):
    assert cli.main(["nodes"], node_classes=table) == 0
    out = capsys.readouterr().out
    assert "MakeImage(width: INT, height: INT, seed: INT, color: COMBO) -> (IMAGE)" in out
    assert "SaveImage(" in out


def test_convert_refuses_a_fifo_or_a_symlink_as_output(cli, table, tmp_path, capsys):
    src = write(tmp_path, fakes.simple_ui())
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert cli.main(["convert", src, "-o", str(fifo)], node_classes=table) == 2
    assert "is a FIFO (named pipe); expected a regular file or a new name" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target = tmp_path / "target.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert cli.main(["convert", src, "-o", str(link)], node_classes=table) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and target.read_text() == "{}"
