"""``painting``: a painted landscape (the default reference): sky with sun and clouds, mountains, a lake
that mirrors them, a hill, trees and a flowery field, painted over with strokes coarse to fine."""
from __future__ import annotations

import torch

from .brushwork import paint_over
from .landscape import landscape
from .registry import register_reference


@register_reference("painting")
def painting(width: int, height: int, seed: int) -> torch.Tensor:
    scene = landscape(width, height, seed)
    return paint_over(scene.image, scene.angle, scene.firmness, seed)
