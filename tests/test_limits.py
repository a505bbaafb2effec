"""Resources are bounded before work starts (issue 29, item 3): walk size and memory, input pictures, and the
networks and tensors that model / style files describe -- each over its documented limit is one clear error
saying what it would take, the limit, and how to raise it."""
import json
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from rwalk.models.checkpoint import load_model, save_model
from rwalk.models.unet import EDMDenoiser, UNetConfig
from rwalk.walk_core import limits
from rwalk.walk_core.safetensors_header import read_header
from rwalk.walk_core.style import encode_style, load_style, save_style
from cli_module import load_cli  # tests/ is on sys.path (conftest.py)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cli():
    return load_cli()


@pytest.fixture
def env(monkeypatch):
    """No limit variables from the caller's environment; a known memory limit."""
    for name in limits.ENV.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WALK_MAX_MEMORY_GB", "16")
    return monkeypatch


def run_cli(cli, capsys, *argv):
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------------------ estimates

def test_walk_estimate_counts_states_frames_and_the_target():
    est = limits.estimate_walk(64, 32, 2, steps=20, trajectory_every=5, target_factor=10)
    assert est.pixels == 64 * 32 * 2 and est.state_bytes == 64 * 32 * 2 * 3 * 4
    assert est.frames == 5 and est.states == limits.WALK_COPIES + 3 * 5 + 10
    assert limits.estimate_walk(8, 8, 1, steps=7, trajectory_every=0).frames == 1
    latent = limits.estimate_walk(512, 512, 1, channels=4, cells_per_pixel=1 / 64)
    assert latent.state_bytes == 64 * 64 * 4 * 4


def test_limits_come_from_the_environment_and_bad_values_name_the_variable(env):
    env.setenv("WALK_MAX_PIXELS", "1e6")
    env.setenv("WALK_MAX_FILE_MB", "0.5")
    found = limits.Limits.from_env()
    assert found.max_pixels == 1_000_000 and found.max_file_bytes == 512 * 1024 and found.max_memory_gb == 16
    for bad in ("abc", "-1", "0", "nan", "inf"):
        env.setenv("WALK_MAX_INPUT_PIXELS", bad)
        with pytest.raises(limits.LimitError, match=f"WALK_MAX_INPUT_PIXELS='{bad}' is not allowed"):
            limits.Limits.from_env()


def test_default_memory_limit_is_16_gib_or_three_quarters_of_the_machine(monkeypatch):
    monkeypatch.delenv("WALK_MAX_MEMORY_GB", raising=False)
    expected = min(16.0, limits.machine_memory_gb() * 0.75)
    assert limits.Limits.from_env().max_memory_gb == pytest.approx(expected)


def test_over_the_memory_limit_says_what_it_would_take_and_how_to_raise_it(env):
    with limits.use_limits(max_memory_gb=1.0):
        limits.check_walk("X", 256, 256, 1, steps=20, trajectory_every=5, target_factor=100)  # ~0.1 GiB
        with pytest.raises(limits.LimitError) as info:
            limits.check_walk("X", 1024, 1024, 4, steps=20, trajectory_every=5, target_factor=100, target="t")
    text = str(info.value)
    for needle in ("X: 1024x1024 px x batch 4", "would need about", "GiB", "100 for the target (t)",
                   "the limit is 1 GiB", "WALK_MAX_MEMORY_GB", "--max-memory"):
        assert needle in text


# --------------------------------------------------------------------------------- walks, at validation

def test_in_range_but_huge_walk_is_refused_when_checked(cli, capsys, env, tmp_path):
    out = ["--output-dir", str(tmp_path), "-q"]
    code, err = run_cli(cli, capsys, "check", str(ROOT / "workflows/default.json"), *out,
                        "--set", "WalkSampler.width=4096", "--set", "WalkSampler.height=4096",
                        "--set", "WalkSampler.batch_size=64")
    assert code == 2 and "1,073,741,824 pixels in one walk" in err and "WALK_MAX_PIXELS" in err
    code, err = run_cli(cli, capsys, "check", str(ROOT / "workflows/default.json"), *out,
                        "--set", "WalkSampler.steps=10000", "--set", "WalkSampler.trajectory_every=1",
                        "--set", "WalkSampler.width=1024", "--set", "WalkSampler.height=1024")
    assert code == 2 and "10001 trajectory frame(s)" in err and "node 3 (WalkSampler)" in err
    code, err = run_cli(cli, capsys, "check", str(ROOT / "workflows/default.json"), *out,
                        "--set", "WalkSampler.width=5000")
    assert code == 2 and "input 'width': 5000 is above the maximum 4096" in err
    code, _ = run_cli(cli, capsys, "check", str(ROOT / "workflows/default.json"), *out)
    assert code == 0


def test_max_memory_flag_and_bad_environment_exit_2(cli, capsys, env, tmp_path):
    args = ["check", str(ROOT / "workflows/default.json"), "--output-dir", str(tmp_path), "-q"]
    code, err = run_cli(cli, capsys, *args, "--max-memory", "0.001")
    assert code == 2 and "the limit is 1.02 MiB" in err
    code, err = run_cli(cli, capsys, *args, "--max-memory", "0")
    assert code == 2 and "--max-memory 0.0: expected a positive number" in err
    env.setenv("WALK_MAX_MEMORY_GB", "lots")
    code, err = run_cli(cli, capsys, *args)
    assert code == 2 and "WALK_MAX_MEMORY_GB='lots'" in err


def test_the_target_counts_when_the_node_runs_before_anything_is_walked(cli, capsys, env, tmp_path):
    # 128 px passes validation (walk states only) but not with the mixture's 8 components (~640 states)
    started = time.perf_counter()
    code, err = run_cli(cli, capsys, "run", str(ROOT / "workflows/exact_mixture.json"), "--output-dir",
                        str(tmp_path), "-q", "--max-memory", "0.02")
    assert code == 1 and "node 2 (WalkSampler)" in err and "640 for the target (mixture of 8 pictures)" in err
    assert time.perf_counter() - started < 30 and not list(tmp_path.rglob("*.png"))


def test_walk_grid_and_wander_check_their_size_too(cli, capsys, env, tmp_path):
    out = ["--output-dir", str(tmp_path), "-q"]
    code, err = run_cli(cli, capsys, "check", str(ROOT / "workflows/grid_chaos_stylize_tile.json"), *out,
                        "--set", "WalkGrid.size=4096", "--set", "WalkGrid.items=16")
    assert code == 2 and "WalkGrid: 4096x4096 px x batch 16" in err
    code, err = run_cli(cli, capsys, "check", str(ROOT / "workflows/wander_animation.json"), *out,
                        "--set", "WalkWander.frames=256", "--set", "WalkWander.width=4096",
                        "--set", "WalkWander.height=4096")
    assert code == 2 and "WalkWander: 4096x4096 px x batch 256" in err


# ------------------------------------------------------------------------------------- input pictures

def test_input_pictures_over_the_pixel_limit_are_refused_before_decoding(cli, capsys, env, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (120, 100)).save(folder / "big.png")
    Image.new("RGB", (90, 100)).save(folder / "ok.png")
    frames = [Image.new("RGB", (60, 60), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    env.setenv("WALK_MAX_INPUT_PIXELS", "10000")
    for name, expected in (("big.png", 2), ("anim.gif", 2), ("ok.png", 0)):
        wf = tmp_path / f"{name}.json"
        wf.write_text(json.dumps({"1": {"class_type": "LoadImage", "inputs": {"image": name}},
                                  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                                               "filename_prefix": "x"}}}))
        code, err = run_cli(cli, capsys, "check", str(wf), "--input-dir", str(folder), "--output-dir",
                            str(tmp_path / "out"), "-q")
        assert code == expected, (name, err)
    code, err = run_cli(cli, capsys, "check", str(tmp_path / "big.png.json"), "--input-dir", str(folder), "-q")
    assert "is 120x100 px = 12,000 pixels; the limit is 10,000 (WALK_MAX_INPUT_PIXELS)" in err
    code, err = run_cli(cli, capsys, "check", str(tmp_path / "anim.gif.json"), "--input-dir", str(folder), "-q")
    assert "60x60 px x 3 frames = 10,800 pixels" in err


# ----------------------------------------------------------------------------------- model and style files

def tiny_model(tmp_path) -> Path:
    return save_model(EDMDenoiser(UNetConfig(width=8, mults=(1,), blocks=1)), tmp_path / "m.safetensors")


def rewrite(path: Path, tensors=None, **metadata_changes) -> Path:
    header = read_header(path, "test")
    state = load_file(str(path)) if tensors is None else tensors
    save_file(state, str(path), metadata={**header.metadata, **metadata_changes})
    return path


def test_model_metadata_asking_for_a_huge_network_is_refused_before_building_it(tmp_path):
    path = tiny_model(tmp_path)
    huge = json.dumps({"width": 4096, "mults": [64] * 8, "blocks": 16})
    rewrite(path, architecture=huge)
    started = time.perf_counter()
    with pytest.raises(limits.LimitError, match="parameters .*the limit is 268,435,456 \\(WALK_MAX_NETWORK_PARAMS\\)"):
        load_model(path)
    assert time.perf_counter() - started < 20
    for bad, needle in (('{"width": 1e9}', "width=1000000000.0 is not allowed; expected an integer"),
                        ('{"blocks": 1000}', "blocks=1000 is not allowed; expected 1..16"),
                        ('[1, 2]', "is list; expected a JSON object"), ('{"mults": 5}', "a list of integers")):
        rewrite(path, architecture=bad)
        with pytest.raises(ValueError, match=needle):
            load_model(path)


def test_model_tensors_are_checked_in_the_header_before_they_are_read(tmp_path):
    path = tiny_model(tmp_path)
    state = load_file(str(path))
    key = sorted(state)[0]
    rewrite(path, {**state, key: torch.zeros(3, 3)})
    with pytest.raises(ValueError, match=f"wrong shape {key} \\(3, 3\\)"):
        load_model(path)
    with limits.use_limits(max_file_mb=0.001):
        with pytest.raises(limits.LimitError, match="the limit for model, style and weights files is .*WALK_MAX_FILE_MB"):
            load_model(tiny_model(tmp_path))


def test_safetensors_headers_that_do_not_describe_their_data_are_refused(tmp_path):
    path = tiny_model(tmp_path)
    blob = path.read_bytes()
    length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + length])
    name = next(k for k in header if k != "__metadata__")
    for change, needle in ((lambda e: e.update(shape=[10 ** 6, 10 ** 6]), "its data holds"),
                           (lambda e: e.update(data_offsets=[0, 10 ** 12]), "outside the file"),
                           (lambda e: e.update(dtype="Q8"), "dtype 'Q8'")):
        bad = json.loads(blob[8:8 + length])
        change(bad[name])
        text = json.dumps(bad).encode()
        (tmp_path / "bad.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + blob[8 + length:])
        with pytest.raises(ValueError, match=needle):
            load_model(tmp_path / "bad.safetensors")
    (tmp_path / "len.safetensors").write_bytes((2 ** 60).to_bytes(8, "little") + blob[8:])
    with pytest.raises(ValueError, match="a header of"):
        load_model(tmp_path / "len.safetensors")


def test_style_metadata_is_checked_before_an_encoder_is_built(tmp_path):
    pictures = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    path = save_style(encode_style(pictures, "random", "gram", encoder_config={"widths": [4, 8]}),
                      tmp_path / "s.safetensors")
    load_style(path)
    for changes, needle in (({"encoder_config": json.dumps({"widths": [256] * 4})}, "WALK_MAX_NETWORK_PARAMS"),
                            ({"encoder_config": json.dumps({"widths": [10 ** 9]})}, "widths=.* is not allowed"),
                            ({"encoder_config": json.dumps({"widths": [4] * 5})}, "1 to 4 channel counts"),
                            ({"encoder_config": json.dumps({"widths": "abc"})}, "widths=abc is not allowed"),
                            ({"encoder_config": json.dumps({"seed": 2 ** 70})}, "seed=.* is not allowed"),
                            ({"encoder_config": "[1]"}, "encoder_config must be a JSON object"),
                            ({"weights": "5"}, "damaged metadata"), ({"weights": '["a"]'}, "a list of numbers")):
        rewrite(path, **changes)
        with pytest.raises(ValueError, match=needle), limits.use_limits(max_network_params=500_000):
            load_style(path)
        rewrite(path, encoder_config=json.dumps({"widths": [4, 8], "seed": 0}), weights="[1.0]")
    load_style(path)


def test_training_that_would_not_fit_is_refused_before_the_network_is_built(env):
    from rwalk.models.train_limits import check_training

    check_training("train", 64, 16, UNetConfig())  # the defaults fit
    with pytest.raises(limits.LimitError, match="training on 1024 crops of 512x512 px would need about 3,7"):
        check_training("TrainWalkModel", 512, 1024, UNetConfig())
    with pytest.raises(limits.LimitError, match="2,762,021,379 parameters .*WALK_MAX_NETWORK_PARAMS"):
        check_training("train", 64, 1, UNetConfig(width=512, mults=(1, 2, 2, 2, 2, 2), blocks=8))
