"""Make a random-weight CLIP vision model with ComfyUI's own code (TEST ONLY).

For the opt-in ComfyUI integration test of StyleEncoder's ``clip_vision`` input: ComfyUI's *Load CLIP Vision*
(``comfy.clip_vision.load``) must detect the file and build its ``ClipVisionModel``, without downloading
anything. ComfyUI picks the architecture from the keys alone, so the smallest it accepts is the ViT-L/14 layout
(``comfy/clip_vision_config_vitl.json``: 24 blocks of width 1024, 224 px, about 300M parameters); this script
builds that model with ComfyUI's classes from the checkout given by ``--comfyui`` (nothing of ComfyUI is copied
here), sets every parameter from ``--seed`` as tests/comfyui_checkpoint.py does (weights N(0, 0.02²), biases 0,
norms 1), checks that ``comfy.clip_vision.load_clipvision_from_sd`` detects it with no missing keys and writes
it in fp16 (about 0.6 GB). The weights are random: the features mean nothing, but they are the real model's.

Nothing this script creates may be committed: write the file into a temporary folder. Run it with ComfyUI's
interpreter::

    $WALK_COMFYUI/venv/bin/python tests/comfyui_clip_vision.py --comfyui $WALK_COMFYUI \\
        --out <temporary folder>/models/clip_vision/random_vitl.safetensors --seed 0
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from comfyui_checkpoint import import_comfy, init_parameters

LOG = logging.getLogger("comfyui_clip_vision")
CONFIG = "clip_vision_config_vitl.json"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Write a random-weight CLIP vision model (ViT-L/14 layout) with "
                                            "ComfyUI's own classes (test-only; never commit the output).")
    p.add_argument("--comfyui", required=True, type=Path, help="the ComfyUI checkout whose code builds the model")
    p.add_argument("--out", required=True, type=Path, help="the .safetensors file to write (its folder is created)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    return p.parse_args(argv)


def write_clip_vision(comfy, out: Path, seed: int) -> None:
    import torch
    import comfy.clip_vision

    config = Path(comfy.clip_vision.__file__).with_name(CONFIG)
    model = comfy.clip_vision.ClipVisionModel(str(config))
    count = init_parameters(model.model, seed)
    sd = {k: (t.to(torch.float16) if t.is_floating_point() else t).contiguous() for k, t in model.get_sd().items()}
    missing = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: missing.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    try:
        loaded = comfy.clip_vision.load_clipvision_from_sd(dict(sd))
    finally:
        logging.getLogger().removeHandler(handler)
    if loaded is None or missing:
        raise AssertionError(f"ComfyUI does not load the model back: {missing or 'not detected'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    comfy.utils.save_torch_file(sd, str(tmp), metadata={"comment": f"random CLIP vision weights (seed {seed}) for "
                                                                   "tests only; do not commit"})
    os.replace(tmp, out)
    LOG.info("%s: %.0fM parameters", CONFIG, count / 1e6)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    comfy = import_comfy(args.comfyui, "cpu")
    started = time.perf_counter()
    write_clip_vision(comfy, args.out, args.seed)
    LOG.info("wrote %s: %.0f MB in %.1f s", args.out, args.out.stat().st_size / 1e6, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
