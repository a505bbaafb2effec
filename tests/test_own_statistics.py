"""walk_core.guidance.own_statistics: a patch target's walk guided by its references' own texture statistics keeps
the references' texture statistics better, and keeps its colours and novelty."""
from __future__ import annotations

import statistics

import pytest
import torch

from rwalk.walk_core import quality
from rwalk.walk_core.guidance import GuidanceChain
from rwalk.walk_core.guidance.energy import EnergyTerm
from rwalk.walk_core.guidance.own_statistics import ENCODER_SEED, STATISTICS, STYLE_END, STYLE_WEIGHT, own_statistics
from rwalk.walk_core.references import reference_image
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, patch_target
from posterior_spec import PosteriorSpec as PatchSpec  # the posterior denoiser's own settings


def ref(name: str, size: int) -> torch.Tensor:
    return reference_image(name, size, size, 0) * 2 - 1  # walk units


def test_the_chain_holds_a_style_term_against_the_references():
    r = ref("marble", 32)[None]
    (style,) = own_statistics(r).terms  # the colours are the patch target's own palette hold
    assert isinstance(style, EnergyTerm) and style.energy == "style"
    assert (style.weight, style.start_percent, style.end_percent) == (STYLE_WEIGHT, 0.0, STYLE_END)
    assert style.style.statistics == STATISTICS and style.style.encoder_config["seed"] == ENCODER_SEED
    assert ENCODER_SEED != 0  # not the random features walk_core.quality's Gram distance measures with
    # appended to a given chain, and a weight of 0 leaves the term out
    first = EnergyTerm(weight=0.1, energy="content", reference=r)
    assert own_statistics(r, GuidanceChain().plus(first)).terms[0] is first
    assert own_statistics(r, style_weight=0.0).terms == ()


@pytest.mark.parametrize("bad", [torch.zeros(3, 32, 32), torch.zeros(1, 4, 32, 32), "marble"])
def test_references_that_are_not_rgb_pictures_are_refused(bad):
    with pytest.raises(ValueError, match=r"own_statistics: references .*expected \[N, 3, H, W\]"):
        own_statistics(bad)


def test_guided_walks_keep_texture_statistics_closer():
    # 64 px, marble and foliage, seeds 0-1, both walks as shipped (the patch target's walk; its palette hold keeps
    # the colours in both): Gram / halves measured 0.54 -> 0.33, colour 0.49 -> 0.51, novelty 0.98 -> 0.96 (seeds
    # 2-3: 0.42 -> 0.25, 0.46 -> 0.38, 0.99 -> 0.96; seeds 4-5: 0.60 -> 0.37, 0.54 -> 0.48, 0.98 -> 0.96)
    ratios = {}
    for guided in (False, True):
        got = {"colour_swd": [], "gram": [], "novelty": []}
        for name in ("marble", "foliage"):
            r = ref(name, 64)
            target = patch_target(PatchSpec(r[None]), 64, 64)
            chain = own_statistics(r[None]) if guided else GuidanceChain()
            request = WalkRequest(walk=WALK, steps=STEPS, seed=0, batch_size=2, options={"s_noise": WALK_S_NOISE})
            x = run_walk(target, request, chain).x
            for i in range(2):
                report = quality.patch_report(x[i], r)
                for key, values in got.items():
                    values.append(report[key] / report[f"{key}_halves"])
        ratios[guided] = {key: statistics.mean(values) for key, values in got.items()}
    assert ratios[True]["gram"] < 0.8 * ratios[False]["gram"], ratios
    assert ratios[True]["colour_swd"] < 1.5, ratios
    assert ratios[True]["novelty"] > 0.9 * ratios[False]["novelty"], ratios
