"""ItemNoise prefetch: the background draw never changes the numbers, and it is safe to leave running."""
import math
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from rwalk.walk_core import noise as noise_module
from rwalk.walk_core.noise import PREFETCH_ENV, ItemNoise
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets import GaussianMixture, WalkTarget
from rwalk.walk_core.targets.image_mixture import ImageMixtureSpec, image_mixture_target
from rwalk.walk_core.walks import WALKS

ROOT = Path(__file__).resolve().parents[1]
STOCHASTIC = [n for n in WALKS.names() if WALKS[n].stochastic]
# item shapes with chunks of 512, 256, 170, 2 and 1 draws per generator call
SHAPES = [(), (2,), (3,), (3, 8, 8), (4, 16, 16)]


def request_plan(rng: random.Random, n_runs: int):
    """Runs of requests ``(item_shape, dtype)``: long enough to cross chunk ends, short enough to cut chunks."""
    plan = []
    for _ in range(n_runs):
        shape = rng.choice(SHAPES)
        per_item = max(1, noise_module.CHUNK_VALUES // max(1, int(torch.Size(shape).numel())))
        length = rng.choice([1, 2, per_item - 1, per_item, per_item + 1, 2 * per_item + 3])
        dtype = rng.choice([torch.float32, torch.float64])
        plan += [(shape, dtype)] * max(1, length)
    return plan


def play(noise: ItemNoise, batch: int, plan, before_each=None) -> list:
    out = []
    for shape, dtype in plan:
        if before_each is not None:
            before_each(noise)
        out.append(noise.randn((batch,) + shape, dtype=dtype))
    return out


def assert_same(a: list, b: list):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == y.dtype and torch.equal(x, y), f"draw {k} differs"


def wait_for_background(noise: ItemNoise):
    """Let the background draw finish before the next request (a shape change then drops a *complete* one)."""
    pending = noise._box[0]
    deadline = time.monotonic() + 30
    while pending is not None and not pending._complete:
        assert time.monotonic() < deadline, "the background draw never finished"
        time.sleep(0.0005)


class TodaysItemNoise:
    """The draw logic before prefetch, kept as the reference: the streams must not change."""

    def __init__(self, seeds):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.buffer, self.pos = None, 0

    def randn(self, shape, device=None, dtype=torch.float32):
        item_shape = tuple(shape[1:])
        if self.buffer is None or self.buffer.shape[2:] != item_shape or self.pos >= self.buffer.shape[1]:
            per_item = max(1, noise_module.CHUNK_VALUES // max(1, math.prod(item_shape)))
            self.buffer = torch.stack(
                [torch.randn((per_item,) + item_shape, generator=g, dtype=torch.float32) for g in self.generators])
            self.pos = 0
        out = self.buffer[:, self.pos]
        self.pos += 1
        return out.to(device=device, dtype=dtype)


class blocked_workers:
    """Keep every background worker busy, so background draws stay queued until the block ends."""

    def __enter__(self):
        executor, workers = noise_module._shared_executor()
        self.gate = threading.Event()
        self.jobs = [executor.submit(self.gate.wait, 30) for _ in range(workers)]
        return self

    def __exit__(self, *exc):
        self.gate.set()
        for job in self.jobs:
            job.result()


@pytest.fixture(autouse=True)
def background_draws_on(monkeypatch):
    """Exercise the background path whatever torch's thread count (a CPU walk skips it without a spare core)."""
    monkeypatch.setattr(noise_module, "_cpu_has_room", lambda: True)


# ---------------------------------------------------------------- same numbers


@pytest.mark.parametrize("plan_seed", range(6))
@pytest.mark.parametrize("batch", [1, 3, 6])
def test_mixed_shape_requests_give_todays_tensors_with_prefetch_on_and_off(plan_seed, batch):
    plan = request_plan(random.Random(plan_seed), 12)
    seeds = [100 + plan_seed + i for i in range(batch)]
    today = play(TodaysItemNoise(seeds), batch, plan)
    assert_same(today, play(ItemNoise(seeds, prefetch=False), batch, plan))
    assert_same(today, play(ItemNoise(seeds, prefetch=True), batch, plan))


@pytest.mark.parametrize("plan_seed", range(3))
def test_a_completed_speculation_of_another_shape_leaves_the_stream_alone(plan_seed):
    plan = request_plan(random.Random(50 + plan_seed), 12)
    off = play(ItemNoise.from_seed(7, 2, prefetch=False), 2, plan)
    on = play(ItemNoise.from_seed(7, 2, prefetch=True), 2, plan, before_each=wait_for_background)
    assert_same(off, on)


def test_queued_background_draws_are_drawn_by_the_request_or_dropped():
    """With every worker busy, a request for the same shape draws the queued chunk itself; one for
    another shape drops it; later, the workers find nothing left to do."""
    plan = ([((4, 16, 16), torch.float32)] * 3 + [((3, 8, 8), torch.float32)] * 5
            + [((2,), torch.float64)] * 2 + [((4, 16, 16), torch.float32)] * 2)
    today = play(TodaysItemNoise([3, 4, 5]), 3, plan)
    with blocked_workers():
        on = play(ItemNoise([3, 4, 5], prefetch=True), 3, plan)
    assert_same(today, on)


def test_prefetch_starts_after_a_chunk_is_used_up():
    noise = ItemNoise([1, 2], prefetch=True)
    noise.randn((2, 3, 8, 8))  # chunks of 2 draws: one left, nothing to prefetch yet
    assert noise._box[0] is None
    noise.randn((2, 3, 8, 8))
    assert noise._box[0] is not None and noise._box[0].item_shape == (3, 8, 8)
    wait_for_background(noise)
    noise.close()
    assert noise._box[0] is None
    # closing dropped only the speculation: the stream goes on as without prefetch
    off = ItemNoise([1, 2], prefetch=False)
    off.randn((2, 3, 8, 8)), off.randn((2, 3, 8, 8))
    assert torch.equal(noise.randn((2, 3, 8, 8)), off.randn((2, 3, 8, 8)))


@pytest.mark.parametrize("prefetch", [False, True])
def test_draws_under_inference_mode_and_across_modes(prefetch):
    """ComfyUI runs nodes under torch.inference_mode(); the background threads do not share that mode."""
    shape = (2, 4, 16, 16)
    today = TodaysItemNoise([6, 7])
    expected = [today.randn(shape) for _ in range(6)]
    noise = ItemNoise([6, 7], prefetch=prefetch)
    got = []
    with torch.inference_mode():
        got += [noise.randn(shape) for _ in range(3)]
    got += [noise.randn(shape) for _ in range(2)]
    with torch.no_grad():
        got.append(noise.randn(shape))
    assert_same(expected, got)


@pytest.mark.parametrize("target_name", ["points", "pictures"])
def test_walks_in_sequence_are_the_same_with_prefetch_on_and_off(target_name, monkeypatch):
    if target_name == "points":
        means = torch.tensor([[-1.0, 0.5], [1.0, -0.5], [0.0, 1.5]], dtype=torch.float64)
        mixture = GaussianMixture([1.0, 2.0, 1.0], means, 0.05)
        target = WalkTarget("three points", mixture.denoise, "latent", 0.01, 20.0, (2,), exact=mixture)
    else:
        target = image_mixture_target(ImageMixtureSpec(), 8, 8)

    def all_walks():
        return [run_walk(target, WalkRequest(walk=name, schedule="karras", steps=4, seed=11, batch_size=3)).x
                for name in STOCHASTIC]

    monkeypatch.setenv(PREFETCH_ENV, "0")
    off = all_walks()
    monkeypatch.setenv(PREFETCH_ENV, "1")
    on = all_walks()
    assert_same(off, on)


def test_one_noise_source_shared_by_walks_in_sequence():
    mixture = image_mixture_target(ImageMixtureSpec(), 8, 8).exact
    sigmas = torch.tensor([20.0, 5.0, 1.0, 0.1, 0.0], dtype=torch.float64)
    x0 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 20

    def chain(prefetch):
        noise = ItemNoise.from_seed(5, 2, prefetch=prefetch)
        return [WALKS[name].fn(mixture.denoise, x0, sigmas, noise=noise) for name in STOCHASTIC * 2]

    assert_same(chain(False), chain(True))


# ---------------------------------------------------------------- switches and errors


def test_switch_by_argument_and_environment(monkeypatch):
    monkeypatch.delenv(PREFETCH_ENV, raising=False)
    assert ItemNoise([1]).prefetch is True
    for off in ("0", "false", "OFF", "no"):
        monkeypatch.setenv(PREFETCH_ENV, off)
        assert ItemNoise([1]).prefetch is False
        assert ItemNoise([1], prefetch=True).prefetch is True
    monkeypatch.setenv(PREFETCH_ENV, "1")
    assert ItemNoise.from_seed(1, 2).prefetch is True
    assert ItemNoise.from_seed(1, 2, prefetch=False).prefetch is False


def test_a_cpu_walk_draws_in_line_when_torch_uses_every_core(monkeypatch):
    monkeypatch.undo()  # the real _cpu_has_room
    monkeypatch.setattr(noise_module, "_cores", lambda: 2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        noise = ItemNoise([1], prefetch=True)
        noise.randn((1, 4, 16, 16))
        assert noise._box[0] is None
        torch.set_num_threads(1)
        noise.randn((1, 4, 16, 16))
        assert noise._box[0] is not None
    finally:
        torch.set_num_threads(threads)


def test_prefetch_off_never_touches_the_worker(monkeypatch):
    def no_worker():
        raise AssertionError("prefetch=False used the worker")

    monkeypatch.setattr(noise_module, "_shared_executor", no_worker)
    noise = ItemNoise([1, 2], prefetch=False)
    for _ in range(5):
        noise.randn((2, 4, 16, 16))
    assert noise._box[0] is None


def test_an_error_in_the_worker_is_raised_by_the_next_request_and_the_stream_survives(monkeypatch):
    shape = (2, 4, 16, 16)  # one draw per chunk: every request after the first uses a background draw
    today = TodaysItemNoise([4, 5])
    expected = [today.randn(shape) for _ in range(4)]
    real_randn = torch.randn

    def failing_in_the_worker(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("worker boom")
        return real_randn(*args, **kwargs)

    noise = ItemNoise([4, 5], prefetch=True)
    got = [noise.randn(shape)]
    monkeypatch.setattr(noise_module.torch, "randn", failing_in_the_worker)
    noise.close()
    noise._start_prefetch(shape[1:], 1, None)  # a background draw that fails
    wait_for_background(noise)
    with pytest.raises(RuntimeError, match="worker boom"):
        noise.randn(shape)
    monkeypatch.setattr(noise_module.torch, "randn", real_randn)
    got += [noise.randn(shape) for _ in range(3)]  # the failed request's numbers come next
    assert_same(expected, got)


def test_a_dropped_draw_is_not_worked_on():
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    draw = noise_module._Draw([g], (3,), 4)
    draw.cancel()
    draw.work()
    assert torch.equal(g.get_state(), state)


# ---------------------------------------------------------------- threads and processes


def test_one_shared_worker_thread_however_many_sources():
    for seed in range(20):
        noise = ItemNoise.from_seed(seed, 2, prefetch=True)
        for _ in range(3):
            noise.randn((2, 4, 16, 16))
    workers = [t for t in threading.enumerate() if t.name.startswith("walk-noise")]
    assert 1 <= len(workers) <= noise_module._shared_executor()[1]


def test_thread_count_setting(monkeypatch):
    monkeypatch.setenv(noise_module.THREADS_ENV, "3")
    assert noise_module.noise_threads() == 3
    monkeypatch.setenv(noise_module.THREADS_ENV, "0")
    assert noise_module.noise_threads() == 1
    monkeypatch.delenv(noise_module.THREADS_ENV)
    assert 1 <= noise_module.noise_threads() <= 4


def run_script(body: str) -> subprocess.CompletedProcess:
    prologue = textwrap.dedent(f"""
        import sys, types
        pack = types.ModuleType("rwalk"); pack.__path__ = [{str(ROOT)!r}]; sys.modules["rwalk"] = pack
        import torch
        from rwalk.walk_core.noise import ItemNoise
    """)
    env = {k: v for k, v in os.environ.items() if k != PREFETCH_ENV}
    return subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=120, env=env)


def test_the_interpreter_exits_with_a_speculation_in_flight():
    done = run_script("""
        noise = ItemNoise.from_seed(1, 4)
        for _ in range(3):
            noise.randn((4, 4, 64, 64))
        keep = noise  # a speculation is pending at exit
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_worker():
    done = run_script("""
        import os
        noise = ItemNoise.from_seed(1, 2)
        noise.randn((2, 4, 16, 16))  # the parent's worker is running
        pid = os.fork()
        if pid == 0:
            a = ItemNoise.from_seed(9, 2)
            b = ItemNoise.from_seed(9, 2, prefetch=False)
            ok = all(torch.equal(a.randn((2, 4, 16, 16)), b.randn((2, 4, 16, 16))) for _ in range(4))
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


# ---------------------------------------------------------------- devices


def test_cuda_path_only_for_a_cuda_device_on_a_machine_with_one(monkeypatch):
    uses = noise_module._uses_cuda_path
    assert not uses(None)
    assert not uses(torch.device("cpu"))
    assert not uses(torch.device("meta"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not uses(torch.device("cuda"))
    assert not uses(torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert uses(torch.device("cuda", 0))


def test_cpu_draws_are_not_pinned():
    noise = ItemNoise([1, 2], prefetch=True)
    noise.randn((2, 4, 16, 16))
    assert not noise._chunk.values.is_pinned()
    wait_for_background(noise)
    assert not noise._box[0].values.is_pinned() and noise._box[0].chunk.on_device is None


class FakeCuda:
    """Just enough of torch.cuda to walk the staging path on a CPU-only machine, with the CPU as "device"."""

    def __init__(self):
        self.copies = []  # (non_blocking, on the side stream?)
        self.waits = []  # events the consumer stream waited on
        self.recorded = 0
        self.current = None

    def install(self, monkeypatch):
        fake = self

        class Stream:
            def __init__(self, device=None):
                self.side = True

            def wait_event(self, event):
                fake.waits.append(event)

        class Event:
            def record(self, stream):
                self.stream = stream

        class StreamContext:
            def __init__(self, stream):
                self.stream = stream

            def __enter__(self):
                fake.current = self.stream

            def __exit__(self, *exc):
                fake.current = None

        consumer = Stream()
        consumer.side = False
        real_to = torch.Tensor.to

        def to(tensor, *args, **kwargs):
            if kwargs.get("non_blocking"):
                fake.copies.append(fake.current is not None and fake.current.side)
            return real_to(tensor, *args, **kwargs)

        def record_stream(tensor, stream):
            assert stream is consumer
            fake.recorded += 1

        monkeypatch.setattr(noise_module, "_uses_cuda_path", lambda d: d is not None and d.type == "cpu")
        monkeypatch.setattr(torch.cuda, "Stream", Stream)
        monkeypatch.setattr(torch.cuda, "Event", Event)
        monkeypatch.setattr(torch.cuda, "stream", StreamContext)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: consumer)
        monkeypatch.setattr(torch.Tensor, "to", to)
        monkeypatch.setattr(torch.Tensor, "record_stream", record_stream)
        monkeypatch.setattr(noise_module, "_side_streams", {})
        return self


@pytest.mark.parametrize("prefetch", [False, True])
def test_the_staging_path_gives_the_same_numbers_and_orders_the_copy(monkeypatch, prefetch):
    """The CUDA path run with the CPU standing in for the device (pinned memory falls back to pageable)."""
    plan = request_plan(random.Random(4), 10)
    today = play(TodaysItemNoise([8, 9, 10]), 3, plan)
    fake = FakeCuda().install(monkeypatch)
    noise = ItemNoise([8, 9, 10], prefetch=prefetch)
    got = [noise.randn((3,) + shape, device="cpu", dtype=dtype) for shape, dtype in plan]
    wait_for_background(noise)
    monkeypatch.undo()
    assert_same(today, got)
    assert fake.copies and all(fake.copies), "every host->device copy is non-blocking on the side stream"
    assert len(fake.waits) == len(plan) == fake.recorded, "every draw served waits for its copy on the GPU"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_a_cuda_request_without_cuda_fails_as_a_plain_move_does():
    with pytest.raises(Exception) as plain:
        torch.zeros(1).to("cuda")
    with pytest.raises(type(plain.value)):
        ItemNoise([1], prefetch=True).randn((1, 3), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("prefetch", [False, True])
def test_cuda_draws_are_the_cpu_draws_moved_and_cast(prefetch):
    plan = request_plan(random.Random(1), 10)
    cpu = play(ItemNoise.from_seed(21, 3, prefetch=False), 3, plan)
    noise = ItemNoise.from_seed(21, 3, prefetch=prefetch)
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
    for k, ((shape, _), want) in enumerate(zip(plan, cpu)):
        dtype = dtypes[k % len(dtypes)]
        device = "cpu" if k % 7 == 6 else "cuda"  # a CPU request now and then reuses the staged chunk
        got = noise.randn((3,) + shape, device=device, dtype=dtype)
        assert got.device.type == device and got.dtype == dtype
        assert torch.equal(got.cpu(), want.float().to(dtype)), f"draw {k}"
