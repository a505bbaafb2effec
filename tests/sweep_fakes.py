"""Small fake nodes for the sweep tests: a picture source whose ``mode`` input can make a job fail or stop the
sweep as Ctrl-C would, and an output node that writes files of its own (which a sweep refuses)."""
from __future__ import annotations

import torch

RUNS: list = []  # (width, seed, mode) of every Paint that ran in this process
STOP = {"interrupt": True}  # mode "interrupt" raises KeyboardInterrupt while this is True


class Paint:
    """An IMAGE [1, 4, width, 3] from a seeded generator; mode "fail" raises, "interrupt" is a Ctrl-C."""

    DESCRIPTION = "fake picture source"
    CATEGORY = "test"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "paint"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "width": ("INT", {"default": 8, "min": 1, "max": 64}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**32 - 1, "control_after_generate": True}),
            "mode": (["plain", "fail", "interrupt"], {"default": "plain"}),
            "gain": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0}),
        }}

    def paint(self, width, seed, mode, gain):
        RUNS.append((width, seed, mode))
        if mode == "fail":
            raise RuntimeError(f"paint refuses width {width}")
        if mode == "interrupt" and STOP["interrupt"]:
            raise KeyboardInterrupt
        g = torch.Generator().manual_seed(seed)
        return ((torch.rand((1, 4, width, 3), generator=g) * gain).clamp(0, 1),)


class WriteNote:
    """An output node that would write a file of its own."""

    RETURN_TYPES = ()
    FUNCTION = "write"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def write(self, images):
        raise AssertionError("a sweep must refuse this node before running it")


FAKE_NODES = {"Paint": Paint, "WriteNote": WriteNote}


def ui_workflow(extra_output: bool = False) -> dict:
    """Editor format: Paint(1) -> SaveImage(2) [-> WriteNote(3)]."""
    nodes = [
        {"id": 1, "type": "Paint", "mode": 0, "pos": [0, 0], "size": [100, 50], "inputs": [],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1] + ([2] if extra_output else [])}],
         "properties": {}, "widgets_values": [8, 5, "fixed", "plain", 1.0]},
        {"id": 2, "type": "SaveImage", "mode": 0, "pos": [200, 0], "size": [100, 50],
         "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": [], "properties": {},
         "widgets_values": ["sweep"]},
    ]
    links = [[1, 1, 0, 2, 0, "IMAGE"]]
    if extra_output:
        nodes.append({"id": 3, "type": "WriteNote", "mode": 0, "pos": [200, 100], "size": [100, 50],
                      "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "outputs": [], "properties": {}})
        links.append([2, 1, 0, 3, 0, "IMAGE"])
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}
