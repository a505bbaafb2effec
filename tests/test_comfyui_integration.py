"""Inside a real ComfyUI (opt-in): the pack loads, its nodes are listed, every shipped workflow runs.

Set ``WALK_COMFYUI`` to a ComfyUI checkout (and ``WALK_COMFYUI_PYTHON`` to its interpreter when it is
not ``<checkout>/venv/bin/python``). The test starts ComfyUI on loopback with ``--base-directory`` in a
temporary folder whose ``custom_nodes/`` links to this pack (the checkout is not touched), queues every
file of workflows/ through ``cli.py run --server`` at small sizes, and stops the server. Without the
variable the test is skipped: the same workflows run headless in test_workflows.py.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from test_workflows import ROOT, WORKFLOWS, load_cli, node_table, small
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.walk_core.runner import load_workflow

CHECKOUT = os.environ.get("WALK_COMFYUI")
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="set WALK_COMFYUI to a ComfyUI checkout to run")
PACK_NODES = tuple(NODE_CLASS_MAPPINGS)  # every node of the pack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory):
    checkout = Path(CHECKOUT)
    python = os.environ.get("WALK_COMFYUI_PYTHON") or str(checkout / "venv" / "bin" / "python")
    base = tmp_path_factory.mktemp("comfy_base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "comfyui-random-walk").symlink_to(ROOT, target_is_directory=True)
    port = _free_port()
    log = open(base / "comfyui.log", "w")
    server = subprocess.Popen(
        [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
         "--base-directory", str(base)], cwd=checkout, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                info = json.loads(urllib.request.urlopen(f"{url}/object_info", timeout=10).read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ComfyUI did not come up; see {base / 'comfyui.log'}")
                time.sleep(1)
        yield url, info, base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_pack_loads_without_import_errors(comfyui):
    _, info, base = comfyui
    text = (base / "comfyui.log").read_text()
    assert "IMPORT FAILED" not in text and "Cannot import" not in text, text[-3000:]
    for name in PACK_NODES:
        assert name in info and "comfyui-random-walk" in info[name]["python_module"]


def test_inputs_seen_by_comfyui_are_the_declared_ones(comfyui):
    _, info, _ = comfyui
    table = node_table()
    for name in PACK_NODES:
        declared = table[name].INPUT_TYPES()
        for section in ("required", "optional"):
            assert list(info[name]["input"].get(section, {})) == list(declared.get(section, {}))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_runs_inside_comfyui(comfyui, path, tmp_path, capsys):
    url, _, _ = comfyui
    api, _ = load_workflow(path, node_table())
    args = ["run", str(path), "--server", url, "--output-dir", str(tmp_path)]
    for override in small(api):
        args += ["--set", override]
    assert load_cli().main(args) == 0
    saved = [Path(p) for p in capsys.readouterr().out.split()]
    assert saved and all(p.is_file() and p.stat().st_size > 0 for p in saved)
