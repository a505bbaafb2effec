"""bench/guidance_variants.py on a tiny class mixture: every row x scale x walk is scored against exact
conditional samples, and the table carries the command that remakes it."""
from __future__ import annotations

from pathlib import Path


def test_guidance_variants_table_scores_every_chain(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import guidance_variants

    from rwalk.bench.targets import class_target

    target = class_target(components=3, size=8, rank=2)
    rows = guidance_variants._rows()
    floors, results = guidance_variants.measure(24, target=target, scales=(4.0,), walk_runs=(("euler", 4),),
                                                floor_sets=2)
    assert [r.row for r in results] == [row.name for row in rows]
    assert all(r.status in ("ok", "off-target", "diverged") and r.nfe == 4 for r in results)
    cfg = next(r for r in results if r.row == "cfg")
    assert cfg.status == "ok" and 0.0 <= cfg.values["precision"] <= 1.0 and cfg.values["sw2"] > 0.0
    assert set(floors) >= {"precision", "diversity", "class_tv", "sw2", "detail"}
    text = guidance_variants.markdown(floors, results, 24, 1.0)
    assert ".venv/bin/python bench/guidance_variants.py --samples 24 --write" in text
    assert all(f"| `{row.name}` | 4 | euler | 4 |" in text for row in rows)
    assert "Against CFG at the same scale and walk" in text  # the verdict paragraph
