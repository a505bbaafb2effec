"""Lazy re-exports for a package's ``__init__`` (PEP 562), so importing the package loads nothing it does not use.

ComfyUI imports the pack at start-up only to read NODE_CLASS_MAPPINGS; the runner, the trainer and the rest load
on first use of one of their names. ``package.name`` and ``from package import name`` work as before.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, List, Tuple


def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exporting ``exports`` (name -> its submodule, e.g.
    ``{"run_workflow": "execute"}``); a name is imported on first use and then kept on the package."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
