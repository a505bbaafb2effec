"""``cli.py sweep --executor comfyui --server URL ...`` against stand-in ComfyUI servers on loopback
(tests/comfy_server_standin.py): jobs spread over the servers, a server lost mid-sweep has its job re-run on
another, no server left fails what is left, and Ctrl-C takes the sweep's prompts off the servers."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from cli_module import load_cli
from comfy_server_standin import StandInServer, api_workflow

WIDTHS = [3, 4, 5, 6, 7, 8]


@pytest.fixture
def servers():
    made = []

    def make(**kw):
        made.append(StandInServer(**kw))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """A server that does not answer is tried 3 times 0.05 s apart (1 s apart outside the tests)."""
    from rwalk.walk_core.sweep.executors import comfyui_executor as module

    create = module.create
    monkeypatch.setattr(module, "create", lambda options: module.ComfyUIExecutor(
        module.ComfySettings(create(options).settings.servers, retry_wait=0.05, poll=0.02)))


def sweep(tmp_path, urls, *extra, widths=WIDTHS) -> int:
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(api_workflow()))
    return load_cli().main(["sweep", str(wf), "--vary", f"EmptyImage.width={','.join(map(str, widths))}",
                            "--executor", "comfyui", *(a for url in urls for a in ("--server", url)),
                            "--output-dir", str(tmp_path / "out"), "-q", *extra])


def manifest(folder: Path) -> list:
    return [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines()]


def widths_ran(server) -> list:
    return [p["1"]["inputs"]["width"] for p in server.ran]


def check_pictures(folder: Path, entries: list) -> None:
    """Each done job's picture is its own: the size its width asks for, its prompt embedded."""
    for entry in entries:
        width = int(entry["overrides"][0][2])
        picture = Image.open(folder / entry["outputs"][0])
        assert picture.size == (width, 4) and entry["outputs"][0] == entry["job_id"] + ".png"
        assert json.loads(picture.text["prompt"])["1"]["inputs"]["width"] == width


def test_jobs_spread_over_the_servers(servers, tmp_path):
    a, b = servers(), servers()
    assert sweep(tmp_path, [a.url, b.url]) == 0
    entries = manifest(tmp_path / "out")
    assert [e["status"] for e in entries] == ["done"] * len(WIDTHS)
    check_pictures(tmp_path / "out", entries)
    assert widths_ran(a) and widths_ran(b)  # both worked
    assert sorted(widths_ran(a) + widths_ran(b)) == WIDTHS  # each job ran once


def test_a_server_lost_mid_job_has_its_job_run_on_another(servers, tmp_path):
    a, b = servers(seconds_per_prompt=0.1), servers(die_after=2, seconds_per_prompt=0.1)
    assert sweep(tmp_path, [a.url, b.url]) == 0
    entries = manifest(tmp_path / "out")
    assert [e["status"] for e in entries] == ["done"] * len(WIDTHS)
    check_pictures(tmp_path / "out", entries)
    assert b.accepted == 2 and len(b.ran) == 1  # b took a second job and went away before finishing it
    lost = [w for w in WIDTHS if w not in widths_ran(b)]
    assert sorted(widths_ran(a)) == lost  # a ran everything else, the lost job included


def test_no_server_left_fails_what_is_left(servers, tmp_path, capsys):
    only = servers(die_after=2)
    assert sweep(tmp_path, [only.url]) == 1
    entries = manifest(tmp_path / "out")
    assert [e["status"] for e in entries].count("done") == 1
    failed = [e for e in entries if e["status"] == "failed"]
    assert len(failed) == len(WIDTHS) - 1 and all("no ComfyUI server answers" in e["error"] for e in failed)
    assert "failed" in capsys.readouterr().err


def test_a_job_the_server_cannot_reach_at_the_start_is_one_clear_error(tmp_path, capsys):
    closed = StandInServer()
    closed.stop()  # a port nothing listens on any more
    assert sweep(tmp_path, [closed.url]) == 2
    assert "cannot reach ComfyUI" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ctrl_c_takes_the_sweeps_prompt_off_the_server(servers, tmp_path):
    slow = servers(seconds_per_prompt=(0.2, 120.0))  # the second job runs until the Ctrl-C cancels it, however slow

    def ctrl_c_once_queued():  # the first job recorded, the second one running on the server
        deadline, written = time.monotonic() + 60, tmp_path / "out" / "sweep.jsonl"
        while not (slow.accepted >= 2 and written.exists() and written.read_text().strip()) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    # a process started in the background by a non-interactive shell (as CI may be) inherits SIGINT ignored, and
    # Python then keeps it ignored: give this test the Ctrl-C a terminal would
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=ctrl_c_once_queued, daemon=True).start()
        assert sweep(tmp_path, [slow.url]) == 130
    finally:
        signal.signal(signal.SIGINT, before)
    assert f"p2-{id(slow) % 10000}" in slow.cancelled  # the running prompt was deleted and interrupted
    entries = manifest(tmp_path / "out")
    assert [e["status"] for e in entries] == ["done"]  # the one finished before the Ctrl-C
    check_pictures(tmp_path / "out", entries)
