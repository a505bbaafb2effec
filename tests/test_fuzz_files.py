"""Fuzzing the files the pack reads (issue 29): safetensors models and style codes with hostile headers,
shapes, dtypes and metadata; PNGs with hostile text chunks.

Property: a file either loads or is refused with a ValueError (a LimitError over a resource limit) or, for a
PNG, the runner's WorkflowError -- never another exception, and never a network or text larger than the
limits, which are set small here so that a missed check shows as a slow or failing example. Budget and the
long run: tests/fuzz_support.py.
"""
from __future__ import annotations

import importlib
import json
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from fuzz_support import fuzz_settings, mutate, outcomes, to_text  # noqa: F401 (outcomes: a fixture)
from rwalk.models.checkpoint import load_model, save_model
from rwalk.models.unet import EDMDenoiser, UNetConfig
from rwalk.walk_core import limits
from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, WorkflowError, load_workflow, plan_workflow, save_png
from rwalk.walk_core.style import encode_style, load_style, save_style

ROOT = Path(__file__).resolve().parents[1]
TABLE = {**importlib.import_module("rwalk.nodes").NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
SMALL = dict(max_file_mb=1.0, max_network_params=200_000, max_workflow_mb=1.0)


class Bases(dict):
    """The valid files the mutations start from (kind -> bytes) and a folder; shown briefly in failure reports."""

    def __init__(self, folder: Path, blobs: dict):
        super().__init__(blobs)
        self.folder = folder

    def __repr__(self):
        return f"Bases({', '.join(f'{k}: {len(v)} bytes' for k, v in self.items())})"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_files")
    model = save_model(EDMDenoiser(UNetConfig(width=8, mults=(1,), blocks=1)), folder / "m.safetensors")
    pictures = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    style = save_style(encode_style(pictures, "random", "gram", encoder_config={"widths": [4, 8]}),
                       folder / "s.safetensors")
    return Bases(folder, {"model": model.read_bytes(), "style": style.read_bytes()})


def split(blob: bytes):
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + length]), blob[8 + length:]


def join(header, data: bytes) -> bytes:
    text = to_text(header).encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(text)) + text + data


def hostile_safetensors(data, blob: bytes) -> bytes:
    header, tensors = split(blob)
    how = data.draw(st.sampled_from(["header", "metadata", "truncate", "length", "flip"]), label="how")
    if how == "header":
        return join(mutate(data, header, "header")[0], tensors)
    if how == "metadata":
        meta = header.setdefault("__metadata__", {})
        key = data.draw(st.sampled_from(sorted(meta) + ["format"]), label="metadata key")
        try:
            inner = json.loads(meta.get(key, "null"))
        except ValueError:
            inner = meta.get(key)
        meta[key] = to_text(mutate(data, inner, "metadata")[0])
        return join(header, tensors)
    whole = join(header, tensors)
    if how == "truncate":
        return whole[: data.draw(st.integers(0, len(whole) - 1), label="cut")]
    if how == "length":
        return struct.pack("<Q", data.draw(st.integers(0, 2 ** 64 - 1), label="length")) + whole[8:]
    at = data.draw(st.integers(0, len(whole) - 1), label="flip at")
    return whole[:at] + bytes([whole[at] ^ data.draw(st.integers(1, 255), label="bits")]) + whole[at + 1:]


@fuzz_settings(scale=2)
@given(data=st.data(), kind=st.sampled_from(["model", "style"]))
def test_hostile_safetensors_load_or_raise_value_error(data, kind, bases, outcomes):
    path = Path(tempfile.mkdtemp(dir=bases.folder)) / f"{kind}.safetensors"
    path.write_bytes(hostile_safetensors(data, bases[kind]))
    try:
        with limits.use_limits(**SMALL):
            (load_model if kind == "model" else load_style)(path)
        result = "loaded"
    except limits.LimitError:
        result = "over a limit"
    except ValueError as error:
        assert str(path) in str(error), "the error names the file"
        result = "refused"
    outcomes(f"hostile {kind} files").add(result)


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def text_payload(data, kind: bytes, key: bytes, text: bytes) -> bytes:
    if kind == b"tEXt":
        return key + b"\0" + text
    if kind == b"zTXt":
        return key + b"\0\0" + zlib.compress(text)
    compressed = data.draw(st.booleans(), label="iTXt compressed")
    return key + b"\0" + bytes([compressed, 0]) + b"en\0\0" + (zlib.compress(text) if compressed else text)


@fuzz_settings()
@given(data=st.data())
def test_pngs_with_hostile_text_chunks_load_or_raise_workflow_error(data, bases, outcomes):
    folder = bases.folder
    ui = json.loads((ROOT / "workflows" / "exact_mixture.json").read_text(encoding="utf-8"))
    path = Path(tempfile.mkdtemp(dir=folder)) / "p.png"
    save_png(path, np.zeros((4, 4, 3), np.uint8), extra_pnginfo={"workflow": ui})
    blob = path.read_bytes()
    end = blob.rindex(b"IEND") - 4
    kind = data.draw(st.sampled_from([b"tEXt", b"zTXt", b"iTXt"]), label="chunk")
    key = data.draw(st.sampled_from([b"prompt", b"workflow", b"x", b"", b"k" * 90]), label="key")
    what = data.draw(st.sampled_from(["mutated", "bytes", "bomb", "deep"]), label="payload")
    if what == "mutated":
        text = to_text(mutate(data, ui, "png")[0]).encode("utf-8", "surrogatepass")
    elif what == "bytes":
        text = data.draw(st.binary(max_size=64), label="bytes")
    elif what == "bomb":
        text = b" " * (2 * 1024 * 1024)  # inflates past the 1 MiB workflow limit set here
    else:
        text = b"[" * 50_000 + b"]" * 50_000
    extra = chunk(kind, text_payload(data, kind, key, text))
    if data.draw(st.sampled_from([False, False, False, True]), label="damage"):
        at = data.draw(st.integers(0, len(extra) - 1), label="damage at")
        extra = extra[:at] + bytes([extra[at] ^ 0x5A]) + extra[at + 1:]
    path.write_bytes(blob[:end] + extra + blob[end:])
    try:
        with limits.use_limits(**SMALL):
            api, _ = load_workflow(path, TABLE)
            plan_workflow(api, TABLE, paths=RunnerPaths(folder / "input", folder / "output"))
        result = "loaded"
    except WorkflowError:
        result = "refused"
    outcomes("hostile PNG text chunks").add(result)
