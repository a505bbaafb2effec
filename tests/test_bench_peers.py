"""The peers: k-diffusion's sampling module loaded without its package (skipped where k-diffusion is not
installed: pip install --no-deps -r bench/requirements.txt), and ComfyUI's when $WALK_COMFYUI names a checkout."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

from rwalk.bench.accuracy import initial_noise, run_sampler
from rwalk.bench.peer_kdiffusion import kdiffusion_folder, missing_modules
from rwalk.bench.peers import load_peers
from rwalk.bench.samplers import pack_sampler
from rwalk.bench.targets import ring_target
from rwalk.walk_core import make_sigmas

needs_kd = pytest.mark.skipif(kdiffusion_folder() is None or bool(missing_modules()),
                              reason="k-diffusion (and scipy, torchsde, torchdiffeq, tqdm) not installed")


@pytest.fixture(scope="module")
def kd():
    return load_peers(("kd",))


@needs_kd
def test_kdiffusion_sampling_loads_without_its_package(kd):
    assert {"kd:euler", "kd:heun", "kd:euler_ancestral", "kd:dpmpp_2m", "kd:dpmpp_2m_sde"} <= set(kd.samplers)
    assert "kd:dpm_adaptive" in kd.skipped
    assert "k_diffusion" not in sys.modules  # its __init__ (training stack) never ran
    if importlib.util.find_spec("torchvision") is None:
        assert "torchvision" not in sys.modules  # the loader's stand-in did not outlive the load
    assert kd.sources["k-diffusion"].startswith("k-diffusion")


@needs_kd
def test_peer_nfe_is_counted(kd):
    heun, dpmpp = kd.samplers["kd:heun"], kd.samplers["kd:dpmpp_2m"]
    assert heun.nfe_of(5) == 9 and heun.steps_for(10) == 5 and heun.steps_for(20) == 10
    assert dpmpp.steps_for(10) == 10
    assert not kd.samplers["kd:euler"].stochastic and kd.samplers["kd:euler_ancestral"].stochastic
    assert kd.samplers["kd:dpmpp_2m_sde"].slow and not kd.samplers["kd:euler"].slow


@needs_kd
def test_kd_euler_equals_the_pack_euler(kd):
    target = ring_target()
    sigmas = make_sigmas("karras", 12, target.sigma_min, target.sigma_max)
    x = initial_noise(64, target.shape, 0, target.sigma_max)
    ours, _ = run_sampler(target, pack_sampler("euler"), sigmas, x, 0)
    theirs, calls = run_sampler(target, kd.samplers["kd:euler"], sigmas, x, 0)
    assert calls == 12
    assert torch.allclose(ours, theirs, atol=1e-4)


@needs_kd
def test_peer_noise_is_seeded_and_the_global_generator_restored(kd):
    target = ring_target()
    sigmas = make_sigmas("karras", 8, target.sigma_min, target.sigma_max)
    x = initial_noise(32, target.shape, 0, target.sigma_max)
    state = torch.random.get_rng_state()
    for name in ("kd:euler_ancestral", "kd:dpmpp_2m_sde"):
        a, _ = run_sampler(target, kd.samplers[name], sigmas, x, 5)
        b, _ = run_sampler(target, kd.samplers[name], sigmas, x, 5)
        c, _ = run_sampler(target, kd.samplers[name], sigmas, x, 6)
        assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_without_kdiffusion_the_peers_are_skipped(monkeypatch):
    from rwalk.bench import peer_kdiffusion

    monkeypatch.setattr(peer_kdiffusion, "_loaded", None)
    monkeypatch.setattr(peer_kdiffusion, "kdiffusion_folder", lambda: None)
    peers = load_peers(("kd",))
    assert not peers.samplers and "not installed" in peers.unavailable["k-diffusion"]


def test_missing_sources_are_skipped_not_raised(tmp_path):
    peers = load_peers(("comfy",), comfyui=str(tmp_path))
    assert not peers.samplers and "ComfyUI" in peers.unavailable
    assert "comfy/k_diffusion/sampling.py" in peers.unavailable["ComfyUI"]
    with pytest.raises(ValueError, match="source"):
        load_peers(("nope",))


@pytest.mark.skipif(not os.environ.get("WALK_COMFYUI"), reason="$WALK_COMFYUI (a ComfyUI checkout) not set")
def test_comfyui_samplers_run_on_a_plain_denoiser():
    had_comfy = "comfy" in sys.modules
    peers = load_peers(("comfy",))
    if not peers.samplers:
        pytest.skip(f"ComfyUI's sampling did not load here: {peers.unavailable}")
    assert {"comfy:er_sde", "comfy:res_multistep", "comfy:dpmpp_2m_sde"} <= set(peers.samplers)
    assert any(name.endswith("_cfg_pp") for name in peers.skipped)
    assert ("comfy" in sys.modules) == had_comfy  # the stand-ins are gone again
    target = ring_target()
    sigmas = make_sigmas("karras", 10, target.sigma_min, target.sigma_max)
    x = initial_noise(64, target.shape, 0, target.sigma_max)
    out, calls = run_sampler(target, peers.samplers["comfy:er_sde"], sigmas, x, 0)
    assert calls == 10 and bool(torch.isfinite(out).all())
