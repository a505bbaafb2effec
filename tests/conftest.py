"""Load the pack under the fixed package name ``rwalk`` whatever its folder is called.

The package is registered without running the root ``__init__`` (which only re-exports the node
table); ``tests/test_pack_entry.py`` imports that separately.
"""
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if "rwalk" not in sys.modules:
    pack = types.ModuleType("rwalk")
    pack.__path__ = [str(ROOT)]
    pack.__file__ = str(ROOT / "__init__.py")
    sys.modules["rwalk"] = pack

# test helper modules (exact_targets.py, ...) import by plain name under --import-mode=importlib
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

# One torch thread: the suite is dominated by many small ops, which two threads slow down on 2 cores.
import os  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("WALK_TEST_THREADS", "1")))

import pytest  # noqa: E402


@pytest.fixture
def fake_comfy(monkeypatch):
    """Stand-in ComfyUI modules for one test (tests/comfy_standins.py); the pack's cached guider class is
    rebuilt on them and dropped afterwards."""
    from comfy_standins import fake_comfy as install
    from rwalk.nodes import comfy_guider

    comfy_guider.guider_class.cache_clear()
    yield install(monkeypatch)
    comfy_guider.guider_class.cache_clear()
