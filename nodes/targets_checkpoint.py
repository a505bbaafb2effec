"""TargetDistributionCheckpoint: an own trained model (safetensors) as a WALK_TARGET."""
from __future__ import annotations

import torch

from .model_files import find_model, model_names
from .types import CATEGORY, WALK_TARGET

WHO = "TargetDistributionCheckpoint"
DEVICES = ("auto", "cpu")


def model_device(choice: str) -> torch.device:
    """auto: ComfyUI's torch device inside ComfyUI, else CUDA when present, else the CPU."""
    if choice == "cpu":
        return torch.device("cpu")
    try:
        import comfy.model_management as mm  # noqa: PLC0415  (only present inside ComfyUI)
        return mm.get_torch_device()
    except ImportError:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TargetDistributionCheckpoint:
    DESCRIPTION = (
        "A model this pack trained (Train Walk Model or `cli.py train`) as a target: its denoiser in pixel "
        "space. Models are looked for in the pack's models/trained folder and in ComfyUI's models/walk_models "
        "(headless: the output folder's walk_models). Fully convolutional: it walks at any width and height that "
        "are multiples of 2^(levels-1), not only its training size. A class-conditional model gives CFG/APG "
        "their branches: pick a class, then add a Guidance Step: CFG.")
    CATEGORY = f"{CATEGORY}/targets"
    RETURN_TYPES = (WALK_TARGET,)
    RETURN_NAMES = ("target",)
    OUTPUT_TOOLTIPS = ("A pixel-space target that takes its size from WalkSampler's width/height.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": (model_names(), {"tooltip": (
                    "The model file (.safetensors written by this pack's trainer; its architecture and classes are "
                    "in the file).")}),
                "class": ("STRING", {"default": "", "tooltip": (
                    "For a class-conditional model: the class to walk towards (a class name it was trained on; "
                    "the error lists them). Empty = the model's unconditional prediction. A class also gives "
                    "CFG/APG the unconditional branch to extrapolate away from.")}),
                "device": (list(DEVICES), {"default": "auto", "tooltip": (
                    "Where the network runs: auto = ComfyUI's device (the GPU when present), cpu = the CPU.")}),
            },
        }

    def load(self, model_name, device, **inputs):
        unknown = set(inputs) - {"class"}
        if unknown:
            raise TypeError(f"{WHO}.load: unexpected inputs {sorted(unknown)}")
        if device not in DEVICES:
            raise ValueError(f"{WHO}: device={device!r}; expected one of {', '.join(DEVICES)}")
        from ..models import load_model, model_target  # noqa: PLC0415  (not at import: ComfyUI's start-up)

        path = find_model(model_name, WHO)
        model = load_model(path)
        return (model_target(model, class_name=inputs.get("class", ""), device=model_device(device),
                             name=path.stem),)
