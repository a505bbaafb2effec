"""Walks on models that follow ComfyUI's calling conventions, without importing ComfyUI.

``prediction``: which noise convention a model's ``model_sampling`` uses (variance exploding, as EPS,
V-prediction and EDM models are walked in k-diffusion; or rectified flow, ComfyUI's CONST) and the exact
change of variables that lets every walk of the pack run on a flow model. ``sampler``: any walk of
``WALKS`` as the function inside a ComfyUI SAMPLER.
"""
from .prediction import FLOW_SIGMA_CAP, FlowAsVE, find_model_sampling, is_flow
from .sampler import walk_sampler_function

__all__ = ["FLOW_SIGMA_CAP", "FlowAsVE", "find_model_sampling", "is_flow", "walk_sampler_function"]
