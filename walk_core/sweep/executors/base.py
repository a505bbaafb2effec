"""What runs a sweep's jobs: the :class:`Executor` protocol and the registry of executors by name.

An executor takes the validated jobs and reports each :class:`~..jobs.JobResult` back to the driver, which
alone writes files and the manifest. ``EXECUTORS[name](options)`` makes one from ``cli.py sweep``'s parsed
options (an ``argparse.Namespace``: ``workers``, ``ray_address``, ``gpus_per_job``, ``server``, ...). Each
executor lives in its own module, imported only when its name is asked for, so an optional engine (ray) is
needed only by the sweeps that use it. A module named in :data:`EXECUTOR_MODULES` defines
``create(options) -> Executor``.
"""
from __future__ import annotations

import argparse
import importlib
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Protocol, Sequence

if TYPE_CHECKING:  # the registry loads without the engine (cli.py builds its parser from it)
    from ..jobs import JobResult, SweepJob

OnResult = Callable[["JobResult"], None]


class Executor(Protocol):
    """Runs jobs somewhere and hands their results to the driver.

    ``run`` calls ``on_result`` in the driver's thread as each job finishes (in any order). On
    KeyboardInterrupt it cancels the jobs not yet finished and re-raises; the driver keeps the manifest
    consistent (it records only results it was given).
    """

    name: str

    def run(self, jobs: Sequence["SweepJob"], on_result: OnResult) -> None:
        ...


#: executor name -> its module in this package; the module defines ``create(options) -> Executor``
EXECUTOR_MODULES: Dict[str, str] = {"local": "local", "ray": "ray_executor", "comfyui": "comfyui_executor"}


class _LazyFactory:
    """``factory(options) -> Executor`` that imports the executor's module on first call."""

    def __init__(self, name: str, module: str):
        self.name, self.module = name, module

    def __call__(self, options: argparse.Namespace) -> Executor:
        package = __name__.rpartition(".")[0]
        return importlib.import_module(f".{self.module}", package).create(options)

    def __repr__(self) -> str:
        return f"<executor {self.name!r} from {self.module}.py>"


#: executor name -> factory(options: argparse.Namespace) -> Executor
EXECUTORS: Mapping[str, Callable[[argparse.Namespace], Executor]] = {
    name: _LazyFactory(name, module) for name, module in EXECUTOR_MODULES.items()}


def make_executor(name: str, options: argparse.Namespace) -> Executor:
    """The executor called ``name``; an unknown name is a ValueError listing the known ones."""
    factory = EXECUTORS.get(name)
    if factory is None:
        raise ValueError(f"executor {name!r} is unknown; expected one of {', '.join(EXECUTORS)}")
    return factory(options)
