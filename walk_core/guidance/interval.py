"""Classifier-free guidance limited to a sigma interval given in sigma (Kynkaeaenniemi et al. 2024)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Tuple

from .terms import CFG, invalid, register_term

# the paper's interval for Stable Diffusion XL, (sigma_lo, sigma_hi] = (0.28, 5.42]
PAPER_SIGMA_HI, PAPER_SIGMA_LO = 5.42, 0.28


@register_term
@dataclass(frozen=True)
class IntervalCFG(CFG):
    """Guidance interval (Kynkaeaenniemi, Aittala, Karras, Laine, Aila & Lehtinen 2024, "Applying Guidance in a
    Limited Interval Improves Sample and Distribution Quality in Diffusion Models", NeurIPS):

        D = D_u + w (D_c - D_u)   for sigma_lo <= sigma <= sigma_hi,   D = D_c elsewhere

    Guidance at high sigma drops modes, at low sigma it does little; the paper guides only in the middle. Every
    term's start/end percent already is such an interval, but in percent of the walk (log-linear over the walk's
    own sigma range), so it moves with the schedule's range; this term takes the paper's form, absolute sigmas in
    the target's units (EDM / k-diffusion sigma), and acts where both intervals hold (the percents default to the
    whole walk). Defaults: the paper's interval for Stable Diffusion XL, (0.28, 5.42]. The paper's interval is
    open at sigma_lo; here both ends are closed, like every term's.
    """

    kind: ClassVar[str] = "cfg_interval"
    sigma_hi: float = PAPER_SIGMA_HI
    sigma_lo: float = PAPER_SIGMA_LO

    def __post_init__(self):
        super().__post_init__()
        for name in ("sigma_hi", "sigma_lo"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise invalid(self, name, value, "a finite sigma >= 0")

    def check(self, target) -> None:
        # the order of the two ends is checked here, before the walk, rather than on construction: the node's
        # widgets are set one at a time (an interval moved below 0.28 passes through sigma_lo > sigma_hi)
        if self.sigma_lo > self.sigma_hi:
            raise invalid(self, "sigma_lo", self.sigma_lo, f"sigma_lo <= sigma_hi={self.sigma_hi}")
        super().check(target)

    def sigma_interval(self, sigma_max: float, sigma_min: float) -> Tuple[float, float]:
        hi, lo = super().sigma_interval(sigma_max, sigma_min)
        return min(hi, self.sigma_hi), max(lo, self.sigma_lo)
