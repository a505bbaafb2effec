"""``--executor comfyui --server URL [--server URL ...]``: sweep jobs spread over several ComfyUI servers.

For graphs that need ComfyUI-only nodes (checkpoint loaders, text encoders). Each server gets one thread that
takes the next job from a shared queue, queues it on its server (``POST /prompt``, with the job's UI workflow
as ``extra_pnginfo`` so the pictures carry their graph), waits for it and downloads its saved pictures
(runner/remote.py, the code ``run --server`` uses); the driver writes them. One job at a time per server:
ComfyUI runs one prompt at a time anyway.

A server that stops answering (refused, reset, timed out -- a few tries apart) is dropped and its job goes
back to the queue for the others; when no server is left, the jobs still waiting are recorded as failed. A
job the server refuses or that fails on it is a failed job, not re-queued. Ctrl-C takes this sweep's prompts
off the servers' queues, interrupts the running ones, and re-raises.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ...runner import remote
from ...runner.errors import NodeExecutionError, WorkflowError
from ..jobs import JobResult, SweepJob, output_names

log = logging.getLogger(__name__)

WAIT_SECONDS = 0.2  # how often the threads look at the queue and the driver at the results


@dataclass(frozen=True)
class ComfySettings:
    """The servers and how patiently each is asked."""

    servers: Tuple[str, ...]
    tries: int = 3  # consecutive failures to reach a server before it is dropped
    retry_wait: float = 1.0  # seconds between those tries
    poll: float = 0.2  # seconds between history polls while a job runs
    timeout: float = 3600.0  # the most one job may take on a server

    def __post_init__(self):
        if not self.servers:
            raise WorkflowError(None, None, None, "--executor comfyui needs at least one --server URL "
                                "(e.g. --server http://127.0.0.1:8188)")
        for server in self.servers:
            if not str(server).startswith(("http://", "https://")):
                raise WorkflowError(None, None, None, f"--server {server!r}: expected an http:// or https:// URL")
        if len(set(self.servers)) != len(self.servers):
            raise WorkflowError(None, None, None, f"--server: a URL is given twice in {list(self.servers)}")
        if self.tries < 1:
            raise WorkflowError(None, None, None, f"tries={self.tries}: expected at least 1")


def run_on(server: str, job: SweepJob, settings: ComfySettings, running: Dict[str, str]) -> JobResult:
    """One job on one server: its saved pictures as bytes, or a failed result; raises ServerUnreachable."""
    started = time.perf_counter()
    try:
        prompt_id = remote.queue_prompt(job.prompt, server, ui_workflow=job.workflow)
        running[server] = prompt_id
        entry = remote.wait_for(prompt_id, server, timeout=settings.timeout, poll=settings.poll)
        images = remote.download_images(entry, server, kinds=("output", "temp"))  # SaveImage, PreviewImage
    except remote.ServerUnreachable:
        raise
    except (WorkflowError, NodeExecutionError) as e:
        return JobResult(job.job_id, "failed", (), time.perf_counter() - started, f"on {server}: {e}")
    finally:
        running.pop(server, None)
    if not images:
        return JobResult(job.job_id, "failed", (), time.perf_counter() - started,
                         f"on {server}: the workflow ran but saved no images (it needs a SaveImage node)")
    # named as every executor names them (<job id>.png, <job id>_01.png ...), whatever the server called them
    names = output_names(job.job_id, [PurePosixPath(name).suffix or ".png" for name, _ in images])
    outputs = tuple((name, data) for name, (_, data) in zip(names, images))
    return JobResult(job.job_id, "done", outputs, time.perf_counter() - started, None)


class _Server(threading.Thread):
    """Takes jobs from the shared queue and runs them on one server until the sweep stops or the server is gone."""

    def __init__(self, url: str, executor: "ComfyUIExecutor"):
        super().__init__(name=f"comfyui {url}", daemon=True)
        self.url, self.executor = url, executor

    def run(self) -> None:
        ex, failures = self.executor, 0
        while not ex.stop.is_set():
            try:
                job = ex.todo.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                continue
            try:
                result = run_on(self.url, job, ex.settings, ex.running)
            except remote.ServerUnreachable as e:
                ex.todo.put(job)  # back for the others (or for this server's next try)
                failures += 1
                if failures >= ex.settings.tries:
                    log.warning("%s stopped answering (%s); its jobs go to the other servers", self.url, e.message)
                    ex.results.put(("gone", self.url))
                    return
                ex.stop.wait(ex.settings.retry_wait)
                continue
            except BaseException as e:  # noqa: BLE001  a bug here must reach the driver, not die in the thread
                ex.results.put(("crash", e))
                return
            failures = 0
            ex.results.put(("result", result))


class ComfyUIExecutor:
    """Runs sweep jobs on ComfyUI servers; results reach ``on_result`` in the calling thread."""

    name = "comfyui"

    def __init__(self, settings: ComfySettings):
        self.settings = settings

    def run(self, jobs: Sequence[SweepJob], on_result: Callable[[JobResult], None]) -> None:
        self.todo: "queue.Queue[SweepJob]" = queue.Queue()
        self.results: "queue.Queue[tuple]" = queue.Queue()
        self.stop = threading.Event()
        self.running: Dict[str, str] = {}  # server -> the prompt id it runs now
        for job in jobs:
            self.todo.put(job)
        alive = set(self.settings.servers)
        for url in self.settings.servers:
            _Server(url, self).start()
        left = len(jobs)
        try:
            while left and alive:
                try:
                    kind, value = self.results.get(timeout=WAIT_SECONDS)  # a timeout, so Ctrl-C is seen
                except queue.Empty:
                    continue
                if kind == "crash":
                    raise value
                if kind == "gone":
                    alive.discard(value)
                    continue
                left -= 1
                on_result(value)
            # no server left: a server re-queues its job before it reports itself gone, so all that is left waits here
            for job in _drain(self.todo):
                on_result(JobResult(job.job_id, "failed", (), 0.0, "no ComfyUI server answers any more "
                                    f"(tried {', '.join(self.settings.servers)})"))
        except BaseException:
            self._cancel()
            raise
        finally:
            self.stop.set()

    def _cancel(self) -> None:
        self.stop.set()
        running = list(self.running.items())
        for server, prompt_id in running:
            remote.cancel_prompt(prompt_id, server)
        log.warning("cancelled the sweep's running prompts on %d server(s)", len(running))


def _drain(todo: "queue.Queue[SweepJob]") -> List[SweepJob]:
    out = []
    while True:
        try:
            out.append(todo.get_nowait())
        except queue.Empty:
            return out


def server_nodes(servers: Sequence[str]) -> Tuple[dict, Dict[str, str]]:
    """The node table and display names of the first of ``servers`` that answers (to check the sweep's jobs
    before any runs); none answering is one ServerUnreachable naming the last."""
    error: Optional[remote.ServerUnreachable] = None
    for server in servers:
        try:
            return remote.server_nodes(server)
        except remote.ServerUnreachable as e:
            log.warning("%s", e)
            error = e
    raise error if error is not None else WorkflowError(None, None, None, "--executor comfyui needs --server URL")


def create(options: Any) -> ComfyUIExecutor:
    """The ``comfyui`` entry of the executors registry."""
    servers: Optional[Sequence[str]] = getattr(options, "server", None)
    if isinstance(servers, str):
        servers = [servers]
    return ComfyUIExecutor(ComfySettings(tuple(servers or ())))
