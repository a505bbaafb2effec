"""bench/import_time.py: the probe loads the pack as ComfyUI does, the parser and the report say what was measured."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import import_time

    return import_time


def test_the_probe_loads_the_pack_after_torch(bench):
    result = bench.probe(ROOT, dict(os.environ))
    assert result["nodes"] >= 20 and result["modules"] > 10
    assert 0 < result["pack"] < 30 and result["torch"] > 0 and result["full_gc"] >= 0


def test_heaviest_counts_only_what_comes_after_torch(bench):
    text = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       900 |        900 | numpy",
        "import time:      5000 |     800000 | torch",
        "import time:      3000 |       4000 |     main.walk_core",
        "import time:       700 |        700 |   main.nodes",
    ])
    assert bench.heaviest(text, 5) == [(3.0, 4.0, "main.walk_core"), (0.7, 0.7, "main.nodes")]


def _runs(pack, peer=0.001, full_gc=0.0):
    return {"pack": [{"pack": pack, "torch": 1.0, "full_gc": full_gc, "nodes": 24, "modules": 100}] * 3,
            "peer": [{"pack": peer, "torch": 1.0, "full_gc": 0.0, "nodes": 0, "modules": 1}] * 3}


def test_the_report_states_the_goal(bench):
    importtime = "import time:      5000 |     800000 | torch\nimport time:      3000 |       4000 |   main.nodes"
    lines, met = bench.report({"warm": _runs(0.05), "cold": _runs(0.15), "importtime": importtime}, 3, "cmd",
                              (1.0, 1.0, 1.0))
    text = "\n".join(lines)
    assert met and "| warm | 0.050 (0.050–0.050) | 0.001 | **0.049** |" in text and "`main.nodes`" in text
    _, met = bench.report({"warm": _runs(0.05), "cold": _runs(0.45, full_gc=0.1), "importtime": importtime}, 3,
                          "cmd", (1.0, 1.0, 1.0))
    assert not met
