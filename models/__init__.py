"""Own small models: an EDM-preconditioned U-Net (unet.py), safetensors files with the architecture in the
metadata (checkpoint.py), training data and crops (data.py), the trainer (train.py), and a trained model as a
WALK_TARGET (target.py).

May import walk_core; never nodes/ or ComfyUI.
"""
from .checkpoint import ModelFile, list_models, load_model, save_model, state_path
from .data import ImageSet, from_references, from_tensors, load_folder
from .target import model_target
from .train import TrainConfig, TrainResult, train
from .unet import EDMDenoiser, UNetConfig

__all__ = ["EDMDenoiser", "ImageSet", "ModelFile", "TrainConfig", "TrainResult", "UNetConfig", "from_references",
           "from_tensors", "list_models", "load_folder", "load_model", "model_target", "save_model", "state_path",
           "train"]
