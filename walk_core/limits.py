"""Resource limits: what one run may ask of the machine, checked before the work that would need it.

Every limit has a documented default and an environment variable (README, "Limits"); the CLI's
``--max-memory`` sets the memory limit of one run. A value over a limit is a :class:`LimitError`
(a ValueError) that says what the run would take, the limit, and how to raise it.

The memory of a walk is estimated, not measured: one walk state is ``batch x channels x height x width``
float32 values, and a walk holds about

    WALK_COPIES + 3 x frames + target factor

such states at once: the walk's own copies (state, noise, estimate, derivative, multistep history, the
prefetched noise, the output picture), ``x`` and ``x-hat-0`` of every trajectory frame kept plus the
frames as pictures, and the target's working memory per state (its network's activations, its patch
tables). Targets state their factor in ``info["memory_factor"]`` (measured as peak memory per state
between 128 and 384 px on the CPU); one that states none is costed with :data:`DEFAULT_TARGET_FACTOR`.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Iterator, Mapping, Optional

GIB = 1024 ** 3
MIB = 1024 ** 2
FLOAT_BYTES = 4  # walk state is float32 (DESIGN.md, Precision)
WALK_COPIES = 12  # states a walk holds besides its trajectory and its target (see the module docstring)

#: Working memory of a target per walk state when the target states none (``info["memory_factor"]``):
#: about the patch target's, the pack's most used (peak memory per state measured on the CPU: patches ~130,
#: style energy ~110 with the random encoder and ~330 with vgg19_adain, the default own model ~600, an
#: image mixture ~80 per component). Latent targets (a ComfyUI MODEL, whose network ComfyUI manages) use
#: LATENT_TARGET_FACTOR.
DEFAULT_TARGET_FACTOR = 160.0
LATENT_TARGET_FACTOR = 8.0


class LimitError(ValueError):
    """A run, file or picture over a documented resource limit (README, "Limits")."""


@dataclass(frozen=True)
class Limits:
    """The limits of one run; ``Limits.from_env()`` reads the environment variables named in ``ENV``."""

    max_memory_gb: float = 16.0  # estimated working memory of one walk (or less: 3/4 of the machine's memory)
    max_pixels: int = 4 * 4096 * 4096  # pixels one walk makes: width x height x batch
    max_input_pixels: int = 8192 * 8192  # pixels of a picture file (all frames), checked before decoding it
    max_file_mb: float = 2048.0  # a model, style code or weights file
    max_network_params: int = 256 * 1024 * 1024  # parameters of a network built from a file's metadata
    max_workflow_mb: float = 32.0  # a workflow document: JSON file, text, or a PNG's text chunk decompressed

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_gb * GIB)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MIB)

    @property
    def max_workflow_bytes(self) -> int:
        return int(self.max_workflow_mb * MIB)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Limits":
        """The defaults, each replaced by its environment variable where that is set."""
        environ = os.environ if environ is None else environ
        values = {"max_memory_gb": min(cls.max_memory_gb, machine_memory_gb() * 0.75)}
        for f in fields(cls):
            text = environ.get(ENV[f.name])
            if text is None or not text.strip():
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise LimitError(f"environment variable {ENV[f.name]}={text!r} is not allowed; expected a "
                                 f"positive number ({DOC[f.name]})")
            values[f.name] = int(value) if f.type in (int, "int") else value
        return cls(**values)


ENV = {
    "max_memory_gb": "WALK_MAX_MEMORY_GB",
    "max_pixels": "WALK_MAX_PIXELS",
    "max_input_pixels": "WALK_MAX_INPUT_PIXELS",
    "max_file_mb": "WALK_MAX_FILE_MB",
    "max_network_params": "WALK_MAX_NETWORK_PARAMS",
    "max_workflow_mb": "WALK_MAX_WORKFLOW_MB",
}
DOC = {
    "max_memory_gb": "GiB of estimated memory one walk may need",
    "max_pixels": "pixels one walk may make, width x height x batch",
    "max_input_pixels": "pixels of a picture file, all frames",
    "max_file_mb": "MiB of a model, style code or weights file",
    "max_network_params": "parameters of a network a file's metadata describes",
    "max_workflow_mb": "MiB of a workflow document",
}


def machine_memory_gb() -> float:
    """Physical memory of this machine in GiB (infinite where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (AttributeError, ValueError, OSError):
        return math.inf


_limits: ContextVar[Optional[Limits]] = ContextVar("walk_limits", default=None)


def current_limits() -> Limits:
    """The limits of the run in progress: those set with :func:`use_limits`, else the environment's."""
    return _limits.get() or Limits.from_env()


@contextmanager
def use_limits(limits: Optional[Limits] = None, **changes) -> Iterator[Limits]:
    """Make ``limits`` (default: the current ones) with ``changes`` the limits of the code in the block."""
    chosen = replace(limits or current_limits(), **changes)
    token = _limits.set(chosen)
    try:
        yield chosen
    finally:
        _limits.reset(token)


def how_to_raise(name: str) -> str:
    extra = " or `cli.py run --max-memory GB`" if name == "max_memory_gb" else ""
    return f"raise the limit with the environment variable {ENV[name]}{extra}"


def gib(n_bytes: float) -> str:
    """A size in words: "3.2 GiB", "12 MiB", "3,740 GiB"."""
    if n_bytes >= 1000 * GIB:
        return f"{n_bytes / GIB:,.0f} GiB"
    return f"{n_bytes / GIB:.3g} GiB" if n_bytes >= 0.1 * GIB else f"{n_bytes / MIB:.3g} MiB"


# --------------------------------------------------------------------------------------------- walks

@dataclass(frozen=True)
class WalkEstimate:
    """What one walk would take: pixels made, states held, bytes."""

    pixels: int  # width x height x batch
    state_bytes: int  # one walk state
    states: float  # states held at once
    frames: int  # trajectory frames kept

    @property
    def bytes(self) -> int:
        return int(self.state_bytes * self.states)


def trajectory_frames(steps: int, trajectory_every: int) -> int:
    """Frames a walk keeps: every ``trajectory_every``-th step and the last (only the last for 0)."""
    return 1 if trajectory_every <= 0 else steps // trajectory_every + 1


def estimate_walk(width: int, height: int, batch: int, steps: int = 1, trajectory_every: int = 0, *,
                  channels: int = 3, cells_per_pixel: float = 1.0, target_factor: float = 0.0) -> WalkEstimate:
    """The estimate of the module docstring. ``cells_per_pixel`` < 1 for latent walks (1/64 for an 8x VAE)."""
    pixels = int(width) * int(height) * int(batch)
    state_bytes = int(math.ceil(pixels * cells_per_pixel)) * int(channels) * FLOAT_BYTES
    frames = trajectory_frames(int(steps), int(trajectory_every))
    return WalkEstimate(pixels, state_bytes, WALK_COPIES + 3 * frames + float(target_factor), frames)


def check_walk(who: str, width: int, height: int, batch: int, steps: int = 1, trajectory_every: int = 0, *,
               channels: int = 3, cells_per_pixel: float = 1.0, target_factor: float = 0.0,
               target: str = "", unit: str = "px") -> WalkEstimate:
    """Raise :class:`LimitError` when a walk of this size is over the pixel or memory limit."""
    limits = current_limits()
    est = estimate_walk(width, height, batch, steps, trajectory_every, channels=channels,
                        cells_per_pixel=cells_per_pixel, target_factor=target_factor)
    size = f"{width}x{height} {unit} x batch {batch}"
    if est.pixels > limits.max_pixels:
        raise LimitError(f"{who}: {size} = {est.pixels:,} pixels in one walk; the limit is {limits.max_pixels:,} "
                         f"(WALK_MAX_PIXELS). Make fewer or smaller pictures, or {how_to_raise('max_pixels')}")
    parts = [f"{WALK_COPIES} walk states", f"{3 * est.frames} for {est.frames} trajectory frame(s)"]
    if target_factor:
        parts.append(f"{target_factor:g} for the target{f' ({target})' if target else ''}")
    check_memory(who, f"{size}, {steps} steps, trajectory_every={trajectory_every}", est.bytes,
                 f"{gib(est.state_bytes)} per walk state x {est.states:g}: {', '.join(parts)}",
                 "Lower width, height or batch_size, keep fewer trajectory frames (trajectory_every 0 keeps one)")
    return est


def check_memory(who: str, what: str, needed: float, how: str, advice: str) -> None:
    """:class:`LimitError` when ``what`` would need more than the memory limit: ``how`` says how it was
    estimated, ``advice`` what to lower."""
    limit = current_limits().max_memory_bytes
    if needed > limit:
        raise LimitError(f"{who}: {what} would need about {gib(needed)} ({how}); the limit is {gib(limit)} "
                         f"(WALK_MAX_MEMORY_GB). {advice}, or {how_to_raise('max_memory_gb')}")


def check_walk_shape(who: str, shape, batch: int, steps: int, trajectory_every: int, *, info: Mapping,
                     space: str, target: str = "") -> WalkEstimate:
    """:func:`check_walk` for a walk of ``batch`` samples of ``shape`` ([C, H, W], or any shape) on a target."""
    shape = tuple(int(n) for n in shape) or (1,)
    width = shape[-1]
    height = shape[-2] if len(shape) >= 2 else 1
    channels = math.prod(shape[:-2]) if len(shape) >= 3 else 1
    unit = "px" if space == "pixels" else "latent cells" if space == "latent" else "values"
    return check_walk(who, width, height, batch, steps, trajectory_every, channels=channels,
                      target_factor=target_factor(info, space), target=target, unit=unit)


def target_factor(info: Mapping, space: str = "pixels") -> float:
    """The working-memory factor of a target: its ``info["memory_factor"]``, else the default for its space."""
    factor = info.get("memory_factor") if isinstance(info, Mapping) else None
    if isinstance(factor, (int, float)) and not isinstance(factor, bool) and math.isfinite(factor) and factor >= 0:
        return float(factor)
    return LATENT_TARGET_FACTOR if space == "latent" else DEFAULT_TARGET_FACTOR


# ------------------------------------------------------------------------------------- files, pictures

def check_file_size(path, who: str) -> int:
    """The size of a file that is read whole; :class:`LimitError` over ``max_file_mb``."""
    size = os.path.getsize(path)
    limit = current_limits().max_file_bytes
    if size > limit:
        raise LimitError(f"{who}: the file {path} is {gib(size)}; the limit for model, style and weights files "
                         f"is {gib(limit)} (WALK_MAX_FILE_MB); {how_to_raise('max_file_mb')}")
    return size


def check_network_params(count: int, who: str, what: str) -> None:
    """:class:`LimitError` when a network described by a file would have more than ``max_network_params``."""
    limit = current_limits().max_network_params
    if count > limit:
        raise LimitError(f"{who}: {what} describes a network of {count:,} parameters ({gib(count * FLOAT_BYTES)} "
                         f"as float32); the limit is {limit:,} (WALK_MAX_NETWORK_PARAMS); "
                         f"{how_to_raise('max_network_params')}")


def check_picture_pixels(width: int, height: int, frames: int, who: str, name: str) -> None:
    """:class:`LimitError` when a picture file holds more pixels than ``max_input_pixels`` (all frames)."""
    limit = current_limits().max_input_pixels
    total = int(width) * int(height) * max(1, int(frames))
    if total > limit:
        shown = f"{width}x{height} px" + (f" x {frames} frames" if frames > 1 else "")
        raise LimitError(f"{who}: {name!r} is {shown} = {total:,} pixels; the limit is {limit:,} "
                         f"(WALK_MAX_INPUT_PIXELS). Use a smaller picture, or {how_to_raise('max_input_pixels')}")
