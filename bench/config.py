"""The benchmark's presets: default (the published run, <= 10 min on 2 cores), quick (about a minute) and smoke
(seconds, for the test suite).

What each preset runs where is stated in the report (``report.choices_section``): the pack's walks get every
budget and schedule; the peers the same on the 2-D target; on the 768-D targets, where one run of a peer
with Brownian-tree noise costs ~15x another's (see the overhead table), those "slow" peers get fewer budgets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from .accuracy import AccuracyConfig
from .chains import CHAIN_NAMES
from .overhead import OverheadConfig


@dataclass(frozen=True)
class ImageTargetSize:
    """Parameters of ``targets.image_target`` / ``class_target`` (smaller in the smoke preset)."""

    components: int = 12
    size: int = 16
    rank: int = 6


@dataclass(frozen=True)
class BenchConfig:
    name: str
    threads: int = 1  # torch intra-op threads for the whole run (1: steady timings on a shared machine)
    overhead: OverheadConfig = field(default_factory=OverheadConfig)
    ring: AccuracyConfig = field(default_factory=AccuracyConfig)
    image: AccuracyConfig = field(default_factory=AccuracyConfig)
    classes: Optional[AccuracyConfig] = field(default_factory=AccuracyConfig)  # None: no guided target
    image_target: ImageTargetSize = field(default_factory=ImageTargetSize)
    peers: Tuple[str, ...] = ("kd", "comfy")  # peer sources (comfy only when $WALK_COMFYUI is set)
    peer_names: Optional[Tuple[str, ...]] = None  # only these peers (None: all that load)


NFES: Tuple[int, ...] = (10, 20, 50, 100)
BOTH = ("karras", "exponential")


def default_config() -> BenchConfig:
    return BenchConfig(
        name="default",
        overhead=OverheadConfig(nfe=20, repeats=11, min_repeats=2, max_seconds=2.0),
        ring=AccuracyConfig(nfes=NFES, schedules=BOTH, samples=2000, floor_repeats=60, spread_seeds=8,
                            repeat_seeds=4, repeat_nfes=(10, 20)),
        image=AccuracyConfig(nfes=NFES, schedules=BOTH, samples=1000, floor_repeats=20, spread_seeds=8,
                             peer_other_nfes=(10, 20), slow_nfes=(10, 20), slow_schedules=("karras",)),
        classes=AccuracyConfig(nfes=(10, 20, 50), schedules=("karras",), samples=1000, floor_repeats=20,
                               spread_seeds=8, peer_nfes=(10, 20), slow_nfes=(10, 20), chains=("cfg",),
                               pack_chains=CHAIN_NAMES),
    )


def quick_config() -> BenchConfig:
    return BenchConfig(
        name="quick",
        overhead=OverheadConfig(nfe=10, repeats=3, warmup=1, min_repeats=1, max_seconds=0.5),
        ring=AccuracyConfig(nfes=(10, 20, 50), schedules=("karras",), samples=500, floor_repeats=5, spread_seeds=4,
                            repeat_seeds=3, repeat_nfes=(10, 20)),
        image=AccuracyConfig(nfes=(10, 20), schedules=("karras",), samples=200, floor_repeats=5, spread_seeds=4,
                             slow_nfes=(10,)),
        classes=AccuracyConfig(nfes=(10, 20), schedules=("karras",), samples=200, floor_repeats=5, spread_seeds=4,
                               slow_nfes=(10,), chains=("cfg",), pack_chains=CHAIN_NAMES),
    )


def smoke_config() -> BenchConfig:
    tiny = dict(directions=16, floor_repeats=2, spread_seeds=2, spread_nfe=4)
    return BenchConfig(
        name="smoke",
        overhead=OverheadConfig(shape=(2, 1, 8, 8), nfe=4, repeats=1, warmup=1),
        ring=AccuracyConfig(nfes=(4, 8), schedules=("karras",), samples=64, plot_nfe=8, **tiny),
        image=AccuracyConfig(nfes=(4,), schedules=("karras",), samples=16, plot_nfe=4, **tiny),
        classes=AccuracyConfig(nfes=(4,), schedules=("karras",), samples=16, plot_nfe=4, chains=("cfg",),
                               pack_chains=CHAIN_NAMES, **tiny),
        image_target=ImageTargetSize(components=3, size=4, rank=2),
        peers=(),
    )


PRESETS = {"default": default_config, "quick": quick_config, "smoke": smoke_config}
