"""The guidance chains of the guided benchmark, built with the pack's public guidance API.

* ``cfg``: classifier-free guidance (Ho & Salimans 2022) at the scale, over the whole walk.
* ``cfg-interval``: the same, applied only on the middle of the noise levels (Kynkaanniemi et al. 2024,
  "Applying Guidance in a Limited Interval Improves Sample and Distribution Quality"): start/end percent
  0.25 / 0.55 of the walk (log-linear in sigma: sigma 5.7 .. 0.24 on 80 .. 0.002, near EDM2's interval).
* ``apg``: adaptive projected guidance (Sadat et al. 2024) at the scale, the pack's defaults (eta 0, momentum -0.5).
"""
from __future__ import annotations

from typing import Dict

from ..walk_core import GuidanceChain
from ..walk_core.guidance import APG, CFG

CHAIN_NAMES = ("cfg", "cfg-interval", "apg")


def guidance_chain(name: str, scale: float) -> GuidanceChain:
    """The chain ``name`` (one of CHAIN_NAMES) at guidance ``scale``."""
    if name == "cfg":
        return GuidanceChain().plus(CFG(weight=scale))
    if name == "cfg-interval":
        return GuidanceChain().plus(CFG(weight=scale, start_percent=0.25, end_percent=0.55))
    if name == "apg":
        return GuidanceChain().plus(APG(weight=scale))
    raise ValueError(f"guidance_chain: name={name!r} is not allowed; expected one of {', '.join(CHAIN_NAMES)}")


def describe(name: str, scale: float, sigma_min: float = 0.002, sigma_max: float = 80.0) -> str:
    """One line for the report."""
    if name == "cfg-interval":
        hi, lo = guidance_chain(name, scale).terms[0].sigma_interval(sigma_max, sigma_min)
        return f"CFG {scale:g} on sigma {hi:.2g}..{lo:.2g} only (Kynkaanniemi et al. 2024)"
    return {"cfg": f"CFG {scale:g} throughout (Ho & Salimans 2022)",
            "apg": f"APG {scale:g}, eta 0, momentum -0.5 (Sadat et al. 2024)"}.get(name, name)


def chains(names, scale: float) -> Dict[str, GuidanceChain]:
    return {name: guidance_chain(name, scale) for name in names}
