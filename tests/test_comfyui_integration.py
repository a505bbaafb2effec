"""Inside a real ComfyUI (opt-in): the pack loads, its nodes are listed, every shipped workflow runs.

Set ``WALK_COMFYUI`` to a ComfyUI checkout (and ``WALK_COMFYUI_PYTHON`` to its interpreter when it is
not ``<checkout>/venv/bin/python``). The test makes a random-weight SD1.5-family checkpoint and a random-weight
CLIP vision model with ComfyUI's own code (tests/comfyui_checkpoint.py, tests/comfyui_clip_vision.py) in a
temporary folder, starts ComfyUI on loopback with ``--base-directory``
in that folder, whose ``custom_nodes/`` links to this pack (the checkout is not touched), queues every file of
workflows/ (those that need a model file too) through ``cli.py run --server`` at small sizes, walks the
checkpoint under every prediction type and with ComfyUI's own model patches, checks that an interrupt stops a walk within a
step, encodes, saves, loads and guides with a style of the CLIP vision model, and stops the server. Nothing it creates is kept. Without the variable the test is skipped: the
weight-free workflows run headless in test_workflows.py, the MODEL adapters on stand-ins in test_comfy_model.py.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from comfyui_log import pack_import_failures
from test_workflows import COMFY_WORKFLOWS, ROOT, WORKFLOWS, load_cli, node_table, small
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.walk_core import WALKS
from rwalk.walk_core.runner import load_workflow
from rwalk.walk_core.runner.remote import server_node_table

CHECKOUT = os.environ.get("WALK_COMFYUI")
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="set WALK_COMFYUI to a ComfyUI checkout to run")
PACK_NODES = tuple(NODE_CLASS_MAPPINGS)  # every node of the pack
CHECKPOINT = "random_sd15.safetensors"
CLIP_VISION = "random_vitl.safetensors"
PACK_FOLDER = "comfyui-random-walk"  # the pack's folder name inside the test's custom_nodes/


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _comfyui_python(checkout: Path) -> str:
    """ComfyUI's interpreter: $WALK_COMFYUI_PYTHON, else <checkout>/venv/bin/python; a clear failure when missing."""
    if not (checkout / "main.py").is_file():
        pytest.fail(f"WALK_COMFYUI={CHECKOUT!r} is not a ComfyUI checkout (it has no main.py)", pytrace=False)
    given = os.environ.get("WALK_COMFYUI_PYTHON")
    python = shutil.which(given or str(checkout / "venv" / "bin" / "python"))
    if python is None:
        where = (f"WALK_COMFYUI_PYTHON={given!r} is not an executable Python" if given else
                 f"WALK_COMFYUI_PYTHON is not set and {checkout / 'venv' / 'bin' / 'python'} (the default: "
                 "<WALK_COMFYUI>/venv/bin/python) does not exist")
        pytest.fail(f"{where}; set WALK_COMFYUI_PYTHON to the Python that runs ComfyUI", pytrace=False)
    return python


def _make_model(python: str, checkout: Path, script: str, out: Path) -> None:
    made = subprocess.run([python, str(ROOT / "tests" / script), "--comfyui", str(checkout), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT / "tests")
    assert made.returncode == 0, made.stderr[-3000:]


def _remove(base: Path) -> None:
    """Delete everything the fixture made (about 1.1 GB of random weights); the link to the pack first, so
    nothing is ever deleted through it."""
    link = base / "custom_nodes" / PACK_FOLDER
    if link.is_symlink():
        link.unlink()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory):
    checkout = Path(CHECKOUT)
    python = _comfyui_python(checkout)
    base = tmp_path_factory.mktemp("comfy_base")
    server, log = None, None
    try:
        (base / "custom_nodes").mkdir()
        _make_model(python, checkout, "comfyui_checkpoint.py", base / "models" / "checkpoints" / CHECKPOINT)
        _make_model(python, checkout, "comfyui_clip_vision.py", base / "models" / "clip_vision" / CLIP_VISION)
        (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
        port = _free_port()
        log = open(base / "comfyui.log", "w")
        server = subprocess.Popen(
            [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
             "--base-directory", str(base)], cwd=checkout, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            try:
                info = json.loads(urllib.request.urlopen(f"{url}/object_info", timeout=10).read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("ComfyUI did not come up; the end of its log:\n"
                                + (base / "comfyui.log").read_text(errors="replace")[-3000:])
                time.sleep(1)
        yield url, info, base
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=20)
        if log is not None:
            log.close()
        _remove(base)  # the README promises that nothing it creates is kept


def test_pack_loads_without_import_errors(comfyui):
    """Only the pack's own import lines count: ComfyUI's optional nodes may fail (no torchaudio, say)."""
    _, info, base = comfyui
    text = (base / "comfyui.log").read_text()
    assert pack_import_failures(text, PACK_FOLDER) == [], text[-3000:]
    for name in PACK_NODES:
        assert name in info and PACK_FOLDER in info[name]["python_module"]


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


# -- MODEL targets on a random-weight SD1.5-family checkpoint -------------------------------------------------
def small_sd(api: dict) -> list[str]:
    """--set overrides: the test checkpoint, 64 x 64 pictures, 3 steps."""
    sets = small(api)
    for node_id, node in api.items():
        kind = node["class_type"]
        if kind == "CheckpointLoaderSimple":
            sets.append(f"{node_id}.ckpt_name={CHECKPOINT}")
        if kind == "CLIPVisionLoader":
            sets.append(f"{node_id}.clip_name={CLIP_VISION}")
        if kind in ("WalkSampler", "EmptyLatentImage", "ReferenceImage", "WalkWander"):
            sets += [f"{node_id}.width=64", f"{node_id}.height=64"]
        if kind == "BasicScheduler":
            sets.append(f"{node_id}.steps=3")
    return sets


@pytest.mark.parametrize("path", COMFY_WORKFLOWS, ids=lambda p: p.stem)
def test_sd_workflow_runs_inside_comfyui(comfyui, path, tmp_path, capsys):
    url, info, _ = comfyui
    api, _ = load_workflow(path, server_node_table(url))  # every node known to the server: none missing
    assert {n["class_type"] for n in api.values()} <= set(info)
    args = ["run", str(path), "--server", url, "--output-dir", str(tmp_path)]
    for override in small_sd(api):
        args += ["--set", override]
    assert load_cli().main(args) == 0
    saved = [Path(p) for p in capsys.readouterr().out.split()]
    expected = sum(n["class_type"] == "SaveImage" for n in api.values())
    assert len(saved) >= expected and all(p.is_file() and p.stat().st_size > 0 for p in saved)


def _queue(url: str, prompt: dict) -> str:
    req = urllib.request.Request(f"{url}/prompt", data=json.dumps({"prompt": prompt}).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())["prompt_id"]


def _wait(url: str, prompt_id: str, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = json.loads(urllib.request.urlopen(f"{url}/history/{prompt_id}", timeout=30).read())
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        time.sleep(0.05)
    pytest.fail(f"prompt {prompt_id} did not finish in {timeout} s")


def _walk_prompt(patches: list, steps: int = 3, size: int = 64, seed: int = 0, walk: str = "") -> dict:
    """Checkpoint -> patches (class, inputs) in order -> MODEL target -> CFG 5 -> WalkSampler -> SaveImage."""
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
              "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["1", 1]}},
              "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}}}
    model = ["1", 0]
    for i, (kind, inputs) in enumerate(patches):
        prompt[f"p{i}"] = {"class_type": kind, "inputs": {"model": model, **inputs}}
        model = [f"p{i}", 0]
    walker = {name: spec[1].get("default", spec[0][0] if isinstance(spec[0], list) else None)
              for name, spec in NODE_CLASS_MAPPINGS["WalkSampler"].INPUT_TYPES()["required"].items()}
    walker.update({"target": ["4", 0], "guidance": ["5", 0], "steps": steps, "width": size, "height": size,
                   "seed": seed, "trajectory_every": 0})
    if walk:
        walker["walk"] = walk
    prompt.update({
        "4": {"class_type": "TargetDistributionModel", "inputs": {"model": model, "positive": ["2", 0],
                                                                  "negative": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "GuidanceStepCFG", "inputs": {"weight": 5.0, "start_percent": 0.0, "end_percent": 1.0,
                                                          "schedule": "constant"}},
        "6": {"class_type": "WalkSampler", "inputs": walker},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "walk_test"}},
    })
    return prompt


PATCHES = {
    "eps": [],
    "v_prediction": [("ModelSamplingDiscrete", {"sampling": "v_prediction", "zsnr": False})],
    "edm": [("ModelSamplingContinuousEDM", {"sampling": "edm", "sigma_max": 80.0, "sigma_min": 0.002})],
    "flow": [("ModelSamplingSD3", {"shift": 3.0})],
    "rescale_cfg_and_pag": [("RescaleCFG", {"multiplier": 0.7}), ("PerturbedAttentionGuidance", {"scale": 2.0})],
}


@pytest.mark.parametrize("name", PATCHES)
def test_walk_runs_under_every_prediction_type_and_model_patch(comfyui, name):
    url, _, _ = comfyui
    result = _wait(url, _queue(url, _walk_prompt(PATCHES[name])))
    assert result["status"]["status_str"] == "success", result["status"]
    assert result["outputs"]["7"]["images"]


@pytest.mark.parametrize("walk", WALKS.names())
def test_every_walk_runs_on_a_model_inside_comfyui(comfyui, walk):
    """Each registered walk (multistep and stochastic ones included) through WalkSampler on a real UNet with CFG."""
    url, _, _ = comfyui
    result = _wait(url, _queue(url, _walk_prompt([], walk=walk)))
    assert result["status"]["status_str"] == "success", result["status"]
    assert result["outputs"]["7"]["images"]


def test_interrupt_stops_a_walk_within_one_step(comfyui):
    url, _, _ = comfyui
    short = _wait(url, _queue(url, _walk_prompt([], steps=4, size=256, seed=1)))
    assert short["status"]["status_str"] == "success"
    started, ended = (m[1]["timestamp"] / 1000 for m in short["status"]["messages"]
                      if m[0] in ("execution_start", "execution_success"))
    per_step = (ended - started) / 4  # an upper bound: loading and decoding are counted too
    prompt_id = _queue(url, _walk_prompt([], steps=400, size=256, seed=2))
    time.sleep(max(3.0, 5 * per_step))  # well into the walk
    sent = time.monotonic()
    urllib.request.urlopen(urllib.request.Request(f"{url}/interrupt", data=b"{}", method="POST"), timeout=30)
    result = _wait(url, prompt_id)
    stopped = time.monotonic() - sent
    kinds = [m[0] for m in result["status"]["messages"]]
    assert "execution_interrupted" in kinds, kinds
    assert stopped <= per_step + 1.0, (stopped, per_step)


def test_tiled_grid_on_a_model_inside_comfyui(comfyui):
    """Circular padding of a real UNet and VAE for a tiled grid (and the walk after it is an ordinary one)."""
    url, _, _ = comfyui
    prompt = _walk_prompt([])
    grid = {name: spec[1].get("default", spec[0][0] if isinstance(spec[0], list) else None)
            for name, spec in NODE_CLASS_MAPPINGS["WalkGrid"].INPUT_TYPES()["required"].items()}
    grid.update({"target": ["4", 0], "guidance": ["5", 0], "tile": True, "size": 64, "items": 2, "steps": 3})
    prompt["8"] = {"class_type": "WalkGrid", "inputs": grid}
    prompt["9"] = {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "tiled_grid"}}
    result = _wait(url, _queue(url, prompt))
    assert result["status"]["status_str"] == "success", result["status"]
    assert result["outputs"]["9"]["images"] and result["outputs"]["7"]["images"]


# -- StyleEncoder on a real CLIP_VISION ------------------------------------------------------------------------
def _node(node_id: str, **chosen) -> dict:
    """A pack node's prompt entry: its required widget inputs at their defaults, with ``chosen`` ones set."""
    declared = NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"]
    inputs = {name: spec[1].get("default", spec[0][0] if isinstance(spec[0], list) else None)
              for name, spec in declared.items()}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    return {"class_type": node_id, "inputs": {**inputs, **chosen}}


def test_clip_vision_style_encodes_saves_loads_and_guides_inside_comfyui(comfyui):
    """A CLIP_VISION from ComfyUI's own Load CLIP Vision (random ViT-L/14 weights) through StyleEncoder, Style
    Encoder: Save, Style Encoder: Load (which needs the same model) and a style-guided patch walk."""
    url, _, base = comfyui
    encode = {"1": _node("ReferenceImage", reference="stained_glass", width=64, height=48),
              "2": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": CLIP_VISION}},
              "3": _node("StyleEncoder", images=["1", 0], clip_vision=["2", 0], statistics="mean_std"),
              "4": _node("StyleEncoderSave", style=["3", 0], name="clip_style")}
    result = _wait(url, _queue(url, encode), timeout=600)
    assert result["status"]["status_str"] == "success", result["status"]
    assert (base / "models" / "walk_styles" / "clip_style.safetensors").is_file()
    walk = {"1": _node("ReferenceImage", reference="marble", width=32, height=32),
            "2": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": CLIP_VISION}},
            "3": _node("StyleEncoderLoad", style_name="clip_style.safetensors", clip_vision=["2", 0]),
            "4": _node("TargetDistributionPatches", images=["1", 0]),
            "5": _node("GuidanceStepEnergy", energy="style", style=["3", 0]),
            "6": _node("WalkSampler", target=["4", 0], guidance=["5", 0], walk="euler_ancestral", steps=2, width=32,
                       height=32, trajectory_every=0),
            "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "clip_style"}}}
    result = _wait(url, _queue(url, walk), timeout=600)
    assert result["status"]["status_str"] == "success", result["status"]
    assert result["outputs"]["7"]["images"]
    del walk["3"]["inputs"]["clip_vision"]  # the code cannot be used without its model: a clear error
    walk["6"]["inputs"]["seed"] = 1
    result = _wait(url, _queue(url, walk), timeout=600)
    assert result["status"]["status_str"] == "error"
    error = next(m[1] for m in result["status"]["messages"] if m[0] == "execution_error")
    assert "made with a CLIP vision model" in error["exception_message"], error["exception_message"]
