"""ComfyUI's own nodes used by the examples, declared the way ComfyUI 0.3.64 declares them.

Enough to lay out, convert and check a workflow without a running ComfyUI: input names, types and order, the
options the editor acts on (multiline text, control after generate, defaults) and the outputs. The choices of
a file list (checkpoints, CLIP vision models) come from the user's folders, so only the examples' file names
are listed. ``make_workflows.py --server URL`` takes the real declarations from a server instead.
"""
from __future__ import annotations

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"  # the usual SD1.5 file name; pick yours in the editor
CLIP_VISION = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"  # the usual IP-Adapter file name; pick yours
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal"]
SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m", "dpmpp_sde"]

# name: (display name, required inputs, outputs as (name, type))
DECLARED = {
    "CheckpointLoaderSimple": ("Load Checkpoint", {"ckpt_name": ([CHECKPOINT],)},
                               [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]),
    "CLIPTextEncode": ("CLIP Text Encode (Prompt)",
                       {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)},
                       [("CONDITIONING", "CONDITIONING")]),
    "CLIPVisionLoader": ("Load CLIP Vision", {"clip_name": ([CLIP_VISION],)}, [("CLIP_VISION", "CLIP_VISION")]),
    "VAEEncode": ("VAE Encode", {"pixels": ("IMAGE",), "vae": ("VAE",)}, [("LATENT", "LATENT")]),
    "VAEDecode": ("VAE Decode", {"samples": ("LATENT",), "vae": ("VAE",)}, [("IMAGE", "IMAGE")]),
    "EmptyLatentImage": ("Empty Latent Image", {
        "width": ("INT", {"default": 512, "min": 16, "max": 16384, "step": 8}),
        "height": ("INT", {"default": 512, "min": 16, "max": 16384, "step": 8}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}, [("LATENT", "LATENT")]),
    "RandomNoise": ("RandomNoise", {"noise_seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                                                           "control_after_generate": True})}, [("NOISE", "NOISE")]),
    "BasicScheduler": ("BasicScheduler", {
        "model": ("MODEL",), "scheduler": (SCHEDULERS,), "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}, [("SIGMAS", "SIGMAS")]),
    "KSamplerSelect": ("KSamplerSelect", {"sampler_name": (SAMPLERS,)}, [("SAMPLER", "SAMPLER")]),
    "CFGGuider": ("CFGGuider", {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                                "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1})},
                  [("GUIDER", "GUIDER")]),
    "SamplerCustomAdvanced": ("SamplerCustomAdvanced", {
        "noise": ("NOISE",), "guider": ("GUIDER",), "sampler": ("SAMPLER",), "sigmas": ("SIGMAS",),
        "latent_image": ("LATENT",)}, [("output", "LATENT"), ("denoised_output", "LATENT")]),
}


def _declared_class(name: str, display: str, required: dict, outputs: list) -> type:
    return type(name, (), {
        "INPUT_TYPES": classmethod(lambda cls, r=required: {"required": dict(r)}),
        "RETURN_TYPES": tuple(t for _, t in outputs),
        "RETURN_NAMES": tuple(n for n, _ in outputs),
        "FUNCTION": "remote",
        "CATEGORY": "comfyui",
        "DISPLAY_NAME": display,
    })


def comfy_node_table() -> dict:
    """Stand-in classes of these nodes (declarations only; ComfyUI runs them)."""
    return {name: _declared_class(name, *entry) for name, entry in DECLARED.items()}


def display_names() -> dict:
    return {name: entry[0] for name, entry in DECLARED.items()}
