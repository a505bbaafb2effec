"""MODEL targets, the walk as a SAMPLER and the chain as a GUIDER, on stand-ins of ComfyUI's objects.

The stand-in model is exact (Gaussian data, x0 ~ N(mean, scale^2), the mean set by the prompt) and its network
speaks each prediction type (EPS, V, EDM, flow), so the samples a walk returns have a known distribution:
tolerances below are 5 standard errors of the sample size plus 3 % for the discretisation of 200 ancestral
steps (measured: euler_ancestral on this target keeps 98 % of the spread at 200 steps, 92 % at 40).
ComfyUI itself is not imported (tests/comfy_standins.py; the real one runs in test_comfyui_integration.py).
"""
from __future__ import annotations

import math

import pytest
import torch

import comfy_standins as cs
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes.comfy_guider import GuidedPrediction, walk_range
from rwalk.walk_core.bridge import FlowAsVE, find_model_sampling, is_flow, walk_sampler_function
from rwalk.walk_core.bridge.sampler import step_noise
from rwalk.walk_core.guidance import GuidanceChain
from rwalk.walk_core.guidance.energy import LATENT_STEP, EnergyTerm
from rwalk.walk_core.guidance.terms import CFG
from rwalk.walk_core.schedules import make_sigmas
from rwalk.walk_core.walks import WALKS

KINDS = ("eps", "v", "edm", "flow")
SCALE = 0.7  # the stand-in data's standard deviation (scaled latent units)
BATCH, SIZE = 48, 64  # 48 items of 4 x 8 x 8 latent values: 12288 values per run
STEPS = 200


def target(kind="eps", positive=0.6, negative=0.0, vae=None, **kw):
    model = cs.ModelPatcher(kind, SCALE)
    node = NODE_CLASS_MAPPINGS["TargetDistributionModel"]()
    return node.make(model, cs.conditioning(positive), cs.conditioning(negative), vae=vae, **kw)[0], model


def walk_sampler(tgt, guidance=None, **kw):
    inputs = dict(walk="euler_ancestral", schedule="karras", steps=STEPS, seed=0, batch_size=BATCH, width=SIZE,
                  height=SIZE, sigma_max=0.0, sigma_min=0.0, eta=1.0, s_noise=1.0, churn=0.0, snr=0.0,
                  corrector_steps=1, order=0, denoise=1.0, trajectory_every=0)
    inputs.update(kw)
    return NODE_CLASS_MAPPINGS["WalkSampler"]().sample(tgt, guidance=guidance, **inputs)


def check_gaussian(values: torch.Tensor, mean: float, std: float, slack: float = 0.03):
    """Sample mean and std against N(mean, std^2): 5 standard errors of n values, plus ``slack`` for the walk's
    discretisation (relative, on the std; absolute x std on the mean)."""
    n = values.numel()
    m, s = float(values.mean()), float(values.std())
    assert abs(m - mean) <= 5 * std / math.sqrt(n) + slack * std, (m, mean)
    assert abs(s - std) <= 5 * std / math.sqrt(2 * n) + slack * std, (s, std)


# -- conventions ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_flow_is_told_apart_by_behaviour(kind):
    assert is_flow(cs.Sampling(kind)) == (kind == "flow")
    assert not is_flow(None)


def test_model_sampling_is_found_through_comfyuis_wrappers():
    sampling = cs.Sampling("flow")
    chain = type("W", (), {})()
    chain.inner_model = type("W", (), {})()
    chain.inner_model.inner_model = type("B", (), {"model_sampling": sampling})()
    assert find_model_sampling(chain) is sampling


def test_flow_as_ve_is_the_exact_change_of_variables():
    sampling = cs.Sampling("flow")
    model = lambda x, t: sampling.exact_denoised(x, t, 0.3, SCALE)  # noqa: E731
    flow = FlowAsVE(model)
    t = torch.tensor([0.25, 0.5, 0.9])
    s = flow.sigmas(t)
    assert torch.allclose(flow.t_of(s), t)
    x0, n = torch.randn(3, 5, generator=torch.Generator().manual_seed(1)), torch.randn(3, 5)
    x = (1 - t[:, None]) * x0 + t[:, None] * n  # the flow's noised picture
    y = flow.to_ve(x, t[:, None])
    assert torch.allclose(y, x0 + s[:, None] * n, atol=1e-5)  # the VE picture of the same x0 and noise
    assert torch.allclose(flow(y, s), model(x, t), atol=1e-6)  # the same denoised estimate


# -- WalkSampler on a MODEL target ---------------------------------------------------------------------------
def test_model_target_takes_its_facts_from_the_model():
    tgt, model = target("eps")
    assert tgt.space == "latent" and tuple(tgt.shape) == (4, 64, 64)  # 512 px default / 8
    assert tgt.sigma_min == pytest.approx(0.0292) and tgt.sigma_max == pytest.approx(14.6146)
    assert tuple(tgt.at_size(96, 64).shape) == (4, 8, 12)
    assert tuple(tgt.at_size(64, 64).shape) == (4, 8, 8)  # pixels, not latent cells, are compared
    assert tgt.at_size(512, 512) is tgt
    with pytest.raises(ValueError, match="width=100 px; expected a multiple of 8"):
        tgt.at_size(100, 64)
    flow, _ = target("flow")
    assert flow.sigma_max == 1.0 and flow.info["flow"]
    with pytest.raises(RuntimeError, match="ComfyUI MODEL"):
        tgt.denoiser(torch.zeros(1, 4, 8, 8), torch.ones(1))


@pytest.mark.parametrize("kind", KINDS)
def test_walk_sampler_reproduces_the_models_distribution_for_every_prediction_type(kind, fake_comfy):
    tgt, model = target(kind, positive=0.6)
    _, latent, *_ = walk_sampler(tgt)  # no guidance: the conditional branch alone
    scaled = latent["samples"] * cs.LatentFormat.scale_factor  # the model's own (scaled) latent units
    check_gaussian(scaled, 0.6, SCALE)
    assert set(model.model.calls) == {BATCH}  # the negative prompt is never evaluated without a cfg term


def test_a_flow_model_walked_as_if_it_were_ve_would_be_wrong():
    """The check above can fail: the same walk fed the flow model's x as if it were VE is far off."""
    sampling = cs.Sampling("flow")
    model = lambda x, t, **_: sampling.exact_denoised(x, t, 0.6, SCALE)  # noqa: E731
    sigmas = make_sigmas("karras", STEPS, 0.002, 1.0)
    x = torch.randn(BATCH, 256, generator=torch.Generator().manual_seed(0))
    wrong = WALKS["euler_ancestral"].fn(model, x, sigmas)
    assert abs(float(wrong.std()) - SCALE) > 0.1
    right = walk_sampler_function("euler_ancestral")(type("M", (), {"model_sampling": sampling,
                                                                    "__call__": lambda self, *a, **k: model(*a)})(),
                                                     x, sigmas)
    check_gaussian(right, 0.6, SCALE)


@pytest.mark.parametrize("kind", ("eps", "flow"))
def test_cfg_through_the_chain_gives_the_exact_guided_distribution(kind, fake_comfy):
    """For Gaussian branches of equal spread, u + w (c - u) is the denoiser of mean m_u + w (m_c - m_u)."""
    tgt, model = target(kind, positive=0.3, negative=-0.1)
    chain = GuidanceChain().plus(CFG(weight=2.5))
    _, latent, _, walk = walk_sampler(tgt, guidance=chain)
    check_gaussian(latent["samples"] * cs.LatentFormat.scale_factor, -0.1 + 2.5 * 0.4, SCALE)
    assert set(model.model.calls) == {2 * BATCH}  # both prompts in one batched call per evaluation
    # the walk for Walk Picture: the CFG term's change at every evaluation, the schedule walked
    assert walk.term_labels() == ["1:cfg"] and len(walk.guidance) == len(model.model.calls) == STEPS
    assert len(walk.sigmas) == STEPS + 1 and walk.steps == (STEPS - 1,)  # trajectory_every 0: the result alone


def test_batch_items_equal_single_runs_with_seed_plus_i(fake_comfy):
    tgt, _ = target("eps")
    _, batch, *_ = walk_sampler(tgt, batch_size=3, seed=5, steps=8, width=16, height=16)
    assert batch["seeds"] == [5, 6, 7]
    for i in range(3):
        _, one, *_ = walk_sampler(tgt, batch_size=1, seed=5 + i, steps=8, width=16, height=16)
        assert torch.equal(one["samples"][0], batch["samples"][i])


def test_img2img_keeps_more_of_the_init_at_low_denoise_and_the_mask_keeps_its_region(fake_comfy):
    tgt, _ = target("eps", positive=0.0)
    init = torch.full((1, 4, 4, 4), 3.0)  # unscaled; far from the model's data
    distance = {}
    for denoise in (0.3, 0.9):
        _, out, *_ = walk_sampler(tgt, init_latent={"samples": init}, denoise=denoise, batch_size=8, steps=20)
        distance[denoise] = float((out["samples"] - init).abs().mean())
    assert distance[0.3] < 0.5 * distance[0.9]
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :, 2:] = 1.0  # walk the right half only
    _, out, *_ = walk_sampler(tgt, init_latent={"samples": init, "noise_mask": mask}, batch_size=2, steps=10)
    assert torch.allclose(out["samples"][..., :2], init[..., :2].expand(2, -1, -1, -1))
    assert float((out["samples"][..., 2:] - 3.0).abs().mean()) > 1.0
    assert "noise_mask" in out  # the LATENT keeps its mask, as KSampler's does


def test_walk_sampler_outputs_pictures_with_a_vae_and_stops_on_interrupt(fake_comfy):
    tgt, model = target("eps", vae=cs.VAE())
    image, latent, trajectory, walk = walk_sampler(tgt, batch_size=2, steps=6, width=32, height=24,
                                                   trajectory_every=2)
    assert tuple(image.shape) == (2, 24, 32, 3) and float(image.min()) >= 0 and float(image.max()) <= 1
    assert tuple(trajectory.shape) == (2 * 4, 24, 32, 3)  # steps 0, 2, 4 and the last, time-major
    assert walk.steps == (0, 2, 4, 5) and tuple(walk.frames.shape) == (4, 2, 3, 24, 32)  # decoded pictures
    assert fake_comfy.latent_preview.steps == list(range(6))  # a preview per step
    no_vae, _ = target("eps")
    image, *_ = walk_sampler(no_vae, batch_size=1, steps=2, width=16, height=16)
    assert tuple(image.shape) == (1, 2, 2, 3)  # the latent's rough RGB without a VAE
    fake_comfy.model_management.interrupted = True
    model.model.calls.clear()
    with pytest.raises(RuntimeError, match="interrupted"):
        walk_sampler(tgt, batch_size=1, steps=30, width=16, height=16)
    assert len(model.model.calls) == 1  # stopped after the first step


def test_init_image_on_a_model_target_asks_for_a_latent(fake_comfy):
    tgt, _ = target("eps")
    with pytest.raises(ValueError, match="VAEEncode"):
        walk_sampler(tgt, init_image=torch.rand(1, 16, 16, 3))


# -- interop: SAMPLER and GUIDER ----------------------------------------------------------------------------
def test_walk_sampler_select_and_walk_guider_in_a_custom_sampling_graph(fake_comfy):
    """SamplerCustomAdvanced's calls: RandomNoise's noise, our GUIDER and SAMPLER, a SIGMAS schedule."""
    tgt, model = target("flow", positive=0.5, negative=0.1)
    chain = GuidanceChain().plus(CFG(weight=2.0))
    (guider,) = NODE_CLASS_MAPPINGS["WalkGuider"]().make(tgt, chain)
    (sampler,) = NODE_CLASS_MAPPINGS["WalkSamplerSelect"]().select("euler_ancestral", 1.0, 1.0, 0.0, 0.0, 1, 0)
    noise = torch.randn(BATCH, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    sigmas = make_sigmas("karras", STEPS, 0.002, 1.0)
    out = guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, seed=3)
    check_gaussian(out * cs.LatentFormat.scale_factor, 0.1 + 2.0 * 0.4, SCALE)


def test_walk_guider_refuses_a_pixel_target():
    mixture = NODE_CLASS_MAPPINGS["TargetDistributionMixture"]
    tgt = getattr(mixture(), mixture.FUNCTION)(**{k: v[1].get("default", v[0][0] if isinstance(v[0], list) else None)
                                                  for k, v in mixture.INPUT_TYPES()["required"].items()})[0]
    with pytest.raises(ValueError, match="not a MODEL target"):
        NODE_CLASS_MAPPINGS["WalkGuider"]().make(tgt)


def test_step_noise_does_not_repeat_the_initial_noise():
    x = torch.zeros(2, 3, 4, 4)
    initial = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))  # RandomNoise(9) for the batch
    first_step = step_noise(x, {"seed": 9}).randn(tuple(x.shape))
    assert not torch.allclose(first_step[0], initial[0])
    g = torch.Generator().manual_seed(9)
    torch.randn(x.shape[1:], generator=g)
    assert torch.equal(first_step[0], torch.randn(x.shape[1:], generator=g))  # the stream after one draw


def test_walk_range_reads_a_comfyui_schedule():
    assert walk_range(torch.tensor([14.6, 3.0, 0.03, 0.0])) == (pytest.approx(14.6), pytest.approx(0.03))
    with pytest.raises(ValueError, match="no positive noise level"):
        walk_range(torch.zeros(3))


# -- the guided prediction and ComfyUI's model patches -------------------------------------------------------
def prediction(chain, kind="eps"):
    tgt, model = target(kind, positive=0.5, negative=-0.5)
    tgt = tgt.at_size(16, 16)
    pred = GuidedPrediction(tgt, chain, 14.6, 0.03, cs.calc_cond_batch)
    conds = {"positive": [{"mean": 0.5}], "negative": [{"mean": -0.5}]}
    x = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    return pred, model.model, conds, x


def exact(model, x, sigma, mean):
    return model.model_sampling.exact_denoised(x, torch.full((x.shape[0],), sigma), mean, SCALE)


def test_cfg_term_is_one_batched_call_and_only_inside_its_interval():
    chain = GuidanceChain().plus(CFG(weight=3.0, start_percent=0.0, end_percent=0.5))
    pred, model, conds, x = prediction(chain)
    high = pred(model, conds, x, torch.full((2,), 10.0), {})
    c, u = exact(model, x, 10.0, 0.5), exact(model, x, 10.0, -0.5)
    assert torch.allclose(high, u + 3.0 * (c - u), atol=1e-5) and model.calls == [4]
    low = pred(model, conds, x, torch.full((2,), 0.05), {})  # past end_percent: the conditional alone
    assert torch.allclose(low, exact(model, x, 0.05, 0.5), atol=1e-5) and model.calls == [4, 2]


def test_model_patches_compose_with_the_chain_in_the_documented_order():
    seen = {}

    def pre(args):  # pre-cfg: sees the raw predictions
        seen["pre"] = [o.clone() for o in args["conds_out"]]
        return [o + 1.0 for o in args["conds_out"]]

    def cfg(args):  # a patched cfg function (RescaleCFG's slot): noise-space, returns x - denoised
        seen["scale"] = args["cond_scale"]
        return args["cond"]  # = x - cond_denoised: picks the (shifted) conditional prediction

    def post(args):  # post-cfg (PAG's slot): sees the chain's result
        seen["post"] = (args["denoised"].clone(), args["cond_scale"])
        return args["denoised"] * 2.0

    chain = GuidanceChain().plus(CFG(weight=4.0))
    pred, model, conds, x = prediction(chain)
    options = {"sampler_pre_cfg_function": [pre], "sampler_cfg_function": cfg, "sampler_post_cfg_function": [post]}
    out = pred(model, conds, x, torch.full((2,), 1.0), options)
    c = exact(model, x, 1.0, 0.5)
    assert torch.allclose(seen["pre"][0], c, atol=1e-5)
    assert seen["scale"] == 4.0 and seen["post"][1] == 4.0
    assert torch.allclose(seen["post"][0], c + 1.0, atol=1e-5)  # the cfg patch chose the shifted conditional
    assert torch.allclose(out, 2.0 * (c + 1.0), atol=1e-5)
    assert "sampler_cfg_function" not in options or options["sampler_cfg_function"] is cfg  # slot untouched


# -- energy guidance through a decoder ----------------------------------------------------------------------
def test_energy_on_a_latent_target_measures_the_decoded_picture():
    vae = cs.VAE()
    tgt, _ = target("eps", vae=vae)
    tgt = tgt.at_size(32, 32)
    picture = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    term = EnergyTerm(weight=0.5, energy="content", reference=picture, steps=1)
    term.check(tgt)
    state = term.start(tgt)
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(4))
    ctx = type("C", (), {"target": tgt})()
    moved = term.apply(ctx, z, state)
    rms = (moved - z).flatten(1).square().mean(1).sqrt()
    assert torch.allclose(rms, torch.full((2,), 0.5 * LATENT_STEP), rtol=1e-4)
    before = state.on(picture)(tgt.decoder.decode(z)).sum()
    after = state.on(picture)(tgt.decoder.decode(moved)).sum()
    assert float(after) < float(before)
    half, _ = target("eps", vae=vae, decode_scale="1/2")
    assert half.at_size(32, 32).decoder.pixel_shape((4, 4, 4)) == (3, 16, 16)


def test_energy_on_a_latent_target_without_a_vae_names_the_missing_input():
    tgt, _ = target("eps")
    term = EnergyTerm(weight=0.5, energy="content", reference=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="connect a VAE"):
        term.check(tgt)


def test_the_decoder_works_on_weights_loaded_under_inference_mode():
    """ComfyUI loads checkpoints under torch.inference_mode; the energy's backward pass must still work."""
    with torch.inference_mode():
        vae = cs.VAE()  # its weights are inference tensors, as a checkpoint loaded by ComfyUI's executor
        tgt, _ = target("eps", vae=vae)
    tgt = tgt.at_size(16, 16)
    term = EnergyTerm(weight=1.0, energy="colour", reference=torch.zeros(1, 3, 4, 4))
    with torch.inference_mode():  # ComfyUI runs the walk under inference mode too
        moved = term.apply(type("C", (), {"target": tgt})(), torch.randn(1, 4, 2, 2), term.start(tgt))
    assert bool(torch.isfinite(moved).all())
    assert vae.first_stage_model.rgb.weight.is_inference()  # ComfyUI's own module is left as it was


def test_autoguidance_by_a_second_model_is_refused_before_sampling(fake_comfy):
    from rwalk.walk_core.guidance.cfg_family import Autoguidance

    tgt, _ = target("eps")
    weak, _ = target("eps")
    with pytest.raises(ValueError, match="second MODEL is not supported"):
        NODE_CLASS_MAPPINGS["WalkGuider"]().make(tgt, GuidanceChain().plus(Autoguidance(guide=weak)))
