"""Noise schedules: pure functions ``(n, sigma_min, sigma_max, **params) -> sigmas``.

Each returns ``n + 1`` descending values in float64, from ``sigma_max`` to ``sigma_min`` and then
a final 0. All are valid for ``n = 1`` (``[sigma_max, 0]``) and for ``sigma_min == sigma_max``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict

import torch

from .registry import Registry, UnknownNameError


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule function and the defaults of its own parameters."""

    fn: Callable[..., torch.Tensor]
    params: Dict[str, float] = field(default_factory=dict)
    doc: str = ""

    def __call__(self, n: int, sigma_min: float, sigma_max: float, **params) -> torch.Tensor:
        """Calling the spec is calling the schedule: ``SCHEDULES[name](n, sigma_min, sigma_max)``."""
        return self.fn(n, sigma_min, sigma_max, **params)


class ScheduleRegistry(Registry[ScheduleSpec]):
    """The fixed schedules, plus learned ones by name: ``learned:<name>`` is the file ``<name>.safetensors`` in
    the learned-schedule folder (walk_core/schedule_learning/files.py), read when looked up. ``names()`` lists
    the fixed schedules only; ``learned_names()`` the files present."""

    def __getitem__(self, name: str) -> ScheduleSpec:
        if isinstance(name, str) and name.startswith("learned:"):
            from .schedule_learning.files import find_schedule  # noqa: PLC0415  (it imports this module)

            schedule = find_schedule(name)
            return ScheduleSpec(schedule, {}, f"learned: {schedule.metadata.get('walk')} at NFE "
                                f"{schedule.metadata.get('nfe')} on {schedule.metadata.get('target')}")
        try:
            return super().__getitem__(name)
        except UnknownNameError as error:
            raise UnknownNameError(f"{error}, or learned:<name> for a learned schedule file") from None

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and name.startswith("learned:"):
            return name in self.learned_names()
        return super().__contains__(name)

    def learned_names(self) -> list:
        from .schedule_learning.files import learned_names  # noqa: PLC0415

        return learned_names()


SCHEDULES = ScheduleRegistry("schedule")


def _check(name: str, n: int, sigma_min: float, sigma_max: float) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"schedule {name}: n={n} is not allowed; expected an integer >= 1")
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max)):
        raise ValueError(f"schedule {name}: sigma range ({sigma_min}, {sigma_max}) must be finite")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(
            f"schedule {name}: sigma_min={sigma_min}, sigma_max={sigma_max} is not allowed; "
            "expected 0 < sigma_min <= sigma_max"
        )


def _ramp(n: int) -> torch.Tensor:
    """n points from 0 to 1; a single point at 0 when n = 1 (the walk starts at sigma_max)."""
    return torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)


def _finish(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022), eq. 5: uniform steps in sigma^(1/rho)."""
    _check("karras", n, sigma_min, sigma_max)
    if rho <= 0:
        raise ValueError(f"schedule karras: rho={rho} is not allowed; expected > 0")
    t = _ramp(n)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return _finish((hi + t * (lo - hi)) ** rho)


def exponential(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Uniform steps in log sigma."""
    _check("exponential", n, sigma_min, sigma_max)
    t = _ramp(n)
    return _finish(torch.exp(math.log(sigma_max) + t * (math.log(sigma_min) - math.log(sigma_max))))


def polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> torch.Tensor:
    """Log sigma interpolated along a polynomial ramp of degree rho (rho = 1: exponential)."""
    _check("polyexponential", n, sigma_min, sigma_max)
    if rho <= 0:
        raise ValueError(f"schedule polyexponential: rho={rho} is not allowed; expected > 0")
    ramp = (1 - _ramp(n)) ** rho  # 1 -> 0
    return _finish(torch.exp(math.log(sigma_min) + ramp * (math.log(sigma_max) - math.log(sigma_min))))


def linear(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Uniform steps in sigma."""
    _check("linear", n, sigma_min, sigma_max)
    t = _ramp(n)
    return _finish(sigma_max + t * (sigma_min - sigma_max))


def vp(n: int, sigma_min: float, sigma_max: float, beta_min: float = 0.1, beta_max: float = 20.0) -> torch.Tensor:
    """Song et al. (2021) VP-SDE, uniform in t, expressed as the equivalent VE sigma.

    sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1) with beta_d = beta_max - beta_min;
    the t interval is the one whose sigmas are [sigma_min, sigma_max].
    """
    _check("vp", n, sigma_min, sigma_max)
    if not 0 <= beta_min < beta_max:
        raise ValueError(
            f"schedule vp: beta_min={beta_min}, beta_max={beta_max} is not allowed; expected 0 <= beta_min < beta_max"
        )
    beta_d = beta_max - beta_min

    def t_of(sigma: float) -> float:  # inverse of sigma(t): solve beta_d/2 t^2 + beta_min t = log(1 + sigma^2)
        c = math.log1p(sigma * sigma)
        return (math.sqrt(beta_min**2 + 2 * beta_d * c) - beta_min) / beta_d

    t_hi, t_lo = t_of(sigma_max), t_of(sigma_min)
    t = t_hi + _ramp(n) * (t_lo - t_hi)
    sigmas = torch.sqrt(torch.expm1(beta_d * t**2 / 2 + beta_min * t))
    sigmas[-1], sigmas[0] = sigma_min, sigma_max  # exact endpoints despite the round trip (n = 1: sigma_max)
    return _finish(sigmas)


SCHEDULES.register("karras", ScheduleSpec(karras, {"rho": 7.0}, "Karras et al. 2022 (rho)"))
SCHEDULES.register("exponential", ScheduleSpec(exponential, {}, "uniform in log sigma"))
SCHEDULES.register("polyexponential", ScheduleSpec(polyexponential, {"rho": 1.0}, "polynomial ramp in log sigma"))
SCHEDULES.register("linear", ScheduleSpec(linear, {}, "uniform in sigma"))
SCHEDULES.register("vp", ScheduleSpec(vp, {"beta_min": 0.1, "beta_max": 20.0}, "VP-SDE, uniform in t"))


def make_sigmas(name: str, n: int, sigma_min: float, sigma_max: float, **params) -> torch.Tensor:
    """Look up schedule ``name`` and build its sigmas; unknown params are an error."""
    spec = SCHEDULES[name]
    unknown = set(params) - set(spec.params)
    if unknown:
        raise ValueError(
            f"schedule {name}: unknown parameter(s) {sorted(unknown)}; expected {sorted(spec.params) or 'none'}"
        )
    return spec.fn(n, sigma_min, sigma_max, **params)
