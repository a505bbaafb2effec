"""The peers: k-diffusion's samplers (PyPI ``k-diffusion``) and, when ``$WALK_COMFYUI`` names a ComfyUI checkout,
ComfyUI's own, as :class:`~.samplers.Sampler` objects named ``kd:<name>`` and ``comfy:<name>``.

Every ``sample_<name>`` function of a loaded ``sampling`` module is a peer unless it is skipped for a stated
reason (:data:`SKIP`, or a signature other than ``(model, x, sigmas, ...)``). Peers' internal noise is made
reproducible from the run's seed: torch's global generator is seeded with it (k-diffusion's ancestral noise
and Brownian-tree seeds come from there), ComfyUI samplers also get ``extra_args={"seed": seed}`` (their own
seeding). The global generator's state is restored afterwards. Every peer starts from the same ``x`` as the
walks. NFE per number of levels and whether a peer draws noise are measured by running it on a tiny batch.
Nothing here fails when a source is missing: it is skipped with a log line and listed in the report.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
import subprocess
import warnings
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .peer_comfy import ENV, ComfyModel, comfy_root, load_comfy_sampling
from .peer_kdiffusion import load_kdiffusion_sampling
from .samplers import CountedNfe, Sampler, is_stochastic

log = logging.getLogger(__name__)

SOURCES = ("kd", "comfy")
GROUPS = {"kd": "k-diffusion", "comfy": "ComfyUI"}

# name suffix or name -> why the sampler is not run on a plain denoiser
SKIP_SUFFIX = {
    "_cfg_pp": "needs ComfyUI's CFG guider (post-CFG hook on the unconditional branch)",
    "_RF": "rectified-flow (CONST) parameterisation; the targets are EDM/eps (x = x0 + sigma * noise)",
    "_gpu": "the same as the sampler without `_gpu` here (only the Brownian tree's device differs)",
}
SKIP_NAME = {
    "dpm_adaptive": "adaptive step size: its NFE is set by tolerances, not by the budget",
}


@dataclass
class PeerSet:
    """The loaded peers (name -> Sampler, in load order), those skipped (name -> reason) and the sources
    that did not load (source -> reason)."""

    samplers: Dict[str, Sampler] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)
    unavailable: Dict[str, str] = field(default_factory=dict)
    sources: Dict[str, str] = field(default_factory=dict)  # group -> where its samplers were loaded from

    def only(self, names: Optional[Sequence[str]]) -> "PeerSet":
        """A copy restricted to ``names`` (those loaded); None keeps all."""
        if names is None:
            return self
        unknown = [n for n in names if n not in self.samplers and n not in self.skipped]
        for name in unknown:
            log.info("peers: %s is not available here; skipped", name)
        keep = {n: self.samplers[n] for n in names if n in self.samplers}
        return PeerSet(keep, dict(self.skipped), dict(self.unavailable), dict(self.sources))


class _Quiet(warnings.catch_warnings):
    """Silences peers' own warnings that say nothing about the result (torchsde's float32 round-off at the tree
    ends, numpy deprecations)."""

    def __enter__(self):
        super().__enter__()
        warnings.filterwarnings("ignore", message="Should have t[ab]")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # numpy 2 deprecations in the peers' code
        return self


def _kd_runner(fn: Callable) -> Callable:
    def run(model, x, sigmas, seed):
        with torch.random.fork_rng(devices=[]), _Quiet():
            torch.manual_seed(seed)
            return fn(model, x, sigmas.to(x.dtype), disable=True)

    return run


def _comfy_runner(fn: Callable) -> Callable:
    def run(model, x, sigmas, seed):
        sigmas = sigmas.to(x.dtype)
        positive = sigmas[sigmas > 0]
        wrapped = ComfyModel(model, float(positive.min()), float(sigmas[0]))
        with torch.random.fork_rng(devices=[]), _Quiet():
            torch.manual_seed(seed)
            return fn(wrapped, x, sigmas, extra_args={"seed": seed}, disable=True)

    return run


def _own_schedule_runner(fn: Callable, comfy: bool) -> Callable:
    """``sample_dpm_fast(model, x, sigma_min, sigma_max, n)``: the schedule's ends and n = its number of levels."""

    def run(model, x, sigmas, seed):
        sigmas = sigmas.to(x.dtype)
        positive = sigmas[sigmas > 0]
        lo, hi, n = float(positive.min()), float(sigmas[0]), len(sigmas) - 1
        if comfy:
            model = ComfyModel(model, lo, hi)
        with torch.random.fork_rng(devices=[]), _Quiet():
            torch.manual_seed(seed)
            return fn(model, x, lo, hi, n, disable=True)

    return run


def _skip_reason(name: str) -> Optional[str]:
    if name in SKIP_NAME:
        return SKIP_NAME[name]
    for suffix, reason in SKIP_SUFFIX.items():
        if name.endswith(suffix):
            return reason
    return None


def _uses_brownian_tree(fn: Callable, module, depth: int = 2) -> bool:
    """Whether the sampler (or a sampler of ``module`` it delegates to) draws its noise from torchsde's Brownian
    tree: slow on a CPU (see the overhead table)."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    if "BrownianTreeNoiseSampler" in source:
        return True
    called = {name for name in re.findall(r"\b(sample_\w+)\(", source) if name != fn.__name__}
    return depth > 0 and any(_uses_brownian_tree(getattr(module, name), module, depth - 1)
                             for name in called if hasattr(module, name))


def peers_of(module, source: str) -> Tuple[Dict[str, Sampler], Dict[str, str]]:
    """The samplers of one loaded ``sampling`` module, and the skipped ones with their reasons."""
    comfy = source == "comfy"
    samplers, skipped = {}, {}
    for attr in sorted(a for a in dir(module) if a.startswith("sample_")):
        name, fn = attr[len("sample_"):], getattr(module, attr)
        label = f"{source}:{name}"
        reason = _skip_reason(name)
        params = list(inspect.signature(fn).parameters)
        own = params[:5] == ["model", "x", "sigma_min", "sigma_max", "n"]
        if reason is None and params[:3] != ["model", "x", "sigmas"] and not own:
            reason = f"signature ({', '.join(params[:5])}, ...) is not (model, x, sigmas, ...)"
        if reason:
            skipped[label] = reason
            continue
        run = _own_schedule_runner(fn, comfy) if own else (_comfy_runner(fn) if comfy else _kd_runner(fn))
        try:
            stochastic = is_stochastic(run)
            nfe_of = CountedNfe(run)
            if nfe_of(2) is None:
                raise ValueError("it fails on a schedule of 2 levels")
        except Exception as err:  # a peer that cannot run on a plain denoiser
            skipped[label] = f"fails on a plain denoiser: {type(err).__name__}: {err}"
            log.info("peers: %s skipped: %s", label, skipped[label])
            continue
        note = "own schedule: only the ends of the schedule and n = its levels are used" if own else ""
        samplers[label] = Sampler(label, GROUPS[source], stochastic, run, nfe_of, note=note, own_schedule=own,
                                  slow=_uses_brownian_tree(fn, module))
    return samplers, skipped


def _provenance(source: str, module) -> str:
    """Version or commit of a loaded source, and its file."""
    path = Path(module.__file__)
    if source == "kd":
        try:
            return f"k-diffusion {importlib.metadata.version('k-diffusion')} (`k_diffusion/sampling.py`)"
        except importlib.metadata.PackageNotFoundError:
            return "k-diffusion (`k_diffusion/sampling.py`)"
    try:
        commit = subprocess.run(["git", "-C", str(path.parent), "log", "-1", "--format=%h %cs"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"ComfyUI {commit} (`${ENV}/comfy/k_diffusion/sampling.py`)".replace("  ", " ")


def load_peers(sources: Sequence[str] = SOURCES, comfyui: Optional[str] = None) -> PeerSet:
    """Every peer of ``sources`` that loads here (``comfyui`` overrides ``$WALK_COMFYUI``)."""
    result = PeerSet()
    for source in sources:
        if source not in SOURCES:
            raise ValueError(f"load_peers: source {source!r} is not allowed; expected some of {SOURCES}")
        try:
            if source == "kd":
                module = load_kdiffusion_sampling()
            else:
                if comfy_root(comfyui) is None:
                    raise ValueError(f"${ENV} is not set (the path of a ComfyUI checkout)")
                module = load_comfy_sampling(comfyui)
        except (ImportError, ValueError, OSError, SyntaxError) as err:
            result.unavailable[GROUPS[source]] = str(err)
            log.info("peers: %s skipped: %s", GROUPS[source], err)
            continue
        samplers, skipped = peers_of(module, source)
        result.sources[GROUPS[source]] = _provenance(source, module)
        result.samplers.update(samplers)
        result.skipped.update(skipped)
        log.info("peers: %d from %s (%d skipped)", len(samplers), GROUPS[source], len(skipped))
    return result


def peer_names(peers: PeerSet) -> List[str]:
    return list(peers.samplers)
