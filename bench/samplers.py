"""One interface for everything the benchmark runs: the pack's walks and the peers' samplers.

A :class:`Sampler` runs ``(model, x, sigmas, seed) -> x`` with a plain denoiser ``model(x, sigma[B], **extra)``
and knows how many denoiser evaluations (NFE) it makes on a schedule of a given number of noise levels, so
every sampler gets the most levels that fit an NFE budget (multi-stage samplers get fewer levels).

* Pack walks (:func:`pack_sampler`): the walk's own ``WalkSpec.nfe`` and per-item noise ``ItemNoise`` seeded
  ``seed + i`` (DESIGN.md).
* Peers (``bench/peers.py``): their NFE is found by counting calls on a tiny batch (:func:`count_calls`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch

from ..walk_core import WALKS, ItemNoise, WalkSpec, make_sigmas

RunFn = Callable[..., torch.Tensor]  # (model, x, sigmas, seed) -> x

PACK = "pack"


@dataclass(frozen=True, eq=False)
class Sampler:
    """A named sampler of one group (``pack``, ``k-diffusion`` or ``ComfyUI``).

    ``run(model, x, sigmas, seed)`` samples from ``x`` (noise * sigmas[0]); ``seed`` seeds its internal noise.
    ``nfe_of(steps)`` is its number of denoiser evaluations on ``steps`` noise levels. ``own_schedule``:
    the sampler ignores the schedule's interior levels and only uses its ends (k-diffusion's ``dpm_fast``).
    ``slow``: its own per-step cost is far above the others' (the Brownian-tree SDE samplers on a CPU); the
    benchmark's presets give such samplers fewer runs.
    """

    name: str
    group: str
    stochastic: bool
    run: RunFn = field(repr=False)
    nfe_of: Callable[[int], int] = field(repr=False)
    note: str = ""
    own_schedule: bool = False
    slow: bool = False  # a peer whose per-step cost is far above the rest (Brownian-tree noise): fewer runs

    def steps_for(self, budget: int) -> int:
        """The most noise levels whose NFE fits ``budget`` (at least 1)."""
        if budget < 1:
            raise ValueError(f"Sampler {self.name}: budget={budget} is not allowed; expected >= 1")
        return _steps_for(self.nfe_of, budget)

    @property
    def is_pack(self) -> bool:
        return self.group == PACK


def _steps_for(nfe_of: Callable[[int], Optional[int]], budget: int) -> int:
    """Largest s with nfe_of(s) <= budget, for a non-decreasing nfe_of (binary search). A sampler that
    cannot run on very few levels (nfe_of(s) is None) starts at the fewest it runs on."""
    lo = next((s for s in range(1, 5) if nfe_of(s) is not None), None)
    if lo is None:
        raise ValueError("Sampler: it fails on schedules of 1 to 4 levels; expected to run on short schedules")
    if nfe_of(lo) > budget:
        return lo
    hi = lo * 2
    while nfe_of(hi) <= budget:
        lo, hi = hi, hi * 2
        if hi > 4 * budget + 8:  # a sampler whose NFE does not grow with its levels
            return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if nfe_of(mid) <= budget else (lo, mid)
    return lo


def pack_sampler(walk, label: Optional[str] = None, **options) -> Sampler:
    """The pack's walk ``walk`` (a ``walk_core.WALKS`` name or a ``WalkSpec``) with keyword ``options``.

    ``label`` names it in reports (default: the walk's name, plus the options when given)."""
    spec: WalkSpec = WALKS[walk] if isinstance(walk, str) else walk
    if not hasattr(spec, "fn") or not hasattr(spec, "nfe"):
        raise ValueError(f"pack_sampler: walk={walk!r} is not allowed; expected a name in walk_core.WALKS "
                         f"({', '.join(WALKS)}) or a WalkSpec")
    base = walk if isinstance(walk, str) else getattr(spec.fn, "walk_name", spec.fn.__name__)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(f"pack_sampler: options {unknown} are not allowed for walk {base}; "
                         f"expected some of {sorted(spec.options)}")
    if label is None:
        label = base + ("(" + ", ".join(f"{k}={v:g}" for k, v in options.items()) + ")" if options else "")

    def run(model, x, sigmas, seed):
        return spec.fn(model, x, sigmas, noise=ItemNoise.from_seed(seed, x.shape[0]), **options)

    nfe_of = functools.lru_cache(maxsize=None)(lambda steps: int(spec.nfe(steps, **options)))
    return Sampler(label, PACK, bool(spec.stochastic), run, nfe_of, note=spec.doc)


def pack_samplers(names=None) -> Dict[str, Sampler]:
    """Every registered walk (or those named) as samplers, in registry order."""
    names = list(WALKS) if names is None else list(names)
    return {name: pack_sampler(name) for name in names}


class CallCounter:
    """A denoiser wrapper that counts calls."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.calls = 0
        # the guided denoiser's hints for multistep walks (walk_core/guidance/chain.py: GuidanceChain.wrap)
        self.guided = getattr(denoiser, "guided", False)
        self.sigma_breaks = getattr(denoiser, "sigma_breaks", ())

    def __call__(self, x, sigma, **extra):
        self.calls += 1
        return self.denoiser(x, sigma, **extra)


def _probe_denoiser(x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
    """A smooth stand-in (the denoiser of N(0, 1/4 I)): probes need only finite, plausible outputs."""
    s2 = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype) ** 2
    return x * (0.25 / (0.25 + s2))


def probe_sigmas(steps: int) -> torch.Tensor:
    return make_sigmas("karras", steps, 0.002, 80.0).float()


def count_calls(run: RunFn, steps: int, seed: int = 0, shape=(2, 2)) -> Optional[int]:
    """Denoiser evaluations ``run`` makes on a karras schedule of ``steps`` levels (tiny batch); None when it
    fails on that many levels (some peers need at least two)."""
    model = CallCounter(_probe_denoiser)
    sigmas = probe_sigmas(steps)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * float(sigmas[0])
    try:
        run(model, x, sigmas, seed)
    except Exception:  # noqa: BLE001 -- a peer's own limitation, reported as "cannot run on this many levels"
        if steps > 2:
            raise
        return None
    return model.calls


class CountedNfe:
    """``nfe_of`` of a peer from counted calls: counted on 1..``probe`` levels and, when the counts are affine
    from 3 levels on (a fixed number of evaluations per level, as for every sampler here), extrapolated; counted
    again for more levels otherwise. The accuracy runs count their calls too and report what was used."""

    def __init__(self, run: RunFn, probe: int = 6):
        self.run = run
        self.table = {s: count_calls(run, s) for s in range(1, probe + 1)}
        tail = [self.table[s] for s in range(3, probe + 1)]
        steps = [b - a for a, b in zip(tail, tail[1:])] if None not in tail else []
        self.slope = steps[0] if steps and all(d == steps[0] for d in steps) and steps[0] > 0 else None

    def __call__(self, steps: int) -> Optional[int]:
        if steps not in self.table:
            if self.slope is not None:
                return self.table[3] + self.slope * (steps - 3)
            self.table[steps] = count_calls(self.run, steps)
        return self.table[steps]


def is_stochastic(run: RunFn, steps: int = 6, shape=(4, 2)) -> bool:
    """Whether two seeds give different samples from the same start (a sampler that draws noise)."""
    sigmas = probe_sigmas(steps)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * float(sigmas[0])
    a = run(_probe_denoiser, x.clone(), sigmas, 1)
    b = run(_probe_denoiser, x.clone(), sigmas, 2)
    return not bool(torch.allclose(a, b, rtol=0.0, atol=1e-6 * max(1.0, math.sqrt(float(a.square().mean())))))
