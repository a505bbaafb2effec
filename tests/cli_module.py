"""cli.py as the module ``rwalk_cli`` (it reuses the ``rwalk`` package registered by conftest), loaded once."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_cli():
    if "rwalk_cli" not in sys.modules:
        spec = importlib.util.spec_from_file_location("rwalk_cli", ROOT / "cli.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["rwalk_cli"] = module
        spec.loader.exec_module(module)
    return sys.modules["rwalk_cli"]
