"""``cli.py train``: train an own model from the command line (the arguments and the call)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .data import CROPS, from_references, load_folder
from .train import DEVICES, TrainConfig, train
from .unet import UNetConfig

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  .venv/bin/python cli.py train --references painting --out output/walk_models/painting.safetensors --minutes 10
  .venv/bin/python cli.py train --folder my_photos --size 64 --minutes 60 --out output/walk_models/photos.safetensors
  .venv/bin/python cli.py train --references bricks,foliage,marble --out output/walk_models/three.safetensors
Run the same command again to continue from the saved state (add --fresh to start over). The model's sample
grids (<name>.samples/) and validation losses (<name>.metrics.jsonl) are written beside it.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", type=Path, help="a folder of pictures (sub-folders holding pictures = classes)")
    source.add_argument("--references", help="procedural references, comma-separated (several = one class each)")
    parser.add_argument("--out", type=Path, required=True, help="the model file to write (.safetensors)")
    parser.add_argument("--val", type=Path, help="a folder of held-out pictures for the validation loss (default: "
                        "every 10th picture of a folder of 10 or more; for references, the same references made "
                        "with another seed)")
    parser.add_argument("--reference-size", type=int, default=128, help="pixels per side of the references (128)")
    parser.add_argument("--reference-seed", type=int, default=0, help="seed the references are made with (0; the "
                        "validation pictures use this + 1000)")
    defaults = TrainConfig()
    parser.add_argument("--size", type=int, default=defaults.size, help="training crop size (64)")
    parser.add_argument("--minutes", type=float, default=defaults.minutes, help="training time budget in all, resumed runs included (10; 0 = none)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimiser steps (0 = no limit)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    arch = UNetConfig()
    parser.add_argument("--width", type=int, default=arch.width, help="channels of the first U-Net level (32)")
    parser.add_argument("--levels", type=int, default=len(arch.mults), help="U-Net levels (3)")
    parser.add_argument("--blocks", type=int, default=arch.blocks, help="residual blocks per level (2)")
    parser.add_argument("--attention", action="store_true", help="self-attention at the coarsest level")
    parser.add_argument("--patch", type=int, choices=(1, 2, 4), default=arch.patch,
                        help="pixels per side folded into channels first (2 = ~3.5x faster, less fine detail)")
    parser.add_argument("--crops", choices=CROPS, default=defaults.crops)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", choices=DEVICES, default=defaults.device)
    parser.add_argument("--sample-every", type=int, default=defaults.sample_every)
    parser.add_argument("--val-every", type=int, default=defaults.val_every)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--fresh", action="store_true", help="start afresh even when a saved state exists")


def run(args, progress=None) -> int:
    if args.folder is not None:
        data = load_folder(args.folder)
        val = load_folder(args.val) if args.val else None
        if val is None:
            data, val = data.split()
    else:
        names = [n.strip() for n in args.references.split(",") if n.strip()]
        data = from_references(names, args.reference_size, args.reference_seed)
        val = load_folder(args.val) if args.val else from_references(names, args.reference_size,
                                                                     args.reference_seed + 1000)
    architecture = UNetConfig(width=args.width, mults=(1,) + (2,) * (args.levels - 1), blocks=args.blocks,
                              attention=(args.levels - 1,) if args.attention else (), patch=args.patch)
    config = TrainConfig(size=args.size, batch_size=args.batch_size, steps=args.steps, minutes=args.minutes,
                         lr=args.lr, crops=args.crops, seed=args.seed, device=args.device,
                         sample_every=args.sample_every, val_every=args.val_every,
                         checkpoint_every=args.checkpoint_every)
    result = train(data, args.out, config, architecture, val=val, resume=not args.fresh, progress=progress)
    print(result.path)
    log.info("%d steps (%s), %.0f s, validation loss %s (%s)", result.steps, result.stopped, result.seconds,
             "none" if result.val_loss is None else f"{result.val_loss:.4f}",
             "held out" if val is not None else "training crops")
    return 0
