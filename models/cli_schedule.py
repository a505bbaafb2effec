"""``cli.py learn-schedule``: learn a few-step schedule for a walk, NFE and target, and save it where the schedule
registry finds it (``learned:<name>``; docs/schedules.md)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ..walk_core import WALKS
from ..walk_core.schedule_learning import LearnSpec, learn_schedule
from ..walk_core.schedule_learning.files import save_schedule

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  .venv/bin/python cli.py learn-schedule --model output/walk_models/painting.safetensors --nfe 8 --name painting_nfe8
  .venv/bin/python cli.py learn-schedule --mixture --size 16 --walk euler --nfe 5 --name patterns_euler5
  .venv/bin/python cli.py learn-schedule --references painting --size 32 --nfe 10 --name painting_patches10
The schedule is saved as <name>.safetensors in $WALK_SCHEDULES_DIR, else --output-dir/walk_schedules (default
./output/walk_schedules); walk it with the schedule learned:<name> (WalkSampler, cli.py run --set, bench).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="an own model file (.safetensors, cli.py train)")
    source.add_argument("--mixture", action="store_true", help="the exact mixture of the built-in patterns "
                        "(TargetDistributionMixture's default)")
    source.add_argument("--references", help="a patch target of procedural references, comma-separated")
    deterministic = [n for n, s in WALKS.items() if not s.stochastic]
    defaults = LearnSpec()
    parser.add_argument("--walk", choices=deterministic, default=defaults.walk, help="the walk (adams)")
    parser.add_argument("--nfe", type=int, default=defaults.nfe, help="denoiser evaluations of the walk (8)")
    parser.add_argument("--name", required=True, help="file name of the schedule (learned:<name>)")
    parser.add_argument("--size", type=int, default=0, help="picture size in pixels (default: the model's own; "
                        "64 for mixture and references)")
    parser.add_argument("--samples", type=int, default=32, help="training noise samples; as many are held out (32)")
    parser.add_argument("--evaluations", type=int, default=defaults.evaluations,
                        help="few-step walks the search may spend (300)")
    parser.add_argument("--minutes", type=float, default=5.0, help="time limit of the search (5; 0 = none)")
    parser.add_argument("--teacher-steps", type=int, default=64, help="levels of the many-step adams walk (64)")
    parser.add_argument("--chunk", type=int, default=16, help="items walked at once (memory; 0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training noise (item i: seed + i)")
    parser.add_argument("--output-dir", type=Path, help="folder whose walk_schedules/ receives the file (./output)")


def _target(args):
    size = args.size or None
    if args.model is not None:
        from .checkpoint import load_model  # noqa: PLC0415
        from .target import model_target  # noqa: PLC0415

        return model_target(load_model(args.model), size=size, name=args.model.stem)
    size = size or 64
    if args.mixture:
        from ..walk_core.targets.image_mixture import ImageMixtureSpec, image_mixture_target  # noqa: PLC0415

        return image_mixture_target(ImageMixtureSpec(), size, size)
    from ..walk_core.references import reference_image  # noqa: PLC0415
    from ..walk_core.targets.patch.target import PatchSpec, patch_target  # noqa: PLC0415

    names = [n.strip() for n in args.references.split(",") if n.strip()]
    images = torch.stack([reference_image(n, 128, 128) * 2 - 1 for n in names])
    return patch_target(PatchSpec(images=images, name="+".join(names)), size, size)


def run(args, progress=None) -> int:
    from ..walk_core.runner.paths import RunnerPaths, use_paths  # noqa: PLC0415

    spec = LearnSpec(walk=args.walk, nfe=args.nfe, teacher_steps=args.teacher_steps, train_samples=args.samples,
                     val_samples=args.samples, seed=args.seed, evaluations=args.evaluations, minutes=args.minutes,
                     chunk=args.chunk)
    spec.check()
    from ..walk_core.schedule_learning.files import check_name  # noqa: PLC0415

    check_name(args.name, "learn-schedule")  # before any walk
    base = RunnerPaths.default()
    with use_paths(RunnerPaths(base.input_dir, args.output_dir or base.output_dir)):
        result = learn_schedule(_target(args), spec, progress=progress)
        path = save_schedule(result, args.name, who="learn-schedule")
    print(path)
    log.info("%s", result.summary())
    log.info("schedule learned:%s: sigmas %s", path.name[: -len(".safetensors")],
             ", ".join(f"{float(s):.4g}" for s in result.sigmas))
    return 0
