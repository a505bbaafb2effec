"""Procedural references: deterministic by seed, valid pictures at every size, structure at several scales,
colour, clear errors, and the ReferenceImage node's IMAGE layout."""
import pytest
import torch
import torch.nn.functional as F

from rwalk.nodes.references import ReferenceImage
from rwalk.walk_core.references import MAX_SIZE, MIN_SIZE, REFERENCES, reference_image

NAMES = REFERENCES.names()
EXPECTED = {"painting", "stained_glass", "marble", "bricks", "foliage", "photo"}


def luminance(image):
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None, None]


def coarse_std(image):
    """Spatial std of the luminance after a 4x box blur-downsample: structure at large scales."""
    return float(F.avg_pool2d(luminance(image), 4).std())


def fine_energy(image):
    """RMS of the luminance minus its 2x box-blurred copy: structure at the pixel scale."""
    lum = luminance(image)
    return float((lum - F.interpolate(F.avg_pool2d(lum, 2), scale_factor=2, mode="nearest")).pow(2).mean().sqrt())


def colourfulness(image):
    """(spread of the channel means, mean HSV saturation)."""
    means = image.mean(dim=(1, 2))
    hi, lo = image.max(0).values, image.min(0).values
    return float(means.max() - means.min()), float(((hi - lo) / hi.clamp_min(1e-6)).mean())


def test_the_registry_holds_the_promised_references_painting_first():
    assert EXPECTED <= set(NAMES)
    assert NAMES[0] == "painting"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_picture_other_seed_other_picture(name):
    a = reference_image(name, 48, 40, seed=3)
    b = reference_image(name, 48, 40, seed=3)
    c = reference_image(name, 48, 40, seed=4)
    assert torch.equal(a, b)
    assert float((a - c).abs().mean()) > 0.01


@pytest.mark.parametrize("name", NAMES)
def test_the_global_random_state_is_left_alone(name):
    state = torch.get_rng_state()
    reference_image(name, 24, 16, seed=1)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("size", [(16, 16), (40, 24), (24, 72), (16, 200)])
@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_range_at_every_size(name, size):
    width, height = size
    for image in (REFERENCES[name](width, height, 0), reference_image(name, width, height, 7)):
        assert tuple(image.shape) == (3, height, width)
        assert image.dtype == torch.float32
        assert bool(torch.isfinite(image).all())
        assert float(image.min()) >= 0 and float(image.max()) <= 1


# Measured on every reference (seeds 0-5, 256x256 and 64x48): coarse std >= 0.042, fine energy >= 0.021,
# channel-mean spread >= 0.025 with saturation >= 0.1 (and one of them well above: 0.05 / 0.15). The bounds
# below keep about a factor of 2 of margin; a flat or smooth picture fails them (see the control test).
MIN_COARSE_STD, MIN_FINE_ENERGY = 0.02, 0.008
MIN_CHANNEL_SPREAD, MIN_SATURATION = 0.05, 0.15


@pytest.mark.parametrize("size, seed", [((256, 256), 0), ((96, 64), 1)])
@pytest.mark.parametrize("name", NAMES)
def test_structure_at_several_scales_and_colour(name, size, seed):
    image = reference_image(name, *size, seed=seed)
    assert coarse_std(image) > MIN_COARSE_STD, "no large-scale structure"
    assert fine_energy(image) > MIN_FINE_ENERGY, "no pixel-scale detail"
    spread, saturation = colourfulness(image)
    assert spread > MIN_CHANNEL_SPREAD or saturation > MIN_SATURATION, "a grey picture"


def test_the_measures_reject_flat_smooth_and_grey_pictures():
    flat = torch.full((3, 64, 64), 0.5)
    ramp = torch.linspace(0, 1, 64).view(1, 1, -1).expand(3, 64, 64)
    noise_grey = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0)).expand(3, 64, 64)
    assert coarse_std(flat) < MIN_COARSE_STD and fine_energy(flat) < MIN_FINE_ENERGY
    assert fine_energy(ramp) < MIN_FINE_ENERGY
    spread, saturation = colourfulness(noise_grey)
    assert spread < MIN_CHANNEL_SPREAD and saturation < MIN_SATURATION


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="reference_image: name='nope'") as info:
        reference_image("nope", 32, 32)
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("field, value", [("width", MIN_SIZE - 1), ("width", MAX_SIZE + 1), ("height", 0),
                                          ("height", 20.5), ("width", "64")])
def test_bad_sizes_name_the_value_and_the_range(field, value):
    size = {"width": 32, "height": 32, field: value}
    with pytest.raises(ValueError, match=rf"reference_image: {field}={value!r}.*{MIN_SIZE} to {MAX_SIZE}"):
        reference_image("marble", size["width"], size["height"])


@pytest.mark.parametrize("seed", [-1, 1.5])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match=rf"reference_image: seed={seed!r}"):
        reference_image("bricks", 32, 32, seed)


# ---------------------------------------------------------------- the node


def test_node_declaration():
    declared = ReferenceImage.INPUT_TYPES()["required"]
    names, options = declared["reference"]
    assert list(names) == NAMES and options["default"] == "painting"
    for size in ("width", "height"):
        kind, opts = declared[size]
        assert kind == "INT" and (opts["default"], opts["min"], opts["max"], opts["step"]) == (256, 16, 1024, 8)
    assert declared["batch_size"][1]["min"] == 1 and declared["batch_size"][1]["max"] == 16
    assert ReferenceImage.RETURN_TYPES == ("IMAGE",)
    assert ReferenceImage.CATEGORY.endswith("/references")


def test_node_outputs_comfyui_image_layout_and_per_item_seeds():
    (image,) = ReferenceImage().make(reference="stained_glass", width=40, height=24, seed=5, batch_size=3)
    assert tuple(image.shape) == (3, 24, 40, 3) and image.dtype == torch.float32
    for i in range(3):
        expected = reference_image("stained_glass", 40, 24, seed=5 + i).permute(1, 2, 0)
        assert torch.equal(image[i], expected)


@pytest.mark.parametrize("field, value", [("reference", "nope"), ("width", 8), ("height", 2048), ("batch_size", 0),
                                          ("seed", -3)])
def test_node_errors_name_the_node_and_input(field, value):
    inputs = {"reference": "marble", "width": 32, "height": 32, "seed": 0, "batch_size": 1, field: value}
    with pytest.raises(ValueError, match=rf"ReferenceImage: {field}="):
        ReferenceImage().make(**inputs)
