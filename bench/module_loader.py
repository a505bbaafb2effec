"""Load single source files of another project as modules of a synthetic package, without running that
project's package ``__init__`` and without leaving anything of theirs in ``sys.modules``' public names.

Used for the peers: k-diffusion's ``sampling.py`` (its ``__init__`` imports heavy training modules) and
ComfyUI's ``comfy/k_diffusion/sampling.py`` (read from a ComfyUI checkout at run time, never copied).
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

log = logging.getLogger(__name__)


def synthetic_package(name: str, path: Optional[Path] = None) -> types.ModuleType:
    """An empty package ``name`` (dotted names create their parents), registered in ``sys.modules``."""
    parent = None
    for depth in range(1, name.count(".") + 2):
        part = ".".join(name.split(".")[:depth])
        module = sys.modules.get(part)
        if module is None:
            module = types.ModuleType(part)
            module.__path__ = []
            sys.modules[part] = module
            if parent is not None:
                setattr(parent, part.rsplit(".", 1)[1], module)
        parent = module
    if path is not None:
        parent.__path__ = [str(path)]
    return parent


@contextmanager
def stand_ins(modules: Dict[str, types.ModuleType]) -> Iterator[None]:
    """Put ``modules`` into ``sys.modules`` under their names for the duration (only where the name is not
    already importable as a real module), then restore what was there before."""
    saved = {}
    for name, module in modules.items():
        if name in sys.modules:
            continue
        saved[name] = None
        sys.modules[name] = module
    try:
        yield
    finally:
        for name in saved:
            sys.modules.pop(name, None)


def load_file(qualified: str, path: Path) -> types.ModuleType:
    """Execute the source file ``path`` as module ``qualified`` (its package must exist already) and return it.

    Relative imports inside the file resolve against that package."""
    if not path.is_file():
        raise FileNotFoundError(f"load_file: {path} does not exist; expected a Python source file for {qualified}")
    spec = importlib.util.spec_from_file_location(qualified, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(qualified, None)
        raise
    package, _, attr = qualified.rpartition(".")
    if package in sys.modules:
        setattr(sys.modules[package], attr, module)
    log.debug("loaded %s from %s", qualified, path)
    return module


def stub_module(name: str, **attrs) -> types.ModuleType:
    """A module object named ``name`` holding ``attrs`` (a stand-in for an import that is never used)."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module
