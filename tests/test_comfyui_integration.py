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
import logging
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


# -- XY Plot Walk on a MODEL ------------------------------------------------------------------------------------
def _xy_prompt(x_values: str = "euler, er_sde", y_values: str = "2, 3", size: int = 64) -> dict:
    """The checkpoint's MODEL target with CFG (as _walk_prompt) -> XY Plot Walk of walk x steps -> SaveImage."""
    prompt = _walk_prompt([])
    for node_id in ("6", "7"):
        del prompt[node_id]
    prompt.update({
        "10": _node("XYPlotAxis", input="walk", values=x_values),
        "11": _node("XYPlotAxis", input="steps", values=y_values),
        "12": _node("XYPlotWalk", target=["4", 0], guidance=["5", 0], x_axis=["10", 0], y_axis=["11", 0],
                    width=size, height=size),
        "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "xy_plot"}},
    })
    return prompt


def test_xy_plot_walks_a_model_inside_comfyui(comfyui):
    """Every cell through ComfyUI's sampling (the walks' previews on the plot's one bar) into one grid picture."""
    url, _, base = comfyui
    result = _wait(url, _queue(url, _xy_prompt()), timeout=600)
    assert result["status"]["status_str"] == "success", result["status"]
    (image,) = result["outputs"]["13"]["images"]
    from PIL import Image  # noqa: PLC0415

    with Image.open(base / "output" / image["subfolder"] / image["filename"]) as grid:
        assert grid.width > 2 * 128 and grid.height > 2 * 128  # two cells of 64 px grown to 128, and the labels


def test_xy_plot_refuses_a_bad_axis_value_before_running(comfyui):
    import urllib.error  # noqa: PLC0415

    url, _, _ = comfyui
    with pytest.raises(urllib.error.HTTPError) as refused:
        _queue(url, _xy_prompt(y_values="2, lots"))
    errors = json.loads(refused.value.read())["node_errors"]
    assert list(errors) == ["11"], errors  # the steps axis, named, and nothing queued
    text = json.dumps(errors["11"])
    assert "steps: 'lots' is not an integer" in text, text


def test_xy_plot_stops_on_interrupt(comfyui):
    """Cancel stops the plot inside a cell's walk, not after the grid."""
    url, _, _ = comfyui
    prompt_id = _queue(url, _xy_prompt(x_values="euler, euler_ancestral", y_values="200, 200", size=256))
    time.sleep(5.0)
    sent = time.monotonic()
    urllib.request.urlopen(urllib.request.Request(f"{url}/interrupt", data=b"{}", method="POST"), timeout=30)
    result = _wait(url, prompt_id)
    stopped = [m[1] for m in result["status"]["messages"] if m[0] == "execution_interrupted"]
    assert stopped and stopped[0]["node_id"] == "12", result["status"]["messages"]  # inside XY Plot Walk
    assert time.monotonic() - sent < 30, "the plot ran on after Cancel"


# -- guidance terms that perturb the model (PAG, SEG, SAG, SLG, SWG) against ComfyUI's own nodes -----------------
CFG_SCALE = 5.0


def _sample_graph(prompt: dict, tag: str, guider: list, seed: int) -> None:
    """SamplerCustomAdvanced(noise seed, ``guider``, euler, karras sigmas of the plain model, 64 px) -> SaveLatent."""
    prompt.update({
        f"{tag}_noise": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        f"{tag}_run": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": [f"{tag}_noise", 0], "guider": guider, "sampler": ["s_euler", 0], "sigmas": ["s_sigmas", 0],
            "latent_image": ["s_latent", 0]}},
        f"{tag}_save": {"class_type": "SaveLatent", "inputs": {"samples": [f"{tag}_run", 0], "filename_prefix": tag}},
    })


def _guidance_prompt(reference: list, terms: dict, seed: int = 3, steps: int = 4) -> dict:
    """One prompt, several walks from the same noise, sigmas and euler sampler: ``reference`` = ComfyUI's patch
    nodes [(class, inputs)] + CFGGuider (cfg 5); each of ``terms`` (tag -> [(GuidanceStep node, inputs)]) the pack's
    chain CFG 5 + those steps through WalkGuider; ``plain`` the chain CFG 5 alone."""
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
              "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["1", 1]}},
              "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
              "s_latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "s_euler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
              "s_sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras",
                                                                     "steps": steps, "denoise": 1.0}},
              "t": _node("TargetDistributionModel", model=["1", 0], positive=["2", 0], negative=["3", 0]),
              "cfg": _node("GuidanceStepCFG", weight=CFG_SCALE)}
    if reference:
        model = ["1", 0]
        for i, (kind, inputs) in enumerate(reference):
            prompt[f"r{i}"] = {"class_type": kind, "inputs": {"model": model, **inputs}}
            model = [f"r{i}", 0]
        prompt["r_guider"] = {"class_type": "CFGGuider", "inputs": {"model": model, "positive": ["2", 0],
                                                                    "negative": ["3", 0], "cfg": CFG_SCALE}}
        _sample_graph(prompt, "ref", ["r_guider", 0], seed)
    for tag, steps_ in {"plain": [], **terms}.items():
        previous = ["cfg", 0]
        for i, (node_id, inputs) in enumerate(steps_):
            prompt[f"{tag}{i}"] = _node(node_id, guidance=previous, **inputs)
            previous = [f"{tag}{i}", 0]
        prompt[f"{tag}_guider"] = _node("WalkGuider", target=["t", 0], guidance=previous)
        _sample_graph(prompt, tag, [f"{tag}_guider", 0], seed)
    return prompt


def _latents(url: str, base: Path, prompt: dict) -> dict:
    """Run ``prompt``; {tag: the latent its SaveLatent wrote}."""
    from safetensors.torch import load_file  # noqa: PLC0415

    result = _wait(url, _queue(url, prompt), timeout=600)
    assert result["status"]["status_str"] == "success", result["status"]
    out = {}
    for node_id, output in result["outputs"].items():
        if node_id.endswith("_save"):
            saved = output["latents"][0]
            out[node_id[:-5]] = load_file(str(base / "output" / saved["subfolder"] / saved["filename"]))["latent_tensor"]
    return out


def _gap(a, b) -> float:
    """Largest difference relative to the larger latent's largest value."""
    return float((a - b).abs().max()) / max(float(a.abs().max()), float(b.abs().max()), 1e-12)


# float32 walks of 4 euler steps through the same UNet differ only in the order of a few sums: measured 0 (PAG),
# 2e-6 (SAG, whose map ComfyUI takes from its own attention kernel) and 1.4e-6 (SEG without blur, the pack's kernel)
EQUAL = 2e-5
ACTS = 10 * EQUAL  # a term's own effect on this random-weight UNet, measured: SEG 5e-4, SLG 1e-2, PAG 1.5e-2, SWG 0.4
COMFY_TWINS = {  # ComfyUI's node and inputs, the pack's GuidanceStep and inputs computing the same
    "pag": ([("PerturbedAttentionGuidance", {"scale": 2.0})], ("GuidanceStepPAG", {"weight": 2.0})),
    "sag": ([("SelfAttentionGuidance", {"scale": 0.8, "blur_sigma": 2.0})],
            ("GuidanceStepSAG", {"weight": 0.8, "blur_sigma": 2.0})),
    "cfg_norm": ([("CFGNorm", {"strength": 0.9})], ("GuidanceStepCFGNorm", {"weight": 0.9})),
}


@pytest.mark.parametrize("kind", COMFY_TWINS)
def test_model_guidance_term_equals_comfyuis_own_node(comfyui, kind):
    """The same walk (seed, karras sigmas, euler, cfg 5) with ComfyUI's own patch node and with the pack's chain
    term: the same latent within float tolerance, and far from the walk without the term."""
    url, _, base = comfyui
    patch, (node_id, inputs) = COMFY_TWINS[kind]
    got = _latents(url, base, _guidance_prompt(patch, {kind: [(node_id, inputs)]}))
    logging.getLogger(__name__).info("%s: gap to ComfyUI's node %.3g, without the term %.3g", kind,
                                     _gap(got[kind], got["ref"]), _gap(got["plain"], got["ref"]))
    assert _gap(got[kind], got["ref"]) <= EQUAL, (_gap(got[kind], got["ref"]), _gap(got["plain"], got["ref"]))
    assert _gap(got["plain"], got["ref"]) >= ACTS  # the term does act on this model: not a vacuous match


def test_model_guidance_terms_without_a_comfyui_twin(comfyui):
    """SEG, SLG (on the UNet's middle block) and SWG act; their neutral settings (no blur, the whole picture) give
    the walk without them."""
    url, _, base = comfyui
    terms = {"seg": [("GuidanceStepSEG", {"weight": 3.0, "blur_sigma": 10.0})],
             "seg0": [("GuidanceStepSEG", {"weight": 3.0, "blur_sigma": 0.0})],
             "slg": [("GuidanceStepSLG", {"weight": 3.0, "layers": "middle:0"})],
             "swg": [("GuidanceStepSWG", {"weight": 1.0, "window": 0.5})],
             "swg1": [("GuidanceStepSWG", {"weight": 1.0, "window": 1.0})]}
    got = _latents(url, base, _guidance_prompt([], terms))
    for kind in ("seg", "slg", "swg"):
        assert _gap(got[kind], got["plain"]) >= ACTS, kind
    for kind in ("seg0", "swg1"):
        assert _gap(got[kind], got["plain"]) <= EQUAL, kind


def test_model_guidance_attention_terms_act_and_their_neutral_settings_do_not(comfyui):
    """TPG (on the small test UNet's two down levels, input:1 and input:3), NAG and PLADIS act. Weight 0 is the walk without them; PLADIS at a weight of
    1e-6 and NAG at an alpha of 1e-6 run their replacement cross-attention (the dense map; the positive attention
    split from the appended negative context) and still give that walk, so the replacement is ComfyUI's attention."""
    url, _, base = comfyui
    terms = {"tpg": [("GuidanceStepTPG", {"weight": 3.0, "layers": "input:1, input:3"})],
             "tpg0": [("GuidanceStepTPG", {"weight": 0.0})],
             "nag": [("GuidanceStepNAG", {"weight": 4.0, "alpha": 0.5})],
             "nag_tiny": [("GuidanceStepNAG", {"weight": 4.0, "alpha": 1e-6})],
             "pladis": [("GuidanceStepPLADIS", {"weight": 2.0})],
             "pladis_tiny": [("GuidanceStepPLADIS", {"weight": 1e-6, "sparse": "sparsemax"})]}
    prompt = _guidance_prompt([], terms)
    status = _wait(url, _queue(url, prompt), timeout=600)["status"]
    errors = [m[1] for m in status["messages"] if m[0] == "execution_error"]
    assert not errors, (errors[0]["node_id"], errors[0]["exception_message"], errors[0].get("traceback", [])[-3:])
    got = _latents(url, base, prompt)
    gaps = {kind: _gap(got[kind], got["plain"]) for kind in terms}
    logging.getLogger(__name__).info("attention terms, gap to the walk without them: %s", gaps)
    for kind in ("tpg", "nag", "pladis"):
        assert gaps[kind] >= ACTS, gaps
    for kind in ("tpg0", "nag_tiny", "pladis_tiny"):
        assert gaps[kind] <= EQUAL, gaps


def test_model_guidance_on_a_layer_the_unet_lacks_is_a_clear_error(comfyui):
    """SLG's default layers are a DiT's (SD3.5): on SD1.5's UNet the walk stops with an error naming them."""
    url, _, _ = comfyui
    prompt = _guidance_prompt([], {"slg": [("GuidanceStepSLG", {"weight": 3.0})]})
    result = _wait(url, _queue(url, prompt), timeout=600)
    assert result["status"]["status_str"] == "error"
    error = next(m[1] for m in result["status"]["messages"] if m[0] == "execution_error")
    assert "layers=double:7, double:8, double:9 not found in this model" in error["exception_message"], error


def test_learn_walk_schedule_on_a_model_feeds_sampler_custom_advanced(comfyui):
    """Learn Walk Schedule on a MODEL target (through the pack's GUIDER), its SIGMAS walked by ComfyUI's own
    SamplerCustomAdvanced; the file lands in ComfyUI's models/walk_schedules."""
    url, _, base = comfyui
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "TargetDistributionModel", "inputs": {"model": ["1", 0], "positive": ["2", 0],
                                                                  "negative": ["3", 0]}},
        "5": {"class_type": "LearnWalkSchedule", "inputs": {
            "target": ["4", 0], "walk": "euler", "nfe": 3, "name": "sd_test", "samples": 1, "evaluations": 3,
            "minutes": 0.0, "teacher_steps": 3, "seed": 0, "width": 64, "height": 64, "sigma_max": 0.0,
            "sigma_min": 0.0}},
        "6": {"class_type": "RandomNoise", "inputs": {"noise_seed": 0}},
        "7": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                    "cfg": 3.0}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "9": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "10": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["6", 0], "guider": ["7", 0],
                                                                 "sampler": ["8", 0], "sigmas": ["5", 0],
                                                                 "latent_image": ["9", 0]}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "learned_test"}},
    }
    result = _wait(url, _queue(url, prompt), timeout=900)  # about 40 UNet calls of one latent
    assert result["status"]["status_str"] == "success", result["status"]
    assert result["outputs"]["12"]["images"]
    assert (base / "models" / "walk_schedules" / "sd_test.safetensors").is_file()


# -- CFG variants (TCFG, Mahiro, Perp-Neg) against ComfyUI's own nodes (issue 32) ------------------------------
def _variant_prompt(reference_guider: dict, chain: list, seed: int = 3, steps: int = 4) -> dict:
    """One prompt, two walks from the same noise, karras sigmas and euler: ``ref`` through ComfyUI's guider node
    ``reference_guider`` (an entry whose inputs may name the model as ["1", 0] or a patch of it), ``ours`` through
    WalkGuider with the pack's ``chain`` [(GuidanceStep node, inputs)] and no CFG step before it (these terms replace
    CFG). Prompts: "a lighthouse" (positive), "" (empty), "fog" (the negative, for Perp-Neg)."""
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
              "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["1", 1]}},
              "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
              "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog", "clip": ["1", 1]}},
              "s_latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "s_euler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
              "s_sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras",
                                                                     "steps": steps, "denoise": 1.0}},
              "t": _node("TargetDistributionModel", model=["1", 0], positive=["2", 0], negative=["3", 0]),
              "t_neg": _node("TargetDistributionModel", model=["1", 0], positive=["4", 0], negative=["3", 0]),
              **reference_guider}
    _sample_graph(prompt, "ref", ["r_guider", 0], seed)
    previous = None
    for i, (node_id, inputs) in enumerate(chain):
        prompt[f"c{i}"] = _node(node_id, **inputs, **({} if previous is None else {"guidance": previous}))
        previous = [f"c{i}", 0]
    prompt["ours_guider"] = _node("WalkGuider", target=["t", 0], guidance=previous)
    _sample_graph(prompt, "ours", ["ours_guider", 0], seed)
    prompt["cfg_c"] = _node("GuidanceStepCFG", weight=CFG_SCALE)  # plain CFG: the term must differ from it
    prompt["cfg_guider"] = _node("WalkGuider", target=["t", 0], guidance=["cfg_c", 0])
    _sample_graph(prompt, "cfg", ["cfg_guider", 0], seed)
    return prompt


def _patched_cfg_guider(patch: str) -> dict:
    return {"r_patch": {"class_type": patch, "inputs": {"model": ["1", 0]}},
            "r_guider": {"class_type": "CFGGuider", "inputs": {"model": ["r_patch", 0], "positive": ["2", 0],
                                                                "negative": ["3", 0], "cfg": CFG_SCALE}}}


VARIANT_TWINS = {  # ComfyUI's guider (with its patch), the pack's chain computing the same at a batch of one
    "tcfg": (_patched_cfg_guider("TCFG"), [("GuidanceStepTCFG", {"weight": CFG_SCALE})]),
    "mahiro": (_patched_cfg_guider("Mahiro"), [("GuidanceStepMahiro", {"weight": CFG_SCALE})]),
    "perp_neg": ({"r_guider": {"class_type": "PerpNegGuider", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["4", 0], "empty_conditioning": ["3", 0],
        "cfg": CFG_SCALE, "neg_scale": 1.0}}},
        [("GuidanceStepPerpNeg", {"weight": CFG_SCALE, "neg_scale": 1.0, "negative": ["t_neg", 0]})]),
}


@pytest.mark.parametrize("kind", VARIANT_TWINS)
def test_cfg_variant_equals_comfyuis_own_node(comfyui, kind):
    """The same walk (seed, karras sigmas, euler, scale 5) with ComfyUI's own node and with the pack's term: the
    same latent within float tolerance, and far from plain CFG's (the term does act)."""
    url, _, base = comfyui
    guider, chain = VARIANT_TWINS[kind]
    prompt = _variant_prompt(guider, chain)
    status = _wait(url, _queue(url, prompt), timeout=600)["status"]
    errors = [m[1] for m in status["messages"] if m[0] == "execution_error"]
    assert not errors, (errors[0]["node_id"], errors[0]["exception_message"], errors[0].get("traceback", [])[-3:])
    got = _latents(url, base, prompt)
    ours, cfg = _gap(got["ours"], got["ref"]), _gap(got["cfg"], got["ref"])
    assert ours <= EQUAL, (ours, cfg)
    # the term does act: plain CFG is much farther. On random weights the prompts barely differ, so Mahiro's
    # similarity is near 1 and its result near CFG's (measured: 1.3e-3 away)
    assert cfg >= (5 if kind == "mahiro" else 50) * EQUAL and cfg >= 5 * ours, (ours, cfg)


# -- cli.py sweep --executor comfyui (select with -k sweep) ---------------------------------------------------
def _sweep(path: Path, out: Path, *extra: str) -> int:
    return load_cli().main(["sweep", str(path), "--seeds", "0-2", "--output-dir", str(out), "-q", *extra])


def _pixels(folder: Path) -> dict:
    import numpy as np
    from PIL import Image

    return {p.name: np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))
            if not p.name.startswith("xy_plot")}


def test_sweep_of_the_pack_on_comfyui_gives_the_local_pictures(comfyui, tmp_path):
    """The default weight-free walk swept inside ComfyUI (the pack's nodes run there, ComfyUI saves the PNGs) and
    headless: the same job names and the same pictures up to 8-bit quantization -- ComfyUI's SaveImage truncates
    255 * value where the pack rounds it, so each decoded pixel is the local one or one level below."""
    url, _, _ = comfyui
    path = ROOT / "workflows" / "default.json"
    small_set = [a for s in ["1.width=32", "1.height=32", "3.width=32", "3.height=32", "3.steps=4"] for a in ("--set", s)]
    assert _sweep(path, tmp_path / "local", *small_set) == 0
    assert _sweep(path, tmp_path / "comfy", *small_set, "--executor", "comfyui", "--server", url) == 0
    local, remote = _pixels(tmp_path / "local"), _pixels(tmp_path / "comfy")
    assert sorted(local) == sorted(remote) and len(local) == 3
    for name in local:
        below = local[name].astype(int) - remote[name].astype(int)
        assert below.min() >= 0 and below.max() <= 1, (name, below.min(), below.max())
        assert (below == 0).mean() > 0.2, name  # rounding and truncation agree on a good share of the values


def test_sweep_of_a_checkpoint_workflow_runs_on_comfyui(comfyui, tmp_path):
    """A graph with ComfyUI-only nodes (checkpoint loader, text encoder) is checked against the server's nodes and
    swept there; each picture carries its job's graph."""
    url, _, _ = comfyui
    path = ROOT / "workflows" / "sd15_text_to_image_walk.json"
    api, _ = load_workflow(path, server_node_table(url))
    sets = [a for s in small_sd(api) for a in ("--set", s)]
    assert _sweep(path, tmp_path / "sd", *sets, "--executor", "comfyui", "--server", url) == 0
    entries = [json.loads(line) for line in (tmp_path / "sd" / "sweep.jsonl").read_text().splitlines()]
    assert [e["status"] for e in entries] == ["done"] * 3
    from PIL import Image

    for entry in entries:
        prompt = json.loads(Image.open(tmp_path / "sd" / entry["outputs"][0]).text["prompt"])
        seeds = [n["inputs"][k] for n in prompt.values() for k in ("seed", "noise_seed") if k in n["inputs"]]
        assert seeds and set(seeds) == {entry["seed"]}


def test_cfgpp_on_a_model_equals_comfyuis_euler_cfg_pp(comfyui):
    """CFG++ (Chung et al. 2024) through WalkGuider and the pack's euler as SAMPLER against ComfyUI's CFGGuider with
    its euler_cfg_pp sampler (same seed, karras sigmas, scale 5 -- the random-weight model's prompts differ little):
    the same latent within float tolerance, and far from plain CFG 5 through the same walk (the re-noising acts)."""
    url, _, base = comfyui
    lam = CFG_SCALE
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
              "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["1", 1]}},
              "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
              "s_latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "s_sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras",
                                                                     "steps": 4, "denoise": 1.0}},
              "t": _node("TargetDistributionModel", model=["1", 0], positive=["2", 0], negative=["3", 0]),
              "r_guider": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0],
                                                                  "negative": ["3", 0], "cfg": lam}},
              "r_sampler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_cfg_pp"}},
              "w_sampler": _node("WalkSamplerSelect", walk="euler"),
              "pp": _node("GuidanceStepCFGPP", weight=lam),
              "cfg": _node("GuidanceStepCFG", weight=lam)}
    runs = (("ref", ["r_guider", 0], ["r_sampler", 0]), ("ours", ["ours_guider", 0], ["w_sampler", 0]),
            ("cfg", ["cfg_guider", 0], ["w_sampler", 0]))
    for tag, guider, sampler in runs:
        if tag != "ref":
            prompt[f"{tag}_guider"] = _node("WalkGuider", target=["t", 0],
                                            guidance=["pp" if tag == "ours" else "cfg", 0])
        prompt.update({
            f"{tag}_noise": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}},
            f"{tag}_run": {"class_type": "SamplerCustomAdvanced", "inputs": {
                "noise": [f"{tag}_noise", 0], "guider": guider, "sampler": sampler, "sigmas": ["s_sigmas", 0],
                "latent_image": ["s_latent", 0]}},
            f"{tag}_save": {"class_type": "SaveLatent",
                            "inputs": {"samples": [f"{tag}_run", 0], "filename_prefix": tag}},
        })
    got = _latents(url, base, prompt)
    assert _gap(got["ours"], got["ref"]) <= EQUAL, (_gap(got["ours"], got["ref"]), _gap(got["cfg"], got["ref"]))
    assert _gap(got["cfg"], got["ref"]) >= 50 * EQUAL
