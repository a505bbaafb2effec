"""The walk the patch target is walked with (walk_core.targets.patch WALK, STEPS, WALK_S_NOISE): its pictures keep
less fine detail than the references, more fresh noise per step gives some of it back, and every shipped workflow
that walks a patch target with WalkSampler uses that walk."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from rwalk.walk_core.references import reference_image
from rwalk.walk_core.runner import load_workflow
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, patch_target
from posterior_spec import PosteriorSpec as PatchSpec  # the posterior denoiser's own settings

ROOT = Path(__file__).resolve().parents[1]
LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)


def detail(x: torch.Tensor) -> torch.Tensor:
    """Fine-detail energy per picture: the mean squared Laplacian of [B, 3, H, W]."""
    return F.conv2d(x, LAPLACE, groups=3).square().mean(dim=(1, 2, 3))


def test_more_walk_noise_gives_the_patch_target_back_fine_detail():
    ref = reference_image("marble", 48, 48, 0) * 2 - 1
    target = patch_target(PatchSpec(ref[None]), 48, 48)
    kept = {}
    for s_noise in (1.0, WALK_S_NOISE):
        x = run_walk(target, WalkRequest(walk=WALK, steps=STEPS, seed=0, batch_size=4, options={"s_noise": s_noise})).x
        assert torch.isfinite(x).all()
        kept[s_noise] = float((detail(x) / detail(ref[None])).mean())
    # measured: 0.96 of the reference's detail at s_noise 1, 1.33 at 1.5 (same seeds, so the same noise draws; at
    # level_sigma 0.6, 0.80 and 1.10; with 20 euler_ancestral steps 0.27 at 1 and 0.42 at 1.15)
    assert kept[1.0] < 1.0, f"the patch target's pictures are expected to lose fine detail: {kept}"
    assert kept[WALK_S_NOISE] > 1.2 * kept[1.0] and kept[WALK_S_NOISE] < 1.6, kept  # more, not a noise picture


def test_shipped_workflows_walk_patch_targets_with_its_walk():
    """Every shipped workflow walks a patch target with WalkSampler the way it is measured: its walk, levels and
    noise scale (walk_core.targets.patch WALK, STEPS, WALK_S_NOISE)."""
    from rwalk.nodes import NODE_CLASS_MAPPINGS
    from rwalk.walk_core.runner import IO_NODE_CLASSES

    from test_workflows import WORKFLOWS  # the weight-free ones: the others need ComfyUI's loaders

    table = {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
    walked = 0
    for path in WORKFLOWS:
        api, _ = load_workflow(path, table)
        for node_id, node in api.items():
            if node["class_type"] != "WalkSampler":
                continue
            source = node["inputs"]["target"][0]
            if api[str(source)]["class_type"] == "TargetDistributionPatches":
                walked += 1
                walk = tuple(node["inputs"][k] for k in ("walk", "steps", "s_noise"))
                assert walk == (WALK, STEPS, WALK_S_NOISE), f"{path.name} node {node_id}"
    assert walked >= 5, "the default, texture, tileable, photo and faithful workflows walk a patch target"
