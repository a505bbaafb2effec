"""bench/single_image.py (issue 28 §4): the side-by-side benchmark runs each method, measures every picture and
renders a table; small pictures, no deep weights needed."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture()
def bench(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import single_image

    monkeypatch.setattr(single_image, "SIZE", 64)
    monkeypatch.setattr(single_image, "OUT", tmp_path / "docs")
    monkeypatch.setattr(single_image, "PICTURES", tmp_path / "pictures")
    return single_image


def test_side_by_side_rows_strips_and_table(bench, tmp_path):
    results = bench.run(["bricks"], [0, 1], ["pack", "quilting"], None)
    for method in ("pack", "quilting"):
        rows = results["bricks"][method]["rows"]
        assert len(rows) == 2 and all(0.0 <= r["copied16"] <= 1.0 and 0.0 <= r["copied48"] <= 1.0 for r in rows)
        assert all(isinstance(r["structure"], bool) and r["seconds"] > 0 for r in rows)
        assert results["bricks"][method]["diversity"] > 0  # two seeds, two different pictures
    assert (tmp_path / "docs" / "single_image_bricks.png").is_file()
    assert (tmp_path / "docs" / "single_image_overview.png").is_file()
    assert len(list((tmp_path / "pictures").glob("*.png"))) == 4
    table = bench.render(results, [0, 1], ["pack", "quilting"], "bench/single_image.py", deep=False)
    assert "| bricks | pack | " in table and "| bricks | quilting | " in table and "vgg_setup" in table


def test_window_copies_tells_a_copy_from_noise(bench):
    from rwalk.walk_core.references import reference_image

    ref = reference_image("marble", 96, 96, 0) * 2 - 1
    noise = torch.rand(ref.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert bench.window_copies(ref, ref) == 1.0
    assert bench.window_copies(noise, ref) == 0.0


def test_unknown_method_is_refused_naming_the_choices(bench):
    with pytest.raises(ValueError, match="method='gan'.*pack, posterior, gpnn, quilting"):
        bench.generate("gan", "bricks", torch.zeros(3, 64, 64), 0)
