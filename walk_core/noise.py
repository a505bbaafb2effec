"""Per-item noise: every random draw of a walk comes from one CPU generator per batch item.

Item ``i`` of a batch is seeded ``seed + i``, so image i of a batch equals a single run with
``seed + i``, and CPU and GPU runs start from the same numbers (draws happen on the CPU in
float32 and are then moved and cast).

Prefetch: drawing on the CPU is the dominant per-step cost of a stochastic walk, so once a chunk is
used up ``ItemNoise`` starts the next one of the same item shape on shared background threads (torch
ops release the GIL), from *copies* of the generators. A request for that shape adopts the chunk and the
copies (drawing any items the background has not started itself, rather than waiting idle); a request
for another shape drops it and draws from the untouched originals, so the numbers are the same with
prefetch on or off. For a CUDA device the chunk is drawn into pinned memory and copied ``non_blocking``
on a side stream, so the GPU does not wait for the host. A CPU walk skips it when torch's threads
already use every core. Off: ``ItemNoise(..., prefetch=False)`` or ``WALK_NOISE_PREFETCH=0``; threads:
``WALK_NOISE_THREADS`` (default one per spare core, at most 4).
"""
from __future__ import annotations

import math
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import torch

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed accepts 0 .. 2**64-1; stay in int64 range
CHUNK_VALUES = 512  # values drawn per generator call for small items (see ItemNoise.randn)
PREFETCH_ENV = "WALK_NOISE_PREFETCH"  # "0" / "false" / "no" / "off" switches prefetch off
THREADS_ENV = "WALK_NOISE_THREADS"  # background drawing threads (see noise_threads)


def item_seeds(seed: int, batch_size: int) -> list[int]:
    """The per-item seeds ``seed + i`` of a batch (wrapped into the valid range)."""
    if batch_size < 1:
        raise ValueError(f"item_seeds: batch_size={batch_size} is not allowed; expected >= 1")
    return [(int(seed) + i) % (SEED_MAX + 1) for i in range(batch_size)]


def prefetch_default() -> bool:
    """Prefetch is on unless ``WALK_NOISE_PREFETCH`` says 0 / false / no / off."""
    return os.environ.get(PREFETCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# ---------------------------------------------------------------- the shared worker

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_workers = 1
_side_streams: dict = {}  # cuda device index -> the stream host->device copies of noise go on


def noise_threads() -> int:
    """Background threads that draw noise: ``WALK_NOISE_THREADS``, else one per spare core up to 4
    (1 on a 2-core machine). Each draws whole items, single-threaded, whatever ``torch.set_num_threads``."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        return max(1, int(value))
    return max(1, min(4, _cores() - 1))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cpu_has_room() -> bool:
    """Background drawing for a CPU walk only pays when torch's own threads leave a core free
    (measured: with every core in torch's pool it is slightly slower than drawing in line)."""
    return torch.get_num_threads() < _cores()


def _shared_executor() -> tuple[ThreadPoolExecutor, int]:
    """The worker threads every ItemNoise of the process shares (fresh ones after a fork), and their number.

    concurrent.futures joins them at interpreter exit, after the at most few draws queued on them.
    """
    global _executor, _executor_pid, _workers
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            _workers = noise_threads()
            _executor = ThreadPoolExecutor(max_workers=_workers, thread_name_prefix="walk-noise")
            _executor_pid = os.getpid()
            _side_streams.clear()
        return _executor, _workers


def _after_fork_in_child() -> None:
    global _lock, _executor, _executor_pid
    _lock = threading.Lock()  # the parent's may have been held by a thread that does not exist here
    _executor, _executor_pid = None, None
    _side_streams.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------- devices


def _resolve_device(device) -> torch.device | None:
    """``None`` stays None (CPU, as ``Tensor.to(device=None)``); a bare ``cuda`` gets the current index."""
    if device is None:
        return None
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _uses_cuda_path(device: torch.device | None) -> bool:
    """Pinned staging and side-stream copies only for a CUDA device on a machine that has one."""
    return device is not None and device.type == "cuda" and torch.cuda.is_available()


def _side_stream(device: torch.device):
    with _lock:
        stream = _side_streams.get(device.index)
        if stream is None:
            stream = _side_streams[device.index] = torch.cuda.Stream(device=device)
        return stream


# ---------------------------------------------------------------- chunks


class _Chunk:
    """``per_item`` consecutive draws of every generator: CPU float32 ``[B, per_item, *item_shape]``,
    plus, for a CUDA target, a device copy and the event that marks it complete."""

    __slots__ = ("item_shape", "values", "device", "on_device", "ready")

    def __init__(self, item_shape: tuple, values: torch.Tensor):
        self.item_shape = item_shape
        self.values = values
        self.device: torch.device | None = None
        self.on_device: torch.Tensor | None = None
        self.ready = None

    def __len__(self) -> int:
        return self.values.shape[1]

    def stage(self, device: torch.device) -> None:
        """Copy to ``device`` (CUDA) from pinned memory, non-blocking, on the side stream."""
        values = self.values
        if not values.is_pinned():
            try:
                values = values.pin_memory()
            except RuntimeError:  # no pinned memory to be had: a pageable copy still works, it just waits
                pass
        stream = _side_stream(device)
        with torch.cuda.stream(stream):
            on_device = values.to(device, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(stream)
        self.values, self.device, self.on_device, self.ready = values, device, on_device, ready

    def take(self, pos: int, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
        if self.on_device is not None and device == self.device:
            stream = torch.cuda.current_stream(device)
            stream.wait_event(self.ready)  # the GPU waits for the copy; the host does not
            self.on_device.record_stream(stream)  # allocated on the side stream, used on this one
            return self.on_device[:, pos].to(dtype=dtype)  # the cast of a float32 draw, as on the CPU
        return self.values[:, pos].to(device=device, dtype=dtype)


def _empty(shape: tuple, pinned: bool) -> torch.Tensor:
    """A CPU float32 buffer that any thread may fill whatever its inference mode (a tensor made under
    ``torch.inference_mode()``, as ComfyUI runs nodes, could only be written to from inside it)."""
    with torch.inference_mode(False):
        if pinned:
            try:
                return torch.empty(shape, dtype=torch.float32, device="cpu", pin_memory=True)
            except RuntimeError:  # pinned memory refused: stage() copies from pageable memory instead
                pass
        return torch.empty(shape, dtype=torch.float32, device="cpu")


class _Draw:
    """One chunk being drawn straight into its ``[B, per_item, *item_shape]`` buffer, one generator per slot.

    Background workers take slots from the front, the requester (``result``) from the back, so a
    request that arrives before the background is done shares the rest of the work instead of
    waiting idle; whoever draws the last slot finishes the chunk (and stages it for CUDA).
    """

    def __init__(self, generators, item_shape: tuple, per_item: int, cuda_device: torch.device | None = None):
        self.generators = generators
        self.item_shape = item_shape
        self.cuda_device = cuda_device
        self.values = _empty((len(generators), per_item) + item_shape, pinned=cuda_device is not None)
        self._cond = threading.Condition(threading.Lock())
        self._lo, self._hi, self._done = 0, len(generators), 0
        self._complete = False
        self.cancelled = False
        self.error: BaseException | None = None
        self.chunk: _Chunk | None = None

    def cancel(self) -> None:
        with self._cond:
            self.cancelled = True

    def _claim(self, front: bool) -> int | None:
        with self._cond:
            if self._lo >= self._hi or (front and self.cancelled):
                return None
            if front:
                self._lo += 1
                return self._lo - 1
            self._hi -= 1
            return self._hi

    def _draw_slot(self, i: int) -> None:
        error = None
        try:
            # out= runs the same kernel on the same contiguous shape as a plain randn: the same numbers
            torch.randn(self.values.shape[1:], generator=self.generators[i], dtype=torch.float32,
                        out=self.values[i])
        except BaseException as e:  # noqa: BLE001 - handed to the requester
            error = e
        with self._cond:
            if error is not None and self.error is None:
                self.error = error
            self._done += 1
            last = self._done == len(self.generators)
        if last:
            self._finish()

    def _finish(self) -> None:
        chunk = _Chunk(self.item_shape, self.values)
        try:
            if self.cuda_device is not None and self.error is None and not self.cancelled:
                chunk.stage(self.cuda_device)
        except BaseException as e:  # noqa: BLE001
            self.error = e
        with self._cond:
            self.chunk = chunk
            self._complete = True
            self._cond.notify_all()

    def work(self) -> None:
        """A background worker: draw slots from the front until none is left (or the draw is dropped)."""
        while (i := self._claim(front=True)) is not None:
            self._draw_slot(i)

    def result(self) -> _Chunk:
        """The chunk, drawing the slots nobody has started yet here; re-raises a worker's error."""
        while (i := self._claim(front=False)) is not None:
            self._draw_slot(i)
        with self._cond:
            while not self._complete:
                self._cond.wait()
        if self.error is not None:
            raise self.error
        return self.chunk


def _clone(g: torch.Generator) -> torch.Generator:
    c = torch.Generator(device="cpu")
    c.set_state(g.get_state())
    return c


def _discard_box(box: list) -> None:
    if box[0] is not None:
        box[0].cancel()
        box[0] = None


class ItemNoise:
    """A source of Gaussian noise with one CPU generator per batch item.

    ``noise.randn_like(x)`` returns a tensor shaped like ``x`` whose item ``i`` is the next draw
    of generator ``i``. Successive calls continue each generator's stream. ``prefetch`` (default:
    on unless ``WALK_NOISE_PREFETCH=0``) draws the next chunk in the background; the values are the
    same either way.
    """

    def __init__(self, seeds: Sequence[int], prefetch: bool | None = None):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("ItemNoise: seeds is empty; expected one seed per batch item")
        self.seeds = seeds
        self._generators = []
        for s in seeds:
            if not 0 <= s <= SEED_MAX:
                raise ValueError(f"ItemNoise: seed={s} is out of range; expected 0..{SEED_MAX}")
            g = torch.Generator(device="cpu")
            g.manual_seed(s)
            self._generators.append(g)
        self.prefetch = prefetch_default() if prefetch is None else bool(prefetch)
        self._chunk: _Chunk | None = None
        self._pos = 0
        self._box: list = [None]  # the background _Draw, in a box so the finalizer need not hold self
        weakref.finalize(self, _discard_box, self._box)  # an abandoned speculation stops early

    @classmethod
    def from_seed(cls, seed: int, batch_size: int, prefetch: bool | None = None) -> "ItemNoise":
        return cls(item_seeds(seed, batch_size), prefetch=prefetch)

    def __len__(self) -> int:
        return len(self.seeds)

    def close(self) -> None:
        """Drop a background draw in flight (the stream is unchanged; later draws still work)."""
        _discard_box(self._box)

    def randn(self, shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
        """Draw ``[B, *shape[1:]]`` noise; ``shape[0]`` must equal the number of items.

        Each generator's stream is consumed in chunks of ``CHUNK_VALUES // numel`` draws (at least one), a
        function of the item shape only, so item i never depends on the batch it is in; small items (2-D
        points, say) then cost one generator call per chunk instead of one per step. A request for another
        item shape drops the rest of the current chunk.
        """
        shape = tuple(int(d) for d in shape)
        if not shape or shape[0] != len(self._generators):
            raise ValueError(
                f"ItemNoise: asked for shape {shape} but holds {len(self._generators)} "
                "generators (one per item); seed the noise with the batch size"
            )
        item_shape = shape[1:]
        device = _resolve_device(device)
        cuda = _uses_cuda_path(device)
        chunk = self._chunk
        if chunk is None or chunk.item_shape != item_shape or self._pos >= len(chunk):
            chunk = self._chunk = self._next_chunk(item_shape, device if cuda else None)
            self._pos = 0
        if cuda and chunk.device != device:
            chunk.stage(device)
        out = chunk.take(self._pos, device, dtype)
        self._pos += 1
        if self.prefetch and self._pos >= len(chunk) and (cuda or _cpu_has_room()):
            self._start_prefetch(item_shape, len(chunk), device if cuda else None)
        return out

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.randn(x.shape, device=x.device, dtype=x.dtype)

    def __call__(self, sigma=None, sigma_next=None, x: torch.Tensor | None = None):
        """k-diffusion ``noise_sampler(sigma, sigma_next)``-style call needs ``x`` for the shape."""
        if x is None:
            raise ValueError("ItemNoise: call randn_like(x) or pass x= for the shape")
        return self.randn_like(x)

    # ------------------------------------------------------------ internals

    def _next_chunk(self, item_shape: tuple, cuda_device: torch.device | None) -> _Chunk:
        pending, self._box[0] = self._box[0], None
        if pending is not None:
            if pending.item_shape == item_shape:
                chunk = pending.result()  # helps with what is left; re-raises what went wrong in the worker
                self._generators = pending.generators  # advanced by exactly this chunk
                return chunk
            pending.cancel()  # another shape: the originals never moved, draw from them
        per_item = max(1, CHUNK_VALUES // max(1, math.prod(item_shape)))
        return _Draw(self._generators, item_shape, per_item, cuda_device).result()

    def _start_prefetch(self, item_shape: tuple, per_item: int, cuda_device: torch.device | None) -> None:
        draw = _Draw([_clone(g) for g in self._generators], item_shape, per_item, cuda_device)
        try:
            executor, workers = _shared_executor()
            for _ in range(min(workers, len(self._generators))):
                executor.submit(draw.work)
        except RuntimeError:  # the interpreter is shutting down: the request will draw it all itself
            pass
        self._box[0] = draw


def noise_for(x: torch.Tensor, extra_args: dict | None, noise: ItemNoise | None) -> ItemNoise:
    """The noise source of a walk: ``noise`` if given, else per-item generators seeded from
    ``extra_args['seed']`` (what ComfyUI passes to a SAMPLER), else seed 0."""
    if noise is not None:
        if len(noise) != x.shape[0]:
            raise ValueError(
                f"walk: noise holds {len(noise)} generators but x has a batch of {x.shape[0]}"
            )
        return noise
    seed = (extra_args or {}).get("seed", 0)
    return ItemNoise.from_seed(int(seed), x.shape[0])
