"""Text chunks of a PNG (tEXt, zTXt, iTXt) read straight from the file, without decoding the picture.

ComfyUI keeps a picture's workflow in text chunks. Reading them chunk by chunk means a hostile file costs
no more than its text: the pixels are skipped, every chunk's length and CRC are checked, and compressed
text is inflated only up to the workflow size limit (``max_workflow_mb`` of walk_core.limits, env
``WALK_MAX_WORKFLOW_MB``), so a small zTXt/iTXt chunk that would inflate to gigabytes is refused.
"""
from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Collection, Dict, Optional, Union

from ..limits import current_limits, gib
from .errors import WorkflowError

log = logging.getLogger(__name__)

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
MAX_CHUNK = 2 ** 31 - 1  # the PNG specification's largest chunk length

PathLike = Union[str, Path]


def _error(path: PathLike, message: str) -> WorkflowError:
    return WorkflowError(None, None, None, f"{path}: {message}")


def _inflate(data: bytes, limit: int, path: PathLike, key: str) -> bytes:
    """zlib data inflated to at most ``limit`` bytes; more is an error naming the chunk and the limit."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise _error(path, f"the compressed text chunk {key!r} is damaged ({e})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _error(path, f"the compressed text chunk {key!r} inflates to more than {gib(limit)}, more than a "
                     "workflow may be; raise the limit with the environment variable WALK_MAX_WORKFLOW_MB")
    return out


def _split_key(data: bytes):
    """(keyword, rest) of a text chunk; keyword None when the chunk has no valid one (1 to 79 bytes, NUL)."""
    key, sep, rest = data.partition(b"\0")
    return (key.decode("latin-1") if sep and 1 <= len(key) <= 79 else None), rest


def _text_of(kind: bytes, key: str, rest: bytes, limit: int, path: PathLike) -> str:
    """The text of one text chunk (``rest``: what follows its keyword)."""
    if kind == b"tEXt":
        return rest.decode("latin-1")
    if kind == b"zTXt":
        if rest[:1] != b"\0":
            raise _error(path, f"the zTXt chunk {key!r} uses an unknown compression method")
        return _inflate(rest[1:], limit, path, key).decode("latin-1")
    # iTXt: compressed flag, method, language tag NUL, translated keyword NUL, UTF-8 text
    if len(rest) < 2:
        raise _error(path, f"the iTXt chunk {key!r} is truncated")
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        if method != 0:
            raise _error(path, f"the iTXt chunk {key!r} uses an unknown compression method")
        text = _inflate(text, limit, path, key)
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(path, f"the iTXt chunk {key!r} is not UTF-8 ({e.reason} at byte {e.start})") from None


def _read_exact(f: BinaryIO, n: int, path: PathLike) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _error(path, "the PNG is truncated (a chunk runs past the end of the file)")
    return data


def read_text_chunks(path: PathLike, keys: Optional[Collection[str]] = None) -> Dict[str, str]:
    """The text chunks of the PNG at ``path`` (key -> text; a later chunk of the same key wins): all of
    them, or only those named in ``keys`` (others are skipped undecoded).

    Raises :class:`WorkflowError` for a file that is not a PNG, is truncated or damaged, or whose text
    would exceed the workflow size limit. A text chunk without a valid keyword is skipped with a warning.
    """
    limit = current_limits().max_workflow_bytes
    texts: Dict[str, str] = {}
    total = 0
    try:
        with open(path, "rb") as f:
            if f.read(8) != SIGNATURE:
                raise _error(path, "not a PNG file (its first bytes are not the PNG signature)")
            while True:
                head = f.read(8)
                if not head:
                    break  # no IEND: tolerated, as by most readers
                if len(head) != 8:
                    raise _error(path, "the PNG is truncated (in a chunk header)")
                length, kind = struct.unpack(">I4s", head)
                if length > MAX_CHUNK:
                    raise _error(path, f"a chunk claims {length} bytes, more than PNG allows")
                if kind == b"IEND":
                    break
                if kind not in TEXT_CHUNKS:
                    f.seek(length + 4, 1)  # the data and the CRC: pixels are never decoded here
                    continue
                if length > limit:
                    raise _error(path, f"the text chunk is {gib(length)}, more than a workflow may be "
                                 f"({gib(limit)}); raise the limit with WALK_MAX_WORKFLOW_MB")
                data = _read_exact(f, length, path)
                (crc,) = struct.unpack(">I", _read_exact(f, 4, path))
                if zlib.crc32(kind + data) != crc:
                    raise _error(path, f"a {kind.decode('ascii')} chunk has a bad CRC; the file is damaged")
                key, rest = _split_key(data)
                if key is None:
                    log.warning("%s: skipped a text chunk (%s) without a valid keyword (1 to 79 bytes before a NUL)",
                                path, kind.decode("ascii"))
                    continue
                if keys is not None and key not in keys:
                    continue
                text = _text_of(kind, key, rest, limit, path)
                total += len(text)
                if total > 4 * limit:
                    raise _error(path, f"the PNG's text chunks hold more than {gib(4 * limit)} in all")
                texts[key] = text
    except OSError as e:
        raise _error(path, f"cannot read the PNG ({e.strerror or e})") from None
    return texts
