"""The CLIP vision style encoder (walk_core/style/clip_vision.py) and StyleEncoder's clip_vision input.

``FakeClipVision`` mimics ComfyUI's ``comfy.clip_vision.ClipVisionModel`` (attributes image_size, image_mean,
image_std, return_all_hidden_states, load_device, dtype, model, patcher; encode_image returning an Output with
last_hidden_state, penultimate_hidden_states, image_embeds, mm_projected) around a tiny random ViT with the
module layout and ``forward(pixel_values, attention_mask=None, intermediate_output=None)`` contract of ComfyUI's
CLIPVisionModelProjection (CLIP with a class token; SigLIP without) and Dinov2Model (no "all"). Written for
these tests; no ComfyUI code and no ComfyUI import.
"""
from __future__ import annotations

import inspect
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rwalk.nodes.style import StyleEncoder, comfy_loader
from rwalk.walk_core import GuidanceChain, WalkRequest, run_walk
from rwalk.walk_core.guidance.energy import EnergyTerm
from rwalk.walk_core.style import (STATISTICS, ClipVisionEncoder, StyleCode, build_encoder, encode_style, load_style,
                                   save_style, style_distance)
from rwalk.walk_core.style.clip_vision import style_layers, window_starts
from rwalk.walk_core.style.statistics import PROJECTIONS, QUANTILES
from rwalk.walk_core.targets.image_mixture import ImageMixtureSpec, image_mixture_target
from rwalk.walk_core.targets.patterns import pattern

SIZE, PATCH, WIDTH, DEPTH = 32, 8, 16, 6
GRID = SIZE // PATCH


# ---------------------------------------------------------------- a ComfyUI-like CLIP vision object


class Block(nn.Module):
    def __init__(self, d: int, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.layer_norm1(x)
        q, k, v = (p(h).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        x += self.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))  # in place,
        x += self.fc2(F.gelu(self.fc1(self.layer_norm2(x))))  # as ComfyUI's CLIP blocks do
        return x


class Blocks(nn.Module):
    """ComfyUI's encoder contract: intermediate_output None, an index (negative from the end) or "all"."""

    def __init__(self, d: int, depth: int, attr: str, takes_all: bool):
        super().__init__()
        self.attr, self.takes_all = attr, takes_all
        setattr(self, attr, nn.ModuleList(Block(d) for _ in range(depth)))

    def forward(self, x, intermediate_output=None):
        blocks = getattr(self, self.attr)
        every = intermediate_output == "all" and self.takes_all
        if intermediate_output is not None and not every and intermediate_output < 0:  # "all" raises here (DINOv2)
            intermediate_output = len(blocks) + intermediate_output
        kept = []
        intermediate = None
        for i, block in enumerate(blocks):
            x = block(x)
            if every:
                kept.append(x.unsqueeze(1).clone())
            elif i == intermediate_output:
                intermediate = x.clone()
        return x, torch.cat(kept, dim=1) if every else intermediate


class Embeddings(nn.Module):
    def __init__(self, d: int, class_token: bool):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d, PATCH, stride=PATCH, bias=not class_token)
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.1) if class_token else None
        self.position_embedding = nn.Embedding(GRID * GRID + int(class_token), d)

    def forward(self, pixel_values):
        x = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        if self.class_embedding is not None:
            x = torch.cat([self.class_embedding.to(x).expand(x.shape[0], 1, -1), x], dim=1)
        return x + self.position_embedding.weight.to(x)


class VisionTransformer(nn.Module):  # CLIPVision's layout
    def __init__(self, d, depth, siglip):
        super().__init__()
        self.siglip = siglip
        self.embeddings = Embeddings(d, class_token=not siglip)
        self.pre_layrnorm = nn.Identity() if siglip else nn.LayerNorm(d)
        self.encoder = Blocks(d, depth, "layers", takes_all=True)
        self.post_layernorm = nn.LayerNorm(d)

    def forward(self, pixel_values, attention_mask=None, intermediate_output=None):
        x, i = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)), intermediate_output=intermediate_output)
        if self.siglip:
            x = self.post_layernorm(x)
            return x, i, x
        return x, i, self.post_layernorm(x[:, 0])


class ModelProjection(nn.Module):  # CLIPVisionModelProjection's layout
    def __init__(self, d, depth, siglip):
        super().__init__()
        self.vision_model = VisionTransformer(d, depth, siglip)
        self.visual_projection = nn.Linear(d, 8, bias=False)

    def forward(self, *args, **kwargs):
        x = self.vision_model(*args, **kwargs)
        return x[0], x[1], self.visual_projection(x[2]), None


class DinoLike(nn.Module):  # Dinov2Model's layout: encoder.layer, integer intermediate_output only
    def __init__(self, d, depth):
        super().__init__()
        self.embeddings = Embeddings(d, class_token=True)
        self.encoder = Blocks(d, depth, "layer", takes_all=False)
        self.layernorm = nn.LayerNorm(d)

    def forward(self, pixel_values, attention_mask=None, intermediate_output=None):
        x, i = self.encoder(self.embeddings(pixel_values), intermediate_output=intermediate_output)
        x = self.layernorm(x)
        return x, i, x[:, 0], None


class Output:
    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, item):
        setattr(self, key, item)


class FakeClipVision:
    """The ClipVisionModel interface around a tiny random ViT (weights from ``seed``)."""

    def __init__(self, model_type: str = "clip_vision_model", depth: int = DEPTH, seed: int = 0):
        torch.manual_seed(seed)
        self.image_size = SIZE
        self.image_mean = [0.48145466, 0.4578275, 0.40821073]
        self.image_std = [0.26862954, 0.26130258, 0.27577711]
        self.return_all_hidden_states = model_type == "siglip_vision_model"
        self.load_device, self.dtype = torch.device("cpu"), torch.float32
        model = DinoLike(WIDTH, depth) if model_type == "dinov2" else ModelProjection(
            WIDTH, depth, siglip=model_type == "siglip_vision_model")
        self.model = model.eval()
        self.patcher = object()  # ComfyUI's ModelPatcher; only a ComfyUI hook would use it

    def encode_image(self, image, crop=True):
        pixels = image.movedim(-1, 1)
        pixels = F.interpolate(pixels, size=(SIZE, SIZE), mode="bicubic", antialias=True)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (self.image_mean, self.image_std))
        out = self.model(pixel_values=((pixels - mean) / std).float(),
                         intermediate_output="all" if self.return_all_hidden_states else -2)
        result = Output()
        result["last_hidden_state"], result["image_embeds"], result["mm_projected"] = out[0], out[2], out[3]
        result["penultimate_hidden_states"] = out[1][:, -2] if self.return_all_hidden_states else out[1]
        return result


def picture(name: str, h: int = 40, w: int = 40) -> torch.Tensor:
    return pattern(name, h, w)[None] * 2 - 1  # [1, 3, h, w] in [-1, 1]


def comfy_image(name: str, size: int = 40) -> torch.Tensor:
    return pattern(name, size, size).permute(1, 2, 0)[None]  # [1, H, W, 3] in [0, 1]


# ---------------------------------------------------------------- the fake is faithful enough


def test_the_fake_answers_like_comfyui():
    vision = FakeClipVision()
    out = vision.encode_image(comfy_image("dots"))
    assert out["last_hidden_state"].shape == (1, GRID * GRID + 1, WIDTH)
    assert out.penultimate_hidden_states.shape == (1, GRID * GRID + 1, WIDTH) and out.image_embeds.shape == (1, 8)
    with pytest.raises(TypeError):  # DINOv2's encoder compares the index with 0
        FakeClipVision("dinov2").model(pixel_values=torch.zeros(1, 3, SIZE, SIZE), intermediate_output="all")


# ---------------------------------------------------------------- features


def test_layers_spread_through_the_depth():
    assert style_layers(32) == (7, 15, 23, 30)  # CLIP ViT-H: blocks 8, 16, 24, 31 of 32
    assert style_layers(24) == (5, 11, 17, 22)
    assert style_layers(DEPTH) == (1, 2, 3, 4)
    assert style_layers(1) == (0,)
    assert window_starts(32, 32) == [0] and window_starts(80, 32) == [0, 24, 48]


@pytest.mark.parametrize("model_type", ["clip_vision_model", "siglip_vision_model", "dinov2"])
def test_features_are_patch_maps_and_deterministic(model_type):
    net = ClipVisionEncoder.wrap(FakeClipVision(model_type))
    assert net.layers == style_layers(DEPTH) and net.takes_all == (model_type != "dinov2")
    x = torch.cat([picture("rings"), picture("checker")])
    first, again = net.features(x), net.features(x)
    assert len(first) == len(net.layers)
    for a, b in zip(first, again):
        assert a.shape == (2, WIDTH, GRID, GRID) and a.dtype == x.dtype and torch.equal(a, b)
        assert bool(torch.isfinite(a).all())
    single = net.features(x[1:])  # an item's maps do not depend on its batch
    assert all(torch.allclose(a[1:], s, atol=1e-5) for a, s in zip(first, single))


def test_non_square_pictures_are_covered_by_windows():
    net = ClipVisionEncoder.wrap(FakeClipVision())
    x = picture("stripes", 32, 80).requires_grad_(True)  # 3 windows of 32 along the width
    maps = net.features(x)
    assert all(m.shape == (1, WIDTH, GRID, 3 * GRID) for m in maps)
    (grad,) = torch.autograd.grad(sum(m.square().sum() for m in maps), x)
    columns = grad.abs().sum(dim=(0, 1, 2))  # [80]: every column of the picture is seen
    assert bool((columns > 0).all())


@pytest.mark.parametrize("statistics", STATISTICS)
def test_statistics_have_the_expected_shapes(statistics):
    code = encode_style(torch.cat([picture("dots"), picture("hills")]), ClipVisionEncoder.wrap(FakeClipVision()),
                        statistics, weights=(1.0, 3.0))
    assert isinstance(code.encoder, ClipVisionEncoder) and code.encoder_name == "clip_vision"
    assert code.layers == len(style_layers(DEPTH)) and code.weights == (0.25, 0.75)
    shapes = {"gram": (WIDTH, WIDTH), "mean": (WIDTH,), "std": (WIDTH,), "swd": (PROJECTIONS, QUANTILES)}
    for key, value in code.stats.items():
        assert value.shape == shapes[key.split(".")[0]], key
    assert all(v.shape == (WIDTH, PROJECTIONS) for v in code.proj.values())
    again = encode_style(torch.cat([picture("dots"), picture("hills")]), ClipVisionEncoder.wrap(FakeClipVision()),
                         statistics, weights=(1.0, 3.0))
    assert all(torch.equal(code.stats[k], again.stats[k]) for k in code.stats)
    d = style_distance(code, torch.cat([picture("dots"), picture("rings")]))
    assert d.shape == (2,) and bool(torch.isfinite(d).all())


# ---------------------------------------------------------------- gradients


def style_gradient(vision, statistics="all"):
    code = encode_style(picture("stripes"), ClipVisionEncoder.wrap(vision), statistics)
    x = picture("checker").repeat(2, 1, 1, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(style_distance(code, x).sum(), x)
    return grad


@pytest.mark.parametrize("model_type", ["clip_vision_model", "siglip_vision_model", "dinov2"])
def test_style_distance_gradients_flow_through_the_model(model_type):
    grad = style_gradient(FakeClipVision(model_type))
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


def test_the_gradient_is_the_derivative_despite_in_place_residuals():
    vision = FakeClipVision(seed=5)
    x = torch.zeros(1, 3, SIZE, SIZE, requires_grad=True)
    with pytest.raises(RuntimeError, match="inplace"):  # what a plain backward through the blocks meets
        torch.autograd.grad(vision.model(pixel_values=x, intermediate_output="all")[1].sum(), x)
    code = encode_style(picture("stripes"), ClipVisionEncoder.wrap(vision), "all")
    x = picture("checker")
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(style_distance(code, xg).sum(), xg)
    v, eps = grad / grad.norm(), 1e-2
    with torch.no_grad():
        fd = (style_distance(code, x + eps * v) - style_distance(code, x - eps * v)) / (2 * eps)
    assert float(fd) == pytest.approx(float(grad.norm()), rel=1e-2)


def test_inference_mode_weights_still_give_gradients_and_the_same_ones(caplog):
    """ComfyUI loads models under torch.inference_mode: those weights cannot be saved for backward."""
    with torch.inference_mode():
        frozen = FakeClipVision(seed=3)
    weight = frozen.model.vision_model.embeddings.patch_embedding.weight
    assert weight.is_inference()
    with pytest.raises(RuntimeError, match="Inference tensors"):  # what a direct call would meet
        x = torch.zeros(1, 3, SIZE, SIZE, requires_grad=True)
        torch.autograd.grad(frozen.model(pixel_values=x)[0].sum(), x)
    plain = style_gradient(FakeClipVision(seed=3))
    with caplog.at_level("INFO"), torch.inference_mode(False), torch.enable_grad():
        grad = style_gradient(frozen)
    assert "plain copies" in caplog.text
    assert torch.allclose(grad, plain, rtol=1e-4, atol=1e-7)
    assert float(grad.abs().sum()) > 0


def test_style_guidance_with_a_clip_vision_code_runs_a_walk():
    size = 24
    code = encode_style(picture("stripes", size, size), ClipVisionEncoder.wrap(FakeClipVision()))
    target = image_mixture_target(ImageMixtureSpec(), size, size)
    request = WalkRequest(walk="euler_ancestral", steps=3, seed=1, batch_size=2)
    result = run_walk(target, request, GuidanceChain().plus(EnergyTerm(weight=0.5, energy="style", style=code)))
    assert result.x.shape == (2, 3, size, size) and bool(torch.isfinite(result.x).all())


# ---------------------------------------------------------------- refusals


def test_objects_without_the_interface_are_refused_clearly():
    class NoModel:
        image_size, image_mean, image_std = 32, [0.5] * 3, [0.5] * 3

    with pytest.raises(ValueError, match="lacks model"):
        ClipVisionEncoder.wrap(NoModel())
    odd = FakeClipVision()
    odd.model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="vision_model.encoder.layers"):
        ClipVisionEncoder.wrap(odd)
    small = FakeClipVision()
    small.image_std = [0.5, 0.0, 0.5]
    with pytest.raises(ValueError, match="image_std"):
        ClipVisionEncoder.wrap(small)
    with pytest.raises(ValueError, match="at least 16 px"):
        ClipVisionEncoder.wrap(FakeClipVision()).features(torch.zeros(1, 3, 8, 40))
    with pytest.raises(ValueError, match="needs a CLIP vision model"):
        build_encoder("clip_vision")
    with pytest.raises(ValueError, match="encoder_config"):
        encode_style(picture("dots"), ClipVisionEncoder.wrap(FakeClipVision()), encoder_config={"seed": 1})


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("statistics", ["gram", "all"])
def test_a_saved_clip_vision_code_needs_its_model_to_load(tmp_path, statistics):
    vision = FakeClipVision()
    code = encode_style(torch.cat([picture("dots"), picture("hills")]), ClipVisionEncoder.wrap(vision), statistics)
    path = save_style(code, tmp_path / "clip.safetensors")
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["encoder"] == "clip_vision"
    with pytest.raises(ValueError, match=r"made with a CLIP vision model.*clip_vision=model"):
        load_style(path)
    back = load_style(path, clip_vision=vision)
    assert back == code and back.encoder_config == code.encoder_config
    assert all(torch.equal(back.stats[k], code.stats[k]) for k in code.stats)
    x = picture("rings")
    assert torch.equal(style_distance(back, x), style_distance(code, x))
    with pytest.raises(ValueError, match=r"not the one.*depth: file 6, model 4"):
        load_style(path, clip_vision=FakeClipVision(depth=4))
    random_code = save_style(encode_style(picture("dots")), tmp_path / "random.safetensors")
    with pytest.raises(ValueError, match="made with encoder 'random'"):
        load_style(random_code, clip_vision=vision)
    assert load_style(random_code).encoder_name == "random"  # unchanged without a model


# ---------------------------------------------------------------- the node


def test_node_declares_clip_vision_last_among_its_optional_inputs():
    declared = StyleEncoder.INPUT_TYPES()
    assert list(declared["optional"])[-1] == "clip_vision"
    socket, options = declared["optional"]["clip_vision"]
    assert socket == "CLIP_VISION" and "replaces the encoder" in options["tooltip"]
    assert "clip_vision" in StyleEncoder.DESCRIPTION
    assert inspect.signature(StyleEncoder.encode).parameters["clip_vision"].default is None


def test_node_with_clip_vision_makes_a_clip_vision_walk_style():
    vision = FakeClipVision()
    images = torch.cat([comfy_image("dots"), comfy_image("rings")])
    (code,) = StyleEncoder().encode(images, "vgg19", "mean_std", "1, 3", 4, clip_vision=vision)  # encoder ignored
    assert isinstance(code, StyleCode) and isinstance(code.encoder, ClipVisionEncoder)
    assert code.encoder_name == "clip_vision" and code.encoder.vision is vision and code.weights == (0.25, 0.75)
    assert code.encoder_config["layers"] == list(style_layers(DEPTH))
    (plain,) = StyleEncoder().encode(images, "random", "mean_std", "", 0)
    assert plain.encoder_name == "random"
    # a constant where the CLIP_VISION link belongs: refused by the check every node's function makes first
    with pytest.raises(ValueError, match="StyleEncoder: input 'clip_vision' must be linked to a CLIP_VISION output"):
        StyleEncoder().encode(images, "random", "gram", "", 0, clip_vision="not a model")


def test_nothing_imports_comfyui():
    assert comfy_loader(FakeClipVision()) is None  # headless: no ComfyUI to load weights with
    assert comfy_loader(object()) is None
    assert not [m for m in sys.modules if m.split(".")[0] in ("comfy", "comfy_extras", "folder_paths")]
