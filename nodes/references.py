"""ReferenceImage: the pack's procedural reference pictures as a ComfyUI IMAGE (nothing downloaded)."""
from __future__ import annotations

import torch

from ..walk_core.noise import SEED_MAX, item_seeds
from ..walk_core.references import MAX_SIZE, MIN_SIZE, REFERENCES, reference_image
from .types import CATEGORY

REFERENCE_NOTES = {
    "painting": "a painted landscape: sky, sun, clouds, mountains, lake, hill, trees, flowery field, brush strokes",
    "stained_glass": "a rose window of saturated Voronoi glass pieces with dark lead lines",
    "marble": "polished veined stone (calacatta, verde, rosso, nero, azul by seed)",
    "bricks": "a weathered brick wall with mortar, per-brick colour, grain, moss",
    "foliage": "layers of overlapping leaves in greens and yellows with a few autumn reds",
    "photo": "a rendered photograph: shiny spheres on a checkered floor under the sky (photo style transfer content)",
}


class ReferenceImage:
    DESCRIPTION = (
        "Procedural reference pictures made by code, nothing downloaded: a painted landscape (the default), "
        "stained glass, marble, bricks, foliage, and a rendered photo. Rich in local structure at several "
        "scales, for the patch target, style transfer and the Style Encoder. The same seed gives the same "
        "picture; item i of a batch uses seed + i.")
    CATEGORY = f"{CATEGORY}/references"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The reference pictures, [batch, height, width, 3] in 0..1.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        names = REFERENCES.names()
        notes = "; ".join(f"{n} = {REFERENCE_NOTES.get(n, 'procedural')}" for n in names)
        size = {"default": 256, "min": MIN_SIZE, "max": MAX_SIZE, "step": 8}
        return {"required": {
            "reference": (names, {"default": "painting", "tooltip": f"Which picture to make: {notes}."}),
            "width": ("INT", {**size, "tooltip": f"Width in pixels ({MIN_SIZE} to {MAX_SIZE})."}),
            "height": ("INT", {**size, "tooltip": f"Height in pixels ({MIN_SIZE} to {MAX_SIZE})."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True, "tooltip": (
                "Seed of the picture's composition, colours and texture; item i of a batch uses seed + i.")}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 16, "tooltip": (
                "How many pictures to make (seeds seed, seed + 1, ...).")}),
        }}

    def make(self, reference, width, height, seed, batch_size):
        if reference not in REFERENCES:
            raise ValueError(f"ReferenceImage: reference={reference!r} is unknown; expected one of: "
                             f"{', '.join(REFERENCES)}")
        for label, value in (("width", width), ("height", height)):
            if not MIN_SIZE <= int(value) <= MAX_SIZE:
                raise ValueError(f"ReferenceImage: {label}={value!r} is not allowed; expected {MIN_SIZE} to {MAX_SIZE}")
        if not 1 <= int(batch_size) <= 16:
            raise ValueError(f"ReferenceImage: batch_size={batch_size!r} is not allowed; expected 1 to 16")
        if not 0 <= int(seed) <= SEED_MAX:
            raise ValueError(f"ReferenceImage: seed={seed!r} is not allowed; expected 0 to {SEED_MAX}")
        pictures = [reference_image(reference, int(width), int(height), s)
                    for s in item_seeds(int(seed), int(batch_size))]
        return (torch.stack(pictures).permute(0, 2, 3, 1).contiguous(),)
