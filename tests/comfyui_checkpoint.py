"""Make a random-weight SD1.5-family checkpoint with ComfyUI's own code (TEST ONLY).

This script exists for the opt-in ComfyUI integration tests: they need a checkpoint that ComfyUI's
``CheckpointLoaderSimple`` (``comfy.sd.load_checkpoint_guess_config``) detects as SD1.5 and that samples in a
second or two on a CPU, without downloading anything. It builds the three parts with ComfyUI's classes from
the checkout given by ``--comfyui`` (nothing of ComfyUI is copied here; it is imported at run time):

* the UNet: ``comfy.supported_models.SD15`` → ``get_model`` (``comfy.model_base.BaseModel`` around
  ``openaimodel.UNetModel``), deliberately SMALL (44M parameters, SD1.5 has 860M) — two levels,
  both 320 channels (``channel_mult`` [1, 1]), one res block and one transformer block per level.
  ComfyUI detects SD1.5 from the state dict alone (model_channels 320, context_dim 768, conv proj_in i.e.
  ``use_linear_in_transformer`` False, no ``label_emb``, in_channels 4, no temporal layers); depths and
  channel multipliers are free, so the small UNet is still "SD15";
* the CLIP-L text encoder: ``comfy.sd1_clip.SD1ClipModel`` — full size, its config is fixed;
* the VAE: ``comfy.ldm.models.autoencoder.AutoencoderKL`` with the default SD config ``comfy.sd.VAE``
  uses — full size, the loader picks that config from the keys and ignores sizes.

ComfyUI's ops leave weights uninitialised (``torch.empty``), so every parameter is set here explicitly and
deterministically from ``--seed``: weights N(0, 0.02²) (embeddings too), biases 0, norm weights 1. The
file is written in fp16 with the original-SD key layout (``model.diffusion_model.*``,
``cond_stage_model.transformer.text_model.*``, ``first_stage_model.*``) by the model's
``state_dict_for_saving``. The weights are random: the pictures are noise-like and mean nothing.

Nothing this script creates may be committed: write the file into a temporary folder (e.g. pytest's
``tmp_path``), never into the repository. Run it with ComfyUI's interpreter::

    $WALK_COMFYUI/venv/bin/python tests/comfyui_checkpoint.py --comfyui $WALK_COMFYUI \\
        --out <temporary folder>/models/checkpoints/random_sd15.safetensors --seed 0 --check

``--check`` loads the file back with ``comfy.sd.load_checkpoint_guess_config``, asserts SD15 detection and no
missing-key warnings, encodes a prompt, samples 4 steps (euler_ancestral, karras, cfg 7) on an empty 1×4×8×8
latent, decodes a 64×64 image and asserts the results are finite and not constant — all inside
``torch.inference_mode()``, as ComfyUI's executor runs nodes. A random UNet does not denoise, so the sampled
latent keeps roughly the initial noise scale: std ≈ 20 in model space (σ_max ≈ 14.6), ≈ 110 in the VAE space
``comfy.sample.sample`` returns (÷ 0.18215) — expected, not a numerical blow-up.

The module does nothing on import; all work happens in ``main()``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

LOG = logging.getLogger("comfyui_checkpoint")

# The small SD1.5-family UNet, in the form comfy.model_detection.detect_unet_config reports it.
UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,          # SD15 detection key
    "num_res_blocks": [1, 1],
    "transformer_depth": [1, 1],
    "transformer_depth_output": [1, 1, 1, 1],
    "channel_mult": [1, 1],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,  # SD15 detection key
    "context_dim": 768,             # SD15 detection key
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

# The VAE config comfy.sd.VAE uses for SD1.x/SD2.x checkpoints (it is chosen from the keys, not the sizes).
VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}

INIT_STD = 0.02
PROMPT = "a photograph of an astronaut riding a horse"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Write a random-weight, small-UNet SD1.5-family checkpoint with ComfyUI's own classes "
                    "(test-only; never commit the output).")
    p.add_argument("--comfyui", required=True, type=Path,
                   help="path of the ComfyUI checkout whose code builds (and, with --check, loads) the model; "
                        "run this script with that checkout's interpreter")
    p.add_argument("--out", required=True, type=Path,
                   help="the .safetensors file to write (its folder is created), e.g. "
                        "<base>/models/checkpoints/random_sd15.safetensors")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random weights (the same seed gives the same file; default 0)")
    p.add_argument("--check", action="store_true",
                   help="after writing, load the file with comfy.sd.load_checkpoint_guess_config and run a "
                        "4-step sample and a VAE decode, asserting SD15 detection and finite, non-constant output")
    p.add_argument("--device", choices=("cpu", "auto"), default="cpu",
                   help="'cpu' (default) sets ComfyUI's --cpu before it is imported; 'auto' lets ComfyUI pick")
    p.add_argument("-v", "--verbose", action="store_true", help="log ComfyUI's debug messages too")
    return p.parse_args(argv)


def import_comfy(checkout: Path, device: str):
    """Put the checkout on sys.path and import ComfyUI's modules (configured before model_management loads)."""
    checkout = checkout.resolve()
    if not (checkout / "comfy" / "sd.py").is_file():
        raise SystemExit(f"{checkout} is not a ComfyUI checkout (no comfy/sd.py)")
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    import comfy.cli_args  # parses no command line unless comfy.options enabled it
    if device == "cpu":
        comfy.cli_args.args.cpu = True  # must precede the import of comfy.model_management
    import comfy.model_management  # noqa: F401
    import comfy.sd
    import comfy.model_detection
    import comfy.supported_models
    import comfy.sd1_clip
    import comfy.utils
    import comfy.sample
    import comfy.ldm.models.autoencoder
    return comfy


def init_parameters(module, seed: int, std: float = INIT_STD) -> int:
    """Set every parameter of ``module`` deterministically: norms 1/0, biases 0, other weights N(0, std²).

    The draws come from one CPU generator in ``named_modules`` order, so a seed always gives the same weights.
    Returns the number of parameters set."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    norms = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    count = 0
    with torch.no_grad():
        for _, mod in module.named_modules():
            for name, p in mod.named_parameters(recurse=False):
                if name == "logit_scale":  # CLIP's scalar, not saved; keep its ln(100) value
                    p.fill_(4.6055)
                elif isinstance(mod, norms):
                    p.fill_(1.0 if name == "weight" else 0.0)
                elif name == "bias" or name.endswith("_bias"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype) * std)
                count += p.numel()
    return count


def build_state_dict(comfy, seed: int) -> dict:
    """The three models built with ComfyUI's classes, initialised from ``seed``, as one fp16 state dict."""
    import torch

    config = comfy.model_detection.model_config_from_unet_config(dict(UNET_CONFIG))
    if type(config) is not comfy.supported_models.SD15:
        raise AssertionError(f"ComfyUI maps the UNet config to {type(config).__name__}, not SD15")
    config.set_inference_dtype(torch.float32, None)  # plain comfy.ops.disable_weight_init layers
    model = config.get_model({}, device=torch.device("cpu"))
    n_unet = init_parameters(model.diffusion_model, seed)

    clip = comfy.sd1_clip.SD1ClipModel(device="cpu", dtype=torch.float32)
    n_clip = init_parameters(clip, seed + 1)

    vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
    n_vae = init_parameters(vae, seed + 2)
    LOG.info("parameters: unet %.1fM, clip-L %.1fM, vae %.1fM", n_unet / 1e6, n_clip / 1e6, n_vae / 1e6)

    sd = model.state_dict_for_saving(clip_state_dict=clip.state_dict(), vae_state_dict=vae.state_dict())
    out = {}
    for k, t in sd.items():
        if not torch.isfinite(t.float()).all():
            raise AssertionError(f"{k} is not finite after initialisation")
        out[k] = (t.to(torch.float16) if t.is_floating_point() else t).contiguous()

    # The saved dict must be what ComfyUI's detector expects: same UNet config, SD15 class.
    detected = comfy.model_detection.detect_unet_config(out, "model.diffusion_model.")
    wrong = {k: (v, detected.get(k)) for k, v in UNET_CONFIG.items() if detected.get(k) != v}
    if wrong:
        raise AssertionError(f"detect_unet_config disagrees with the built UNet: {wrong}")
    return out


def write_checkpoint(comfy, out: Path, seed: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    sd = build_state_dict(comfy, seed)
    # One metadata key only: safetensors writes several in a random order, and the same seed should give
    # the same bytes.
    metadata = {"comment": f"random SD1.5-family weights (seed {seed}) for tests only; do not commit"}
    tmp = out.with_name(out.name + ".partial")
    comfy.utils.save_torch_file(sd, str(tmp), metadata=metadata)
    os.replace(tmp, out)


class _Recorder(logging.Handler):
    """Keeps the warnings logged while the checkpoint loads."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _assert_varied(name: str, t) -> None:
    import torch

    t = t.float()
    if not torch.isfinite(t).all():
        raise AssertionError(f"{name} has non-finite values")
    if float(t.std()) <= 1e-6 or float(t.max() - t.min()) <= 1e-4:
        raise AssertionError(f"{name} is constant (std {float(t.std()):.3g})")
    LOG.info("%s: shape %s, mean %.4f, std %.4f, min %.4f, max %.4f", name, tuple(t.shape),
             float(t.mean()), float(t.std()), float(t.min()), float(t.max()))


def check_checkpoint(comfy, path: Path, seed: int) -> None:
    import torch

    recorder = _Recorder()
    logging.getLogger().addHandler(recorder)
    t0 = time.perf_counter()
    try:
        model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
    finally:
        logging.getLogger().removeHandler(recorder)
    LOG.info("load (comfy.sd.load_checkpoint_guess_config): %.2f s", time.perf_counter() - t0)
    config = model.model.model_config
    if type(config) is not comfy.supported_models.SD15:
        raise AssertionError(f"detected {type(config).__name__}, not SD15")
    if clip is None or vae is None or vae.first_stage_model is None:
        raise AssertionError("the checkpoint did not give a CLIP and a VAE")
    bad = [m for m in recorder.messages if "missing" in m.lower() or "unexpected" in m.lower()
           or "not initalized" in m.lower() or "no clip" in m.lower()]
    if bad:
        raise AssertionError("warnings while loading: " + " | ".join(bad))
    LOG.info("detected %s (model_type %s, unet dtype %s); warnings while loading: %d",
             type(config).__name__, model.model.model_type.name, model.model.get_dtype(), len(recorder.messages))

    t0 = time.perf_counter()
    positive = clip.encode_from_tokens_scheduled(clip.tokenize(PROMPT))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    LOG.info("CLIP encode (2 prompts): %.2f s", time.perf_counter() - t0)
    _assert_varied("positive conditioning", positive[0][0])
    if positive[0][0].shape != (1, 77, 768):
        raise AssertionError(f"conditioning shape {tuple(positive[0][0].shape)}")

    latent = torch.zeros(1, 4, 8, 8)
    noise = comfy.sample.prepare_noise(latent, seed)
    t0 = time.perf_counter()
    samples = comfy.sample.sample(model, noise, 4, 7.0, "euler_ancestral", "karras", positive, negative, latent,
                                  denoise=1.0, disable_pbar=True, seed=seed)
    LOG.info("sample (4 steps euler_ancestral/karras, cfg 7, 1x4x8x8): %.2f s", time.perf_counter() - t0)
    _assert_varied("latent", samples)

    t0 = time.perf_counter()
    image = vae.decode(samples)
    LOG.info("VAE decode to 64x64: %.2f s", time.perf_counter() - t0)
    if tuple(image.shape) != (1, 64, 64, 3):
        raise AssertionError(f"decoded image shape {tuple(image.shape)}")
    _assert_varied("image", image)
    LOG.info("check passed")


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    comfy = import_comfy(args.comfyui, args.device)

    t0 = time.perf_counter()
    write_checkpoint(comfy, args.out, args.seed)
    LOG.info("wrote %s: %.1f MB in %.2f s", args.out, args.out.stat().st_size / 1e6, time.perf_counter() - t0)
    if args.check:
        import torch

        with torch.inference_mode():  # as ComfyUI's executor runs nodes
            check_checkpoint(comfy, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
