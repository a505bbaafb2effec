"""A safetensors file's header -- tensor names, dtypes, shapes and metadata -- read and checked alone.

A safetensors file is an 8-byte little-endian header length, a JSON header and the raw tensor data. Reading
only the header lets a loader refuse a file before any tensor is read or any network is built from its
metadata: a file over the size limit (``max_file_mb``, env ``WALK_MAX_FILE_MB``), a header that does not
describe its data, integer tensors where weights belong, or shapes that do not fit the architecture.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from .limits import check_file_size

#: Bytes per element of every safetensors dtype.
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: torch's names of the safetensors dtypes, for messages.
TORCH_NAMES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn",
               "I16": "int16", "U16": "uint16", "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U32": "uint32",
               "F32": "float32", "I64": "int64", "U64": "uint64", "F64": "float64"}
MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit on the JSON header


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: Tuple[int, ...]


@dataclass(frozen=True)
class Header:
    tensors: Dict[str, TensorEntry]
    metadata: Dict[str, str]


def _bad(who: str, message: str) -> ValueError:
    return ValueError(f"{who}: not a readable safetensors file ({message}); is it truncated or damaged?")


def _entry(name: str, raw, data_size: int, who: str) -> Tuple[TensorEntry, Tuple[int, int]]:
    if not isinstance(raw, dict):
        raise _bad(who, f"tensor {name!r} is described by {type(raw).__name__}, not an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise _bad(who, f"tensor {name!r} has dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                for n in shape):
        raise _bad(who, f"tensor {name!r} has shape {shape!r}; expected a list of sizes >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size):
        raise _bad(who, f"tensor {name!r} has data_offsets {offsets!r} outside the file's {data_size} data bytes")
    size = math.prod(shape) * DTYPE_BYTES[dtype]
    if size != offsets[1] - offsets[0]:
        raise _bad(who, f"tensor {name!r}: shape {shape} of {dtype} is {size} bytes, but its data holds "
                   f"{offsets[1] - offsets[0]}")
    return TensorEntry(dtype, tuple(shape)), (offsets[0], offsets[1])


def read_header(path: Path | str, who: str) -> Header:
    """The header of the safetensors file at ``path``; ValueError (LimitError over the size limit) naming ``who``.

    Checks the file size against the limit, that the header is JSON of the documented layout, that every
    tensor's shape and dtype match the bytes it claims and that those bytes lie inside the file.
    """
    size = check_file_size(path, who)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise _bad(who, f"only {len(head)} bytes")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise _bad(who, f"a header of {length} bytes in a file of {size}")
        text = f.read(length)
    try:
        raw = json.loads(text)
    except (RecursionError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _bad(who, f"the header is not JSON: {str(e)[:200]}") from None
    if not isinstance(raw, dict):
        raise _bad(who, "the header is not a JSON object")
    metadata = raw.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise _bad(who, "its __metadata__ is not an object of strings")
    data_size = size - 8 - length
    tensors, spans = {}, []
    for name, described in raw.items():
        tensors[name], span = _entry(name, described, data_size, who)
        spans.append((span, name))
    spans.sort()
    for (first, first_name), (second, second_name) in zip(spans, spans[1:]):
        if second[0] < first[1]:
            raise _bad(who, f"tensors {first_name!r} and {second_name!r} share bytes")
    return Header(tensors, metadata)


def check_entries(header: Header, expected: Mapping[str, Tuple[int, ...]], who: str, *,
                  prefix: str = "", allow_extra: bool = False) -> None:
    """The tensors under ``prefix`` must be exactly ``expected`` (name -> shape), each of a float dtype."""
    got = {k[len(prefix):]: v for k, v in header.tensors.items() if k.startswith(prefix)}
    missing = [prefix + k for k in expected if k not in got]
    extra = [] if allow_extra else [prefix + k for k in got if k not in expected]
    wrong = [f"{prefix}{k} {got[k].shape} (expected {tuple(s)})" for k, s in expected.items()
             if k in got and got[k].shape != tuple(s)]
    if missing or extra or wrong:
        def show(items):
            return "none" if not items else ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
        raise ValueError(f"{who}: the tensors do not fit what the metadata describes: missing {show(missing)}; "
                         f"unexpected {show(extra)}; wrong shape {show(wrong)}")
    check_float_entries(header, who, [prefix + k for k in expected])


def check_float_entries(header: Header, who: str, names: Optional[list] = None) -> None:
    """Every named tensor (default: all) must have a floating dtype; integers would be silently truncated."""
    for name in sorted(header.tensors if names is None else names):
        dtype = header.tensors[name].dtype
        if dtype not in FLOAT_DTYPES:  # worded as weight_checks.check_float_tensors words it after loading
            raise ValueError(f"{who}: tensor {name!r} has dtype {TORCH_NAMES.get(dtype, dtype)}; expected a floating "
                             "dtype (float32, float16 or bfloat16) -- is this file damaged or not from this pack?")
