"""User pictures in every Pillow mode load with their true values or are refused by name
(walk_core/picture_files.py, used by LoadImage and the training folders)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rwalk.models.data import load_folder
from rwalk.walk_core.picture_files import PictureFileError, frame_arrays, read_first_frame
from rwalk.walk_core.runner import LoadImage, RunnerPaths, WorkflowError, check_workflow, current_paths, use_paths
from rwalk.walk_core.runner.io_nodes import IO_NODE_CLASSES

GREY = np.array([[0, 64, 128], [192, 255, 7]], dtype=np.uint8)  # [H=2, W=3]
WIDE = np.array([[0, 1000, 30000], [40000, 65535, 257]], dtype=np.uint16)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "in").mkdir()
    with use_paths(RunnerPaths(tmp_path / "in", tmp_path / "out")):
        yield tmp_path / "in"


def load(folder, image: Image.Image, name: str, **save):
    image.save(folder / name, **save)
    assert LoadImage.VALIDATE_INPUTS(name) is True
    pictures, masks = LoadImage().load_image(name)
    assert pictures.dtype == torch.float32 and masks.dtype == torch.float32
    return pictures.numpy(), masks.numpy()


def grey3(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[None, ..., None], 3, axis=-1)


def test_sixteen_bit_grey_png_keeps_its_values(folder):
    """The reported bug: a 16-bit greyscale PNG (mode I;16) loaded as solid white."""
    pictures, masks = load(folder, Image.fromarray(WIDE), "wide.png")
    np.testing.assert_allclose(pictures, grey3(WIDE / 65535.0), atol=1e-6)
    assert not masks.any()


def test_sixteen_bit_big_endian_tiff_and_other_byte_orders(folder):
    big = Image.frombytes("I;16B", (3, 2), WIDE.astype(">u2").tobytes())
    pictures, _ = load(folder, big, "big.tif")
    np.testing.assert_allclose(pictures, grey3(WIDE / 65535.0), atol=1e-6)
    for mode in ("I;16L", "I;16N"):  # no file format writes these: read from memory
        frame = Image.frombytes(mode, (3, 2), WIDE.astype("<u2" if mode == "I;16L" else "=u2").tobytes())
        rgb, alpha = frame_arrays(frame, "mem", "test")
        np.testing.assert_allclose(rgb, grey3(WIDE / 65535.0)[0], atol=1e-6)
        assert alpha is None


@pytest.mark.parametrize("mode, name", [("1", "one.png"), ("L", "grey.png"), ("RGB", "rgb.png"),
                                        ("YCbCr", "ycc.tif")])
def test_eight_bit_modes(folder, mode, name):
    rgb8 = np.stack([GREY, 255 - GREY, GREY // 2], axis=-1)
    if mode == "1":
        image, expected = Image.fromarray(GREY > 100), grey3((GREY > 100).astype(np.float32))
    elif mode == "L":
        image, expected = Image.fromarray(GREY), grey3(GREY / 255.0)
    elif mode == "RGB":
        image, expected = Image.fromarray(rgb8), rgb8[None] / 255.0
    else:
        image = Image.fromarray(np.stack([GREY, np.full_like(GREY, 128), np.full_like(GREY, 128)], -1), "YCbCr")
        expected = grey3(GREY / 255.0)
    pictures, masks = load(folder, image, name)
    np.testing.assert_allclose(pictures, expected, atol=1.5 / 255)  # YCbCr -> RGB rounds
    assert not masks.any()


def test_cmyk(folder):
    cmyk = np.zeros((1, 3, 4), dtype=np.uint8)
    cmyk[0, 0, 0] = cmyk[0, 1, 1] = cmyk[0, 2, 3] = 255  # cyan, magenta, black
    pictures, _ = load(folder, Image.fromarray(cmyk, "CMYK"), "ink.tif")
    np.testing.assert_allclose(pictures[0, 0], [[0, 1, 1], [1, 0, 1], [0, 0, 0]])


def test_alpha_modes_give_the_inverted_alpha_as_mask(folder):
    alpha = np.array([[255, 0, 128], [64, 255, 0]], dtype=np.uint8)
    pictures, masks = load(folder, Image.fromarray(np.stack([GREY, alpha], -1), "LA"), "la.png")
    np.testing.assert_allclose(pictures, grey3(GREY / 255.0), atol=1e-6)
    np.testing.assert_allclose(masks, 1 - alpha[None] / 255.0, atol=1e-6)
    premultiplied = Image.fromarray(np.stack([(GREY.astype(int) * alpha // 255).astype(np.uint8), alpha], -1), "LA")
    rgb, a = frame_arrays(Image.frombytes("La", (3, 2), premultiplied.tobytes()), "mem", "test")
    visible = alpha > 100
    np.testing.assert_allclose(rgb[visible], grey3(GREY / 255.0)[0][visible], atol=2.5 / 255)
    np.testing.assert_allclose(a, alpha / 255.0)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_with_and_without_transparency(folder, transparent):
    image = Image.fromarray(np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    save = {"transparency": 1} if transparent else {}
    pictures, masks = load(folder, image, "p.png", **save)
    colours = np.eye(3)[[[0, 1, 2], [2, 1, 0]]]
    np.testing.assert_allclose(pictures[0], colours)
    hidden = np.array([[0, 1, 0], [0, 1, 0]], dtype=np.float32) if transparent else np.zeros((2, 3))
    np.testing.assert_allclose(masks[0], hidden)


def test_grey_with_a_transparent_value(folder):
    _, masks = load(folder, Image.fromarray(GREY), "trns.png", transparency=64)
    np.testing.assert_allclose(masks[0], (GREY == 64).astype(np.float32))


def test_integer_and_float_modes_read_their_values_or_are_refused_by_name(folder):
    pictures, _ = load(folder, Image.fromarray(WIDE.astype(np.int32)), "int.tif")
    np.testing.assert_allclose(pictures, grey3(WIDE / 65535.0), atol=1e-6)
    values = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    pictures, _ = load(folder, Image.fromarray(values), "float.tif")
    np.testing.assert_allclose(pictures, grey3(values), atol=1e-7)
    Image.fromarray(np.array([[-5, 70000]], dtype=np.int32)).save(folder / "big_int.tif")
    Image.fromarray(np.array([[0.0, 255.0]], dtype=np.float32)).save(folder / "big_float.tif")
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(folder / "nan.tif")
    for name, needle in [("big_int.tif", r"mode 'I'\) with values -5..70000; expected 16-bit values 0..65535"),
                         ("big_float.tif", r"mode 'F'\) with values 0..255; expected values in 0..1"),
                         ("nan.tif", r"mode 'F'\) with NaN or inf")]:
        with pytest.raises(PictureFileError, match=f"LoadImage: image '{name}'.*{name}.*{needle}"):
            LoadImage().load_image(name)


def test_modes_without_a_meaning_are_refused_before_anything_runs(folder):
    Image.new("LAB", (2, 2)).save(folder / "lab.tif")
    (folder / "text.png").write_text("not a picture")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "lab.tif"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(WorkflowError, match=r"node 1 \(LoadImage\), input 'image'.*lab.tif has Pillow mode 'LAB'"):
        check_workflow(prompt, IO_NODE_CLASSES, paths=current_paths())
    prompt["1"]["inputs"]["image"] = "text.png"
    with pytest.raises(WorkflowError, match=r"text.png is not a readable picture"):
        check_workflow(prompt, IO_NODE_CLASSES, paths=current_paths())
    with pytest.raises(PictureFileError, match="'HSV'.*expected one of"):
        frame_arrays(Image.new("HSV", (2, 2)), "mem.tif", "test")


def test_animated_files_give_every_frame_to_load_image_and_the_first_to_training(folder):
    frames = [Image.fromarray(np.full((4, 5), v, dtype=np.uint8)) for v in (0, 120, 250)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    pictures, masks = LoadImage().load_image("anim.gif")
    assert pictures.shape == (3, 4, 5, 3) and masks.shape == (3, 4, 5)
    np.testing.assert_allclose(pictures[:, 0, 0, 0], [0, 120 / 255, 250 / 255], atol=1e-6)
    rgb, _ = read_first_frame(folder / "anim.gif", "training data")
    np.testing.assert_allclose(rgb, 0.0)
    pages = [Image.fromarray(GREY), Image.new("L", (7, 7), 9), Image.fromarray(255 - GREY)]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:])
    pictures, _ = LoadImage().load_image("pages.tif")  # the 7x7 page is skipped with a warning
    np.testing.assert_allclose(pictures[:, ..., 0], np.stack([GREY, 255 - GREY]) / 255.0, atol=1e-6)


def test_training_folders_read_sixteen_bit_pictures_too(tmp_path):
    Image.fromarray(WIDE).save(tmp_path / "wide.png")
    (picture,) = load_folder(tmp_path).pictures
    torch.testing.assert_close(picture, torch.from_numpy(grey3(WIDE / 65535.0)[0]).permute(2, 0, 1).float() * 2 - 1)


def _png_header_only(path, width, height):
    """A PNG whose IHDR claims ``width`` x ``height`` 8-bit RGB, with no pixel data (signature, IHDR, IEND)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_a_huge_header_gets_the_packs_limit_message_not_pillows(folder):
    _png_header_only(folder / "huge.png", 100000, 100000)
    before = Image.MAX_IMAGE_PIXELS
    message = LoadImage.VALIDATE_INPUTS("huge.png")
    assert isinstance(message, str) and "WALK_MAX_INPUT_PIXELS" in message, message
    assert "decompression bomb" not in message.lower()
    with pytest.raises(PictureFileError, match="WALK_MAX_INPUT_PIXELS"):
        read_first_frame(folder / "huge.png", "test")
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's own setting is restored
