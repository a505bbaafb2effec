"""``cli.py sweep`` end to end with small fake nodes (tests/sweep_fakes.py), in this process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import sweep_fakes
from cli_module import load_cli


@pytest.fixture(scope="module")
def cli():
    return load_cli()


@pytest.fixture(scope="module")
def table(cli):
    return {**sweep_fakes.FAKE_NODES, **cli.load_runner().IO_NODE_CLASSES}


@pytest.fixture(autouse=True)
def fresh_fakes():
    sweep_fakes.RUNS.clear()
    sweep_fakes.STOP["interrupt"] = True
    yield


def workflow(tmp_path, **kw) -> str:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(sweep_fakes.ui_workflow(**kw)))
    return str(path)


def sweep(cli, table, tmp_path, *args, out="out"):
    argv = ["sweep", workflow(tmp_path), "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / out), "-q",
            *args]
    return cli.main(argv, node_classes=table)


def manifest(folder: Path) -> list:
    return [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines()]


def test_every_combination_runs_once_with_its_values_embedded(cli, table, tmp_path, capsys):
    code = sweep(cli, table, tmp_path, "--vary", "Paint.width=2:6:2", "--vary", "1.gain=0.5,1", "--seeds", "3,7")
    assert code == 0
    out = tmp_path / "out"
    entries = manifest(out)
    assert len(entries) == 3 * 2 * 2 and all(e["status"] == "done" for e in entries)
    assert sorted(sweep_fakes.RUNS) == sorted((w, s, "plain") for w in (2, 4, 6) for _ in (0.5, 1) for s in (3, 7))
    runner = cli.load_runner()
    ids = set()
    for entry in entries:
        (name,) = entry["outputs"]
        ids.add(entry["job_id"])
        assert name == entry["job_id"] + ".png" and (out / name).is_file()
        prompt, ui = runner.read_png_workflow(out / name)
        width, gain = (value for _, _, value in entry["overrides"])
        assert prompt["1"]["inputs"]["width"] == int(width) and prompt["1"]["inputs"]["gain"] == float(gain)
        assert prompt["1"]["inputs"]["seed"] == entry["seed"]
        paint = next(n for n in ui["nodes"] if n["id"] == 1)
        assert paint["widgets_values"][0] == int(width) and paint["widgets_values"][1] == entry["seed"]
        with Image.open(out / name) as picture:
            assert picture.size == (int(width), 4)
    assert len(ids) == 12
    printed = capsys.readouterr().out.split()
    assert printed[0] == str(out / "sweep.jsonl")
    assert [Path(p).name for p in printed[1:]] == ["xy_plot_z01_3.png", "xy_plot_z02_7.png"]
    for sheet in printed[1:]:
        with Image.open(sheet) as picture:
            assert picture.width > picture.height > 0  # three columns of two rows, labelled


def test_a_sweep_picture_runs_again_as_the_graph_that_made_it(cli, table, tmp_path, capsys):
    assert sweep(cli, table, tmp_path, "--vary", "Paint.gain=0.25,2", "--seeds", "11") == 0
    capsys.readouterr()
    for picture in sorted((tmp_path / "out").glob("Paint*.png")):
        assert cli.main(["run", str(picture), "--output-dir", str(tmp_path / "again"), "-q"], node_classes=table) == 0
        (again,) = capsys.readouterr().out.split()
        with Image.open(picture) as first, Image.open(again) as second:
            assert first.tobytes() == second.tobytes() and first.size == second.size


def test_the_same_sweep_names_and_draws_its_pictures_the_same(cli, table, tmp_path):
    for out in ("a", "b"):
        assert sweep(cli, table, tmp_path, "--vary", "Paint.width=3,5", "--seeds", "0-1", out=out) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        if name != "sweep.jsonl":
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_zip_pairs_the_values(cli, table, tmp_path):
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3,4", "--vary", "Paint.gain=0.5,1,1.5", "--zip") == 0
    assert sorted(sweep_fakes.RUNS) == [(2, 5, "plain"), (3, 5, "plain"), (4, 5, "plain")]
    assert len(manifest(tmp_path / "out")) == 3


def test_zip_needs_as_many_values_on_every_axis(cli, table, tmp_path, capsys):
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3", "--vary", "Paint.gain=1", "--zip") == 2
    assert "Paint.width has 2, Paint.gain has 1" in capsys.readouterr().err


def test_one_bad_value_stops_the_sweep_before_anything_runs(cli, table, tmp_path, capsys):
    code = sweep(cli, table, tmp_path, "--vary", "Paint.width=8,99", "--seeds", "1,2")
    err = capsys.readouterr().err
    assert code == 2
    assert "sweep job 3 of 4 (Paint.width-99__seed-1)" in err
    assert "node 1 (Paint), input 'width'" in err and "99" in err and "maximum 64" in err
    assert sweep_fakes.RUNS == [] and not (tmp_path / "out").exists()


def test_a_failing_job_is_recorded_and_the_others_go_on(cli, table, tmp_path, capsys):
    code = sweep(cli, table, tmp_path, "--vary", "Paint.mode=plain,fail", "--vary", "Paint.width=2,3")
    err = capsys.readouterr().err
    assert code == 1
    entries = {e["job_id"]: e for e in manifest(tmp_path / "out")}
    failed = [e for e in entries.values() if e["status"] == "failed"]
    assert len(entries) == 4 and len(failed) == 2
    for entry in failed:
        assert "paint refuses width" in entry["error"] and entry["outputs"] == []
        assert f"({entry['job_id']}): node 1 (Paint): RuntimeError: paint refuses width" in err
    assert "2 of 4 jobs failed" in err
    assert (tmp_path / "out" / "xy_plot.png").is_file()


def test_resume_runs_only_the_failed_and_missing_jobs(cli, table, tmp_path):
    args = ("--vary", "Paint.width=2,3,4", "--seeds", "0-1")
    assert sweep(cli, table, tmp_path, *args) == 0
    out = tmp_path / "out"
    entries = manifest(out)
    entries[1]["status"], entries[1]["error"] = "failed", "worker lost"
    (out / entries[4]["outputs"][0]).unlink()  # recorded done, but its picture is gone
    kept = [e for i, e in enumerate(entries) if i != 2]  # job 3 missing from the manifest
    (out / "sweep.jsonl").write_text("".join(json.dumps(e) + "\n" for e in kept))
    sweep_fakes.RUNS.clear()
    assert sweep(cli, table, tmp_path, *args, "--resume") == 0
    expected = [(e["overrides"][0][2], e["seed"]) for e in (entries[1], entries[2], entries[4])]
    assert sorted((str(w), s) for w, s, _ in sweep_fakes.RUNS) == sorted(expected)
    assert [e["status"] for e in manifest(out)] == ["done"] * 6
    assert sorted(p.name for p in out.glob("*.png") if not p.name.startswith("xy_")) == sorted(
        e["job_id"] + ".png" for e in entries)


def test_a_manifest_line_cut_short_by_a_crash_is_dropped_and_its_job_runs_again(cli, table, tmp_path):
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3") == 0
    out = tmp_path / "out"
    first, second = (out / "sweep.jsonl").read_text().splitlines(keepends=True)
    (out / "sweep.jsonl").write_text(first + second[:40])  # the machine stopped while the last line was written
    sweep_fakes.RUNS.clear()
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3", "--resume") == 0
    assert sweep_fakes.RUNS == [(3, 5, "plain")]
    assert [e["status"] for e in manifest(out)] == ["done", "done"]


def test_an_earlier_sweep_folder_needs_resume(cli, table, tmp_path, capsys):
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3") == 0
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3") == 2
    assert "--resume" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before


def test_resume_of_a_changed_workflow_runs_the_jobs_again(cli, table, tmp_path):
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3") == 0
    sweep_fakes.RUNS.clear()
    assert sweep(cli, table, tmp_path, "--vary", "Paint.width=2,3", "--set", "Paint.gain=0.5", "--resume") == 0
    assert len(sweep_fakes.RUNS) == 2  # same job ids, another graph: not counted as done


def test_ctrl_c_leaves_a_consistent_manifest_and_resume_finishes(cli, table, tmp_path, capsys):
    args = ("--vary", "Paint.mode=plain,interrupt", "--vary", "Paint.width=2,3")
    assert sweep(cli, table, tmp_path, *args) == 130
    assert "interrupted" in capsys.readouterr().err
    out = tmp_path / "out"
    entries = manifest(out)
    assert [e["overrides"][0][2] for e in entries] == ["plain", "plain"]  # the jobs before the Ctrl-C
    assert sorted(p.name for p in out.iterdir()) == sorted([e["outputs"][0] for e in entries] + ["sweep.jsonl"])
    sweep_fakes.STOP["interrupt"] = False
    sweep_fakes.RUNS.clear()
    assert sweep(cli, table, tmp_path, *args, "--resume") == 0
    assert sorted(sweep_fakes.RUNS) == [(2, 5, "interrupt"), (3, 5, "interrupt")]
    assert len(manifest(out)) == 4 and not list(out.glob(".rwalk-*"))


def test_an_output_node_that_writes_its_own_files_is_refused(cli, table, tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(sweep_fakes.ui_workflow(extra_output=True)))
    code = cli.main(["sweep", str(path), "--vary", "Paint.width=2,3", "--output-dir", str(tmp_path / "out"), "-q"],
                    node_classes=table)
    assert code == 2
    assert "node 3 (WriteNote): WriteNote writes files of its own" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, said", [
    ((), "nothing to sweep"),
    (("--vary", "Paint.width=2,2"), "more than once"),
    (("--vary", "Paint.width=1:9:0"), "the step is 0"),
    (("--vary", "Paint.width"), "expected NODE.INPUT=v1,v2"),
    (("--vary", "Paint.width=2,3", "--vary", "1.width=4"), "change the same input"),
    (("--vary", "Paint.width=2,3", "--set", "1.width=4"), "--vary Paint.width sets"),
    (("--seeds", "1,2", "--set", "Paint.seed=4"), "--seeds sets"),
    (("--seeds", "5-1"), "is not a seed"),
    (("--seeds", "1,2", "--seed", "3"), "give one of them"),
    (("--vary", "Nope.width=2"), "no node 'Nope'"),
    (("--vary", "Paint.width=2,3", "--workers", "0"), "--workers 0"),
    (("--vary", "Paint.width=2,3", "--server", "http://127.0.0.1:1"), "--server is for --executor comfyui"),
])
def test_sweep_mistakes_are_one_clear_error(cli, table, tmp_path, capsys, args, said):
    assert sweep(cli, table, tmp_path, *args) == 2
    assert said in capsys.readouterr().err
    assert sweep_fakes.RUNS == [] and not (tmp_path / "out").exists()
