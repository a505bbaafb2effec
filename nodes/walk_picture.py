"""WalkPicture: a walk's trajectory drawn as one IMAGE (sigma per step, guidance changes, x-hat-0 filmstrip)."""
from __future__ import annotations

import numpy as np
import torch

from ..walk_core.trajectory import COLUMN_LIMITS, TILE_LIMITS
from .types import CATEGORY, WALK_TRAJECTORY


class WalkPicture:
    DESCRIPTION = (
        "Draws a walk so you can see what it did: sigma per step (log scale, the kept steps ringed), the change "
        "each guidance term made to the denoised estimate at every evaluation (one line per term, with a legend), "
        "and a filmstrip of the x-hat-0 snapshots WalkSampler kept (set its trajectory_every). Connect the "
        "picture to Save Image or Preview Image."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("picture",)
    OUTPUT_TOOLTIPS = ("The drawing as one picture ([1, H, W, 3]); its height grows with the filmstrip's rows.",)
    FUNCTION = "draw"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "walk_trajectory": (WALK_TRAJECTORY, {"tooltip": (
                    "WalkSampler's walk_trajectory output: the walk to draw.")}),
                "item": ("INT", {"default": 0, "min": 0, "max": 4095, "tooltip": (
                    "Which picture of the batch the filmstrip shows (0 = the first; item i was walked with "
                    "seed + i).")}),
                "tile": ("INT", {"default": 128, "min": TILE_LIMITS[0], "max": TILE_LIMITS[1], "step": 8,
                                 "tooltip": "The longer side of each filmstrip frame, in pixels."}),
                "columns": ("INT", {"default": 8, "min": COLUMN_LIMITS[0], "max": COLUMN_LIMITS[1], "tooltip": (
                    "Filmstrip frames per row; more frames wrap onto further rows.")}),
            },
        }

    def draw(self, walk_trajectory, item, tile, columns):
        from ..walk_core.trajectory_plot import draw_walk  # noqa: PLC0415  (Pillow's drawing: only when drawing)

        img, _ = draw_walk(walk_trajectory, item=item, tile=tile, columns=columns, who="WalkPicture")
        return (torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None],)
