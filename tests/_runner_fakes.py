"""Fake node classes and workflow builders for the runner and CLI tests (no real pack nodes).

Loaded by the test files through :func:`load_fakes` (tests/ is not a package). The engine is
loaded as ``rwalk_core`` from its file, so the repo folder name does not matter.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CALLS: list = []  # (node class, kwargs) of every fake node that ran


def load_runner():
    """``walk_core.runner`` loaded under the package name ``rwalk_core``."""
    if "rwalk_core" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "rwalk_core", ROOT / "walk_core" / "__init__.py", submodule_search_locations=[str(ROOT / "walk_core")])
        module = importlib.util.module_from_spec(spec)
        sys.modules["rwalk_core"] = module
        spec.loader.exec_module(module)
    return importlib.import_module("rwalk_core.runner")


class MakeImage:
    """An IMAGE [1, H, W, 3] from width/height/seed/color; the seed has a control widget."""

    DESCRIPTION = "fake image source"
    CATEGORY = "test"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "width": ("INT", {"default": 8, "min": 1, "max": 64}),
            "height": ("INT", {"default": 8, "min": 1, "max": 64}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**32 - 1, "control_after_generate": True}),
            "color": (["red", "green", "blue"], {"default": "red"}),
        }}

    def make(self, width, height, seed, color):
        CALLS.append(("MakeImage", dict(width=width, height=height, seed=seed, color=color)))
        g = torch.Generator().manual_seed(seed)
        image = torch.rand((1, height, width, 3), generator=g) * 0.25
        image[..., ["red", "green", "blue"].index(color)] += 0.7
        return (image,)


class NoiseSeed:
    """An INT widget named noise_seed (control widget by name only) and a FLOAT after it."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"noise_seed": ("INT", {"default": 0, "min": 0, "max": 10**9}),
                             "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0})}}

    def run(self, noise_seed, scale):
        CALLS.append(("NoiseSeed", dict(noise_seed=noise_seed, scale=scale)))
        return (noise_seed,)


class IntOut:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 4, "min": 0, "max": 100})}}

    def run(self, value):
        CALLS.append(("IntOut", dict(value=value)))
        return (value,)


class Invert:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)},
                "optional": {"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0})}}

    def run(self, image, strength=1.0):
        CALLS.append(("Invert", dict(strength=strength)))
        return (image + strength * (1 - 2 * image),)


class Blend:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("IMAGE",), "b": ("IMAGE",),
                             "factor": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0})}}

    def run(self, a, b, factor):
        CALLS.append(("Blend", dict(factor=factor)))
        return ((1 - factor) * a + factor * b,)


class Options:
    """A node with every widget kind plus a forceInput STRING and an any-typed input."""

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mode": (["a", "b"],), "flag": ("BOOLEAN", {"default": False}),
                             "text": ("STRING", {"multiline": True, "default": ""})},
                "optional": {"extra": ("STRING", {"forceInput": True}), "anything": ("*",)}}

    def run(self, mode, flag, text, extra=None, anything=None):
        CALLS.append(("Options", dict(mode=mode, flag=flag, text=text, extra=extra, anything=anything)))
        return (f"{mode}-{flag}-{text}",)


class Collect:
    """An output node recording what it got, including the hidden inputs."""

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)},
                "optional": {"label": ("STRING", {"default": ""}), "value": ("*",)},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"}}

    def run(self, images, label="", value=None, prompt=None, extra_pnginfo=None, unique_id=None):
        CALLS.append(("Collect", dict(shape=tuple(images.shape), label=label, value=value, prompt=prompt,
                                      extra_pnginfo=extra_pnginfo, unique_id=unique_id)))
        return {"ui": {"text": [label]}, "result": ()}


class Boom:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def run(self, image):
        CALLS.append(("Boom", {}))
        raise RuntimeError("kaboom")


class Progressing:
    """Reports progress through the hook the runner installs."""

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    SEEN: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def run(self, image):
        progress = importlib.import_module("rwalk_core.progress").current_progress()
        Progressing.SEEN.append(progress)
        for i in range(3):
            if progress is not None:
                progress(i + 1, 3)
        return (image,)


FAKE_NODES = {c.__name__: c for c in (MakeImage, NoiseSeed, IntOut, Invert, Blend, Options, Collect, Boom,
                                      Progressing)}


def node_table(runner=None) -> dict:
    """The fake nodes plus the runner's headless image IO nodes."""
    runner = runner or load_runner()
    return {**FAKE_NODES, **runner.IO_NODE_CLASSES}


# ----------------------------------------------------------------------------- UI workflow builder

class UiBuilder:
    """Builds editor-format workflows: ``add`` nodes, ``link`` output slot -> input name."""

    def __init__(self):
        self.nodes, self.links = [], []

    def add(self, node_id, kind, widgets=None, inputs=(), outputs=(), mode=0, title=None):
        node = {"id": node_id, "type": kind, "mode": mode, "pos": [0, 0], "size": [100, 50],
                "inputs": [{"name": n, "type": t, "link": None, **({"widget": {"name": n}} if w else {})}
                           for n, t, w in (i if len(i) == 3 else (*i, False) for i in inputs)],
                "outputs": [{"name": t, "type": t, "links": []} for t in outputs],
                "properties": {}}
        if widgets is not None:
            node["widgets_values"] = widgets
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, src, slot, dst, input_name):
        link_id = len(self.links) + 1
        src_node = next(n for n in self.nodes if n["id"] == src)
        dst_node = next(n for n in self.nodes if n["id"] == dst)
        to_slot = next(i for i, e in enumerate(dst_node["inputs"]) if e["name"] == input_name)
        ltype = dst_node["inputs"][to_slot]["type"]
        dst_node["inputs"][to_slot]["link"] = link_id
        src_node["outputs"][slot]["links"].append(link_id)
        self.links.append([link_id, src, slot, dst, to_slot, ltype])
        return link_id

    def build(self):
        return {"last_node_id": max((n["id"] for n in self.nodes), default=0),
                "last_link_id": len(self.links), "nodes": self.nodes, "links": self.links,
                "groups": [], "config": {}, "extra": {}, "version": 0.4}


def simple_ui():
    """MakeImage(1) -> Invert(2) -> Collect(3), plus an unused MakeImage(4)."""
    ui = UiBuilder()
    ui.add(1, "MakeImage", [16, 8, 42, "randomize", "blue"], outputs=["IMAGE"])
    ui.add(2, "Invert", [0.5], inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.add(3, "Collect", ["hello"], inputs=[("images", "IMAGE")])
    ui.add(4, "MakeImage", [8, 8, 0, "fixed", "red"], outputs=["IMAGE"])
    ui.link(1, 0, 2, "image")
    ui.link(2, 0, 3, "images")
    return ui.build()


def simple_api():
    """The API form of :func:`simple_ui`."""
    return {
        "1": {"class_type": "MakeImage", "inputs": {"width": 16, "height": 8, "seed": 42, "color": "blue"}},
        "2": {"class_type": "Invert", "inputs": {"image": ["1", 0], "strength": 0.5}},
        "3": {"class_type": "Collect", "inputs": {"images": ["2", 0], "label": "hello"}},
        "4": {"class_type": "MakeImage", "inputs": {"width": 8, "height": 8, "seed": 0, "color": "red"}},
    }


def save_api(width=8, prefix="test"):
    """MakeImage(1) -> SaveImage(2)."""
    return {
        "1": {"class_type": "MakeImage", "inputs": {"width": width, "height": 4, "seed": 1, "color": "green"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }
