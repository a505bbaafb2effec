"""The benchmark's presets: default (the published run), quick (a minute) and smoke (seconds)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

from .accuracy import AccuracyConfig
from .overhead import OverheadConfig


@dataclass(frozen=True)
class ImageTargetSize:
    """Parameters of ``targets.image_target`` (smaller in the smoke preset)."""

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
    image_target: ImageTargetSize = field(default_factory=ImageTargetSize)


NFES: Tuple[int, ...] = (10, 20, 50, 100)


def default_config() -> BenchConfig:
    return BenchConfig(
        name="default",
        overhead=OverheadConfig(nfe=50, repeats=11),
        ring=AccuracyConfig(nfes=NFES, schedules=("karras", "exponential"), samples=2000, floor_repeats=20),
        image=AccuracyConfig(nfes=NFES, schedules=("karras", "exponential"), samples=1000, floor_repeats=20),
    )


def quick_config() -> BenchConfig:
    return BenchConfig(
        name="quick",
        overhead=OverheadConfig(nfe=20, repeats=3),
        ring=AccuracyConfig(nfes=NFES, schedules=("karras",), samples=500, floor_repeats=5),
        image=AccuracyConfig(nfes=(10, 20, 50), schedules=("karras",), samples=200, floor_repeats=5),
    )


def smoke_config() -> BenchConfig:
    return BenchConfig(
        name="smoke",
        overhead=OverheadConfig(shape=(2, 1, 8, 8), nfe=4, repeats=1, warmup=1),
        ring=AccuracyConfig(nfes=(4, 8), schedules=("karras",), samples=64, directions=16, floor_repeats=2, plot_nfe=8),
        image=AccuracyConfig(nfes=(4,), schedules=("karras",), samples=16, directions=16, floor_repeats=2, plot_nfe=4),
        image_target=ImageTargetSize(components=3, size=4, rank=2),
    )


PRESETS = {"default": default_config, "quick": quick_config, "smoke": smoke_config}
