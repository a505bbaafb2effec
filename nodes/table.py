"""The one node table: node id -> (class, display name). Node ids are public API: never rename one."""
from __future__ import annotations

from .controls import WalkGrid, WalkOutpaint, WalkVary, WalkWander
from .guidance import GUIDANCE_NODES
from .guidance_energy import GuidanceStepEnergy
from .interop import WalkGuider, WalkSamplerSelect
from .references import ReferenceImage
from .sampler import WalkSampler
from .schedule_learn import LearnWalkSchedule
from .style import StyleEncoder
from .style_files import StyleEncoderLoad, StyleEncoderSave
from .targets import TargetDistributionMixture
from .targets_patch import TargetDistributionPatches
from .targets_checkpoint import TargetDistributionCheckpoint
from .targets_model import TargetDistributionModel
from .targets_style import TargetDistributionStyle
from .train import TrainWalkModel
from .walk_picture import WalkPicture
from .xy_plot import XYPlotAxis, XYPlotWalk

NODE_TABLE = {
    "WalkSampler": (WalkSampler, "Walk Sampler"),
    "TargetDistributionMixture": (TargetDistributionMixture, "Target Distribution (exact mixture)"),
    "TargetDistributionPatches": (TargetDistributionPatches, "Target Distribution (reference patches)"),
    "TargetDistributionStyle": (TargetDistributionStyle, "Target Distribution (style energy)"),
    **GUIDANCE_NODES,  # GuidanceStepCFG, ...: one per guidance term kind (nodes/guidance.py STEPS)
    "GuidanceStepEnergy": (GuidanceStepEnergy, "Guidance Step: Energy"),
    "StyleEncoder": (StyleEncoder, "Style Encoder"),
    "StyleEncoderSave": (StyleEncoderSave, "Style Encoder: Save"),
    "StyleEncoderLoad": (StyleEncoderLoad, "Style Encoder: Load"),
    "ReferenceImage": (ReferenceImage, "Reference Image (procedural)"),
    "TargetDistributionCheckpoint": (TargetDistributionCheckpoint, "Target Distribution (own model)"),
    "TrainWalkModel": (TrainWalkModel, "Train Walk Model"),
    "TargetDistributionModel": (TargetDistributionModel, "Target Distribution (MODEL)"),
    "WalkSamplerSelect": (WalkSamplerSelect, "Walk as SAMPLER"),
    "WalkGuider": (WalkGuider, "Walk Guider (target + guidance)"),
    "WalkVary": (WalkVary, "Walk Variations (vary subtle / strong)"),
    "WalkWander": (WalkWander, "Walk Wander (seed-space animation)"),
    "WalkGrid": (WalkGrid, "Walk Grid (chaos / stylize / tile / aspect)"),
    "WalkOutpaint": (WalkOutpaint, "Walk Outpaint (pan / zoom out)"),
    "WalkPicture": (WalkPicture, "Walk Picture (sigma, guidance, x0 filmstrip)"),
    "LearnWalkSchedule": (LearnWalkSchedule, "Learn Walk Schedule (few-step sigmas for a target)"),
    "XYPlotAxis": (XYPlotAxis, "XY Plot Axis (a Walk Sampler input and values)"),
    "XYPlotWalk": (XYPlotWalk, "XY Plot Walk (a labelled grid of walks)"),
}

from .inputs import checked_function  # noqa: E402

for _cls, _name in NODE_TABLE.values():  # a constant on a socket, a NaN float: refused with the input's name
    checked_function(_cls)
