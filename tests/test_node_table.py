"""The node table: declarations ComfyUI can read, and one working call of every node (no ComfyUI needed)."""
import inspect
import keyword

import pytest
import torch

import comfy_standins

from rwalk.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from rwalk.nodes.types import CATEGORY as ROOT_CATEGORY
from rwalk.walk_core.guidance import GuidanceChain
from rwalk.walk_core.targets import WalkTarget

NODE_IDS = sorted(NODE_CLASS_MAPPINGS)
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}

# Node ids that ComfyUI (core and comfy_extras) already registers; a pack node with one of these ids
# would silently replace ComfyUI's own.
COMFY_BUILTIN_IDS = {
    "KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced", "CheckpointLoaderSimple",
    "CheckpointLoader", "CLIPTextEncode", "CLIPLoader", "CLIPSetLastLayer", "VAEDecode", "VAEEncode",
    "VAELoader", "VAEDecodeTiled", "VAEEncodeTiled", "VAEEncodeForInpaint", "EmptyLatentImage",
    "EmptyImage", "LoadImage", "LoadImageMask", "SaveImage", "PreviewImage", "ImageScale", "ImageScaleBy",
    "ImageBatch", "ImageInvert", "ImagePadForOutpaint", "LatentUpscale", "LatentUpscaleBy",
    "LatentComposite", "LatentBlend", "LatentFromBatch", "RepeatLatentBatch", "SetLatentNoiseMask",
    "BasicScheduler", "KarrasScheduler", "ExponentialScheduler", "PolyexponentialScheduler",
    "VPScheduler", "SDTurboScheduler", "BetaSamplingScheduler", "SplitSigmas", "SplitSigmasDenoise",
    "FlipSigmas", "CFGGuider", "BasicGuider", "DualCFGGuider", "RandomNoise", "DisableNoise",
    "KSamplerSelect", "SamplerEulerAncestral", "SamplerLMS", "SamplerDPMPP_2M_SDE", "SamplerDPMPP_SDE",
    "ConditioningCombine", "ConditioningAverage", "ConditioningSetArea", "ConditioningZeroOut",
    "ControlNetLoader", "ControlNetApply", "ControlNetApplyAdvanced", "LoraLoader", "LoraLoaderModelOnly",
    "UNETLoader", "DualCLIPLoader", "CLIPVisionLoader", "CLIPVisionEncode", "StyleModelLoader",
    "StyleModelApply", "unCLIPConditioning", "GLIGENLoader", "UpscaleModelLoader",
    "ImageUpscaleWithModel", "ModelSamplingDiscrete", "FreeU", "PerpNeg", "SelfAttentionGuidance",
    "Note", "PrimitiveNode", "Reroute",
}

SMALL = {"width": 16, "height": 16, "steps": 3}


def sections(cls):
    declared = cls.INPUT_TYPES()
    return {kind: declared.get(kind, {}) for kind in ("required", "optional")}


def all_inputs():
    for node_id in NODE_IDS:
        for kind, inputs in sections(NODE_CLASS_MAPPINGS[node_id]).items():
            for name, declaration in inputs.items():
                yield node_id, kind, name, declaration


INPUTS = list(all_inputs())
INPUT_IDS = [f"{n}.{name}" for n, _, name, _ in INPUTS]
# Combos whose choices are the files found at run time (the model folders), tested with a fixture's model.
FILE_CHOICES = {("TargetDistributionCheckpoint", "model_name"), ("StyleEncoderLoad", "style_name")}
COMBOS = [(node_id, name, choice) for node_id, _, name, (kind, _) in INPUTS
          if isinstance(kind, (list, tuple)) and (node_id, name) not in FILE_CHOICES for choice in kind]


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory):
    """A folder holding one tiny trained model (an own model, as Train Walk Model writes them)."""
    from rwalk.models import TrainConfig, UNetConfig, from_tensors, train

    folder = tmp_path_factory.mktemp("walk_models")
    pictures = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    train(from_tensors(pictures), folder / "tiny.safetensors",
          TrainConfig(size=16, batch_size=2, steps=1, minutes=0, sample_every=0, val_every=0, checkpoint_every=0),
          UNetConfig(width=8, mults=(1, 2), blocks=1))
    return folder


@pytest.fixture(scope="module")
def style_code_folder(tmp_path_factory):
    """A folder holding one saved style code (as Style Encoder: Save writes them)."""
    from rwalk.walk_core.style import encode_style, save_style

    folder = tmp_path_factory.mktemp("walk_styles")
    save_style(encode_style(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1),
               folder / "a.safetensors")
    return folder


@pytest.fixture(autouse=True)
def own_models(request, monkeypatch):
    """Nodes that read or write own models or style codes use temporary folders (the fixtures' tiny model and
    style code are the only ones)."""
    if "node_id" not in request.fixturenames:
        return
    from rwalk.nodes import model_files, style_files

    folder = request.getfixturevalue("tiny_model_folder")
    monkeypatch.setattr(model_files, "PACK_MODELS", folder)
    monkeypatch.setattr(model_files, "save_dir", lambda: folder / "trained")
    styles = request.getfixturevalue("style_code_folder")
    monkeypatch.setattr(style_files, "style_dir", lambda: styles)
    monkeypatch.setenv("WALK_SCHEDULES_DIR", str(styles.parent / "walk_schedules"))  # Learn Walk Schedule's files


# ---------------------------------------------------------------- declarations


def test_table_is_not_empty_and_names_match():
    assert NODE_IDS
    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    for node_id, name in NODE_DISPLAY_NAME_MAPPINGS.items():
        assert isinstance(name, str) and name.strip(), node_id
    assert len(set(NODE_DISPLAY_NAME_MAPPINGS.values())) == len(NODE_DISPLAY_NAME_MAPPINGS), "duplicate display names"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_id_does_not_shadow_comfyui(node_id):
    assert node_id not in COMFY_BUILTIN_IDS


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_class_attributes(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert isinstance(getattr(cls, "DESCRIPTION", None), str) and cls.DESCRIPTION.strip()
    assert isinstance(cls.CATEGORY, str)
    assert cls.CATEGORY == ROOT_CATEGORY or cls.CATEGORY.startswith(ROOT_CATEGORY + "/"), cls.CATEGORY
    assert isinstance(cls.FUNCTION, str) and callable(getattr(cls, cls.FUNCTION, None))
    assert isinstance(cls.RETURN_TYPES, tuple) and cls.RETURN_TYPES
    assert all(isinstance(t, str) and t for t in cls.RETURN_TYPES)
    for optional in ("RETURN_NAMES", "OUTPUT_TOOLTIPS"):
        if hasattr(cls, optional):
            values = getattr(cls, optional)
            assert isinstance(values, tuple) and len(values) == len(cls.RETURN_TYPES), optional
            assert all(isinstance(v, str) and v.strip() for v in values), optional
    declared = cls.INPUT_TYPES()
    assert isinstance(declared, dict) and set(declared) <= {"required", "optional", "hidden"}


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_function_takes_exactly_the_declared_inputs(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
    names = [n for n in params if n != "self"]
    declared = sections(cls)
    takes_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name in declared["required"]:
        if keyword.iskeyword(name):  # e.g. ``class``: no parameter can be named so; it comes through **kwargs
            assert takes_kwargs, f"{node_id}.{cls.FUNCTION} needs **kwargs for the input {name!r}"
            continue
        assert name in names, f"{node_id}.{cls.FUNCTION} lacks required input {name}"
    for name in declared["optional"]:
        if keyword.iskeyword(name):
            assert takes_kwargs, f"{node_id}.{cls.FUNCTION} needs **kwargs for the input {name!r}"
            continue
        assert name in names, f"{node_id}.{cls.FUNCTION} lacks optional input {name}"
        assert params[name].default is not inspect.Parameter.empty, f"optional {name} needs a default"
    for name in names:
        p = params[name]
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if p.default is inspect.Parameter.empty:
            hidden = cls.INPUT_TYPES().get("hidden", {})
            assert name in declared["required"] or name in hidden, f"{node_id}: parameter {name} is not an input"


@pytest.mark.parametrize("node_id, kind, name, declaration", INPUTS, ids=INPUT_IDS)
def test_input_declaration(node_id, kind, name, declaration):
    assert name.isidentifier()
    assert isinstance(declaration, tuple) and len(declaration) == 2, declaration
    socket, options = declaration
    assert isinstance(options, dict)
    tooltip = options.get("tooltip")
    assert isinstance(tooltip, str) and tooltip.strip(), f"{node_id}.{name} has no tooltip"
    if isinstance(socket, (list, tuple)):  # a combo
        assert len(socket) > 0 and all(isinstance(c, str) for c in socket)
        assert len(set(socket)) == len(socket)
        if "default" in options:
            assert options["default"] in socket, f"{node_id}.{name}: default {options['default']!r} not a choice"
        return
    assert isinstance(socket, str) and socket
    if socket in ("INT", "FLOAT"):
        number = int if socket == "INT" else (int, float)
        default = options.get("default")
        assert isinstance(default, number) and not isinstance(default, bool), f"{node_id}.{name}: default {default!r}"
        lo, hi = options.get("min", default), options.get("max", default)
        assert lo <= default <= hi, f"{node_id}.{name}: default {default} outside {lo}..{hi}"
        if "step" in options:
            assert options["step"] > 0
    elif socket == "STRING":
        assert isinstance(options.get("default", ""), str)
    elif socket == "BOOLEAN":
        assert isinstance(options.get("default"), bool)


# ---------------------------------------------------------------- calling every node


def fallback_value(socket):
    """Small stand-ins for ComfyUI sockets that no pack node produces."""
    if socket == "IMAGE":
        return torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    if socket == "MODEL":
        return comfy_standins.ModelPatcher("eps")
    if socket == "CONDITIONING":
        return comfy_standins.conditioning(0.5)
    if socket == "VAE":
        return comfy_standins.VAE()
    raise LookupError(socket)


def produce(socket, depth=0):
    """A value for a socket: the output of a pack node that makes it (called with defaults)."""
    assert depth < 5, f"cannot build a {socket} input: the producers need each other"
    for node_id in sorted(NODE_IDS, key=lambda n: n not in PREFERRED_PRODUCERS):
        cls = NODE_CLASS_MAPPINGS[node_id]
        if socket in cls.RETURN_TYPES:
            outputs = call_node(node_id, depth=depth + 1)
            return outputs[cls.RETURN_TYPES.index(socket)]
    try:
        return fallback_value(socket)
    except LookupError:
        pytest.fail(f"no pack node produces a {socket} and the test has no stand-in for it")


def default_inputs(node_id, depth=0, **overrides):
    kwargs = {}
    for name, (socket, options) in sections(NODE_CLASS_MAPPINGS[node_id])["required"].items():
        if name in overrides:
            kwargs[name] = overrides[name]
        elif name in SMALL and socket in ("INT", "FLOAT"):
            kwargs[name] = SMALL[name]
        elif isinstance(socket, (list, tuple)):
            kwargs[name] = options.get("default", socket[0])
        elif socket in WIDGET_TYPES:
            kwargs[name] = options["default"]
        else:
            kwargs[name] = produce(socket, depth)
    kwargs.update({k: v for k, v in overrides.items() if k not in kwargs})
    return kwargs


# Optional sockets a node's default choices need connected (GuidanceStepEnergy's default energy, content,
# takes its picture from the optional image input; style takes none).
NEEDED_OPTIONAL = {"GuidanceStepEnergy": {"image": "IMAGE"}, "WalkVary": {"image": "IMAGE"}}
# Nodes whose defaults need a data source or would run for minutes: small settings for the test.
DEFAULT_OVERRIDES = {"LearnWalkSchedule": {"samples": 2, "evaluations": 2, "teacher_steps": 4, "width": 16,
                                           "height": 16},
                     "TrainWalkModel": {"references": "bricks", "size": 16, "width": 8, "levels": 2, "blocks": 1,
                                        "batch_size": 2, "steps": 2, "resume": False},
                     "WalkGuider": {"target": NODE_CLASS_MAPPINGS["TargetDistributionModel"]().make(
                         comfy_standins.ModelPatcher(), comfy_standins.conditioning(1.0),
                         comfy_standins.conditioning(0.0))[0]}}
# The cheap producer of a socket when several nodes make it.
PREFERRED_PRODUCERS = {"TargetDistributionMixture"}


def call_node(node_id, depth=0, **overrides):
    cls = NODE_CLASS_MAPPINGS[node_id]
    overrides = {**DEFAULT_OVERRIDES.get(node_id, {}), **overrides}
    needed = {k: produce(socket, depth) for k, socket in NEEDED_OPTIONAL.get(node_id, {}).items() if k not in overrides}
    return getattr(cls(), cls.FUNCTION)(**default_inputs(node_id, depth, **overrides), **needed)


def check_output(socket, value):
    if socket == "IMAGE":
        assert isinstance(value, torch.Tensor) and value.is_floating_point()
        assert value.ndim == 4 and value.shape[-1] == 3, tuple(value.shape)
        assert bool(torch.isfinite(value).all())
        assert float(value.min()) >= 0 and float(value.max()) <= 1
    elif socket == "LATENT":
        assert isinstance(value, dict) and isinstance(value.get("samples"), torch.Tensor)
        assert bool(torch.isfinite(value["samples"]).all())
    elif socket == "WALK_TARGET":
        assert isinstance(value, WalkTarget)
    elif socket == "WALK_GUIDANCE":
        assert isinstance(value, GuidanceChain)
    elif socket == "SIGMAS":
        assert isinstance(value, torch.Tensor) and value.ndim == 1
    else:
        assert value is not None


# Nodes whose outputs are ComfyUI objects (SAMPLER, GUIDER): they run on the stand-in ComfyUI modules.
NEEDS_COMFY = {"WalkSamplerSelect", "WalkGuider"}


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_every_node_runs_with_its_defaults(node_id, request):
    if node_id in NEEDS_COMFY:
        request.getfixturevalue("fake_comfy")
    cls = NODE_CLASS_MAPPINGS[node_id]
    outputs = call_node(node_id)
    assert isinstance(outputs, tuple) and len(outputs) == len(cls.RETURN_TYPES)
    for socket, value in zip(cls.RETURN_TYPES, outputs):
        check_output(socket, value)


# Choices that need an optional socket connected: (node, input, choice) -> {optional input: socket type}
OPTIONAL_FOR_CHOICE = {("GuidanceStepEnergy", "energy", "style"): {"style": "WALK_STYLE"}}


def values_for_choice(node_id, name, choice):
    """Inputs a choice needs changed: XY Plot Axis's values must be ones its chosen input takes (here the Walk
    Sampler input's default)."""
    if (node_id, name) == ("XYPlotAxis", "input"):
        return {"values": str(NODE_CLASS_MAPPINGS["WalkSampler"].INPUT_TYPES()["required"][choice][1]["default"])}
    return {}


@pytest.mark.parametrize("node_id, name, choice", COMBOS, ids=[f"{n}.{i}={c}" for n, i, c in COMBOS])
def test_every_combo_choice_runs(node_id, name, choice, monkeypatch, tmp_path, request):
    if node_id in NEEDS_COMFY:
        request.getfixturevalue("fake_comfy")
    cls = NODE_CLASS_MAPPINGS[node_id]
    extra = {k: produce(socket) for k, socket in OPTIONAL_FOR_CHOICE.get((node_id, name, choice), {}).items()}
    if (node_id, name, choice) == ("StyleEncoder", "encoder", "vgg19"):  # weights are local files: a random one
        from style_fakes import write_random_vgg19
        from rwalk.walk_core.style import encoders
        write_random_vgg19(tmp_path / encoders.VGG19_FILE)
        monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path)
    if (node_id, name, choice) == ("StyleEncoder", "encoder", "vgg19_adain"):  # likewise, without the real file
        from safetensors.torch import save_file
        from rwalk.walk_core.style import encoders
        from rwalk.walk_core.style.vgg_adain import VGG19_ADAIN_FILE, random_state
        save_file(random_state(), str(tmp_path / VGG19_ADAIN_FILE))
        monkeypatch.setattr(encoders, "PACK_WEIGHTS_DIR", tmp_path)
    outputs = call_node(node_id, **{name: choice}, **extra, **values_for_choice(node_id, name, choice))
    assert len(outputs) == len(cls.RETURN_TYPES)
    for socket, value in zip(cls.RETURN_TYPES, outputs):
        check_output(socket, value)


# ---------------------------------------------------------------- WalkSampler specifics


def sampler(**overrides):
    return call_node("WalkSampler", **overrides)


def kept_steps(steps, every):
    """Steps a trajectory keeps: every ``every``-th (none when 0) and always the last."""
    return len({i for i in range(steps) if every > 0 and i % every == 0} | {steps - 1})


def test_sampler_outputs_the_requested_size_and_seeds():
    image, latent, trajectory, *_ = sampler(width=24, height=16, batch_size=2, seed=9)
    assert tuple(image.shape) == (2, 16, 24, 3)
    assert tuple(latent["samples"].shape) == (2, 3, 16, 24)
    assert list(latent["seeds"]) == [9, 10]
    # the IMAGE is the LATENT's walk tensor moved from [-1, 1] BCHW to [0, 1] BHWC
    expected = ((latent["samples"].clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)
    torch.testing.assert_close(image, expected)


@pytest.mark.parametrize("every", [0, 1, 2, 5])
@pytest.mark.parametrize("steps", [1, 3])
def test_sampler_with_init_image(every, steps):
    init = torch.linspace(0, 1, 16 * 24).reshape(1, 16, 24, 1).expand(1, 16, 24, 3).contiguous()
    image, latent, trajectory, *_ = sampler(init_image=init, denoise=0.5, batch_size=2, steps=steps,
                                        trajectory_every=every, width=32, height=32)
    assert tuple(image.shape) == (2, 16, 24, 3), "the init's size wins over width/height"
    assert tuple(latent["samples"].shape) == (2, 3, 16, 24)
    assert tuple(trajectory.shape) == (kept_steps(steps, every) * 2, 16, 24, 3)


def test_low_denoise_stays_closer_to_the_init():
    g = torch.Generator().manual_seed(1)
    init = torch.rand(1, 16, 16, 3, generator=g)
    near = sampler(init_image=init, denoise=0.1, steps=4, seed=3)[0]
    far = sampler(init_image=init, denoise=1.0, steps=4, seed=3)[0]
    assert float((near - init).abs().mean()) < float((far - init).abs().mean())


def test_init_latent_wins_over_init_image():
    latent = {"samples": torch.zeros(1, 3, 8, 16)}
    image = torch.rand(1, 16, 16, 3)
    out = sampler(init_latent=latent, init_image=image, denoise=0.5)[0]
    assert tuple(out.shape[1:3]) == (8, 16)


def test_bad_walk_name_is_a_clear_error():
    with pytest.raises((KeyError, ValueError), match="euler"):
        sampler(walk="no-such-walk")


def test_mixture_node_weights_and_spread_scales_reach_the_exact_target():
    """The per-component weights and spread factors typed into the node are those of the exact mixture."""
    from rwalk.nodes import NODE_CLASS_MAPPINGS

    node = NODE_CLASS_MAPPINGS["TargetDistributionMixture"]()
    (target,) = node.build(detail=0.1, variation=0.2, weights="1,1,1,1,1,1,1,5", spread_scales="1,1,1,1,1,1,1,3",
                           structure_seed=0)
    mixture = target.at_size(8, 8).exact
    assert mixture.weights[-1] / mixture.weights[0] == pytest.approx(5)
    assert float(mixture.variances[-1, 0] / mixture.variances[0, 0]) == pytest.approx(9)  # (3 * 0.1)^2 / 0.1^2
    smooth = mixture.factors.square().sum(dim=(1, 2))  # total variance of the smooth part per component
    assert float(smooth[-1] / smooth[0]) == pytest.approx(9, rel=1e-6)
    with pytest.raises(ValueError, match="spread_scales"):
        node.build(detail=0.1, variation=0.2, weights="", spread_scales="1,2", structure_seed=0)
