"""Save nodes that keep a sweep job's pictures in memory instead of writing them.

A sweep's worker never writes: the driver names and writes every file (atomically, once). So a job runs with
``SaveImage`` / ``PreviewImage`` / ``SaveAnimatedWEBP`` replaced by subclasses -- same inputs, so the graph
validates exactly as it would run -- whose body encodes the pictures, with the graph's ``prompt`` and
``workflow`` chunks, into bytes collected for the job. Other output nodes write files of their own
(StyleEncoderSave), which a sweep's job may not: :func:`check_outputs` refuses them before anything runs.
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from PIL import Image

from ..runner.errors import WorkflowError
from ..runner.io_nodes import WEBP_METHODS, images_to_uint8
from ..runner.png import save_png
from ..runner.spec import is_output_node

Picture = Tuple[str, bytes]  # (file suffix, encoded bytes)

_pictures: ContextVar[Optional[List[Picture]]] = ContextVar("sweep_pictures", default=None)


@contextmanager
def captured_pictures() -> Iterator[List[Picture]]:
    """Collect the pictures the capturing save nodes get inside the block, in run order."""
    collected: List[Picture] = []
    token = _pictures.set(collected)
    try:
        yield collected
    finally:
        _pictures.reset(token)


def _keep(suffix: str, data: bytes, who: str) -> None:
    collected = _pictures.get()
    if collected is None:
        raise RuntimeError(f"{who}: a sweep's save node ran outside a sweep job; it keeps no files")
    collected.append((suffix, data))


class _CapturePng:
    """SaveImage / PreviewImage: each image of the batch as PNG bytes with the workflow chunks."""

    VALIDATE_INPUTS = None  # the prefix names no file here: nothing to check

    def save_images(self, images, filename_prefix: str = "", prompt=None, extra_pnginfo=None):
        who = type(self).__name__
        for item in images_to_uint8(images, who):
            stream = io.BytesIO()
            save_png(stream, item, prompt=prompt, extra_pnginfo=extra_pnginfo, compress_level=4)
            _keep(".png", stream.getvalue(), who)
        return {"ui": {"images": []}}


class _CaptureWebp:
    """SaveAnimatedWEBP: the batch as one animated WebP, encoded as the headless node encodes it."""

    VALIDATE_INPUTS = None

    def save_images(self, images, fps, filename_prefix: str = "", lossless=True, quality=80, method="default",
                    prompt=None, extra_pnginfo=None):
        who = type(self).__name__
        if method not in WEBP_METHODS:
            raise ValueError(f"{who}: method={method!r}; expected one of {', '.join(WEBP_METHODS)}")
        frames = [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in images_to_uint8(images, who)]
        stream = io.BytesIO()
        frames[0].save(stream, format="WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0, lossless=bool(lossless), quality=int(quality), method=WEBP_METHODS[method])
        _keep(".webp", stream.getvalue(), who)
        return {"ui": {"images": []}}


#: the save nodes a sweep captures, by class name, and the body each gets
CAPTURED: Dict[str, type] = {"SaveImage": _CapturePng, "PreviewImage": _CapturePng, "SaveAnimatedWEBP": _CaptureWebp}


def capture_table(table: Mapping[str, type]) -> Dict[str, type]:
    """``table`` with its save nodes replaced by capturing subclasses (same inputs and outputs)."""
    out = dict(table)
    for name, body in CAPTURED.items():
        original = table.get(name)
        if original is not None:
            out[name] = type(name, (body, original), {"__module__": __name__, "__qualname__": f"Capturing{name}"})
    return out


def check_outputs(prompt: Mapping[str, Any], table: Mapping[str, type], needed: List[str]) -> None:
    """A sweep job's output nodes must be save nodes the sweep captures; one is needed at least."""
    outputs = [n for n in needed if is_output_node(table[prompt[n]["class_type"]])]
    for node_id in outputs:
        class_type = prompt[node_id]["class_type"]
        if class_type not in CAPTURED:
            raise WorkflowError(node_id, class_type, None, f"{class_type} writes files of its own, which a sweep's "
                                f"jobs may not (the sweep writes every file into --output-dir); a sweep keeps "
                                f"the pictures of {', '.join(CAPTURED)} nodes: remove this node, or run it once "
                                "with cli.py run")
    if not any(prompt[n]["class_type"] in CAPTURED for n in outputs):
        raise WorkflowError(None, None, None, f"the workflow saves no pictures; a sweep keeps what its "
                            f"{', '.join(CAPTURED)} nodes get: add a Save Image node")
