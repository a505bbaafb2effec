"""The benchmark pipeline runs end to end on tiny sizes and reports every walk."""
from rwalk.bench.smoke import smoke
from rwalk.walk_core import WALKS


def test_bench_smoke_reports_every_walk(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    text = smoke(out)
    assert text.startswith("# Benchmarks") and out.read_text() == text
    for name in WALKS:
        assert f"`{name}`" in text, f"walk {name} missing from the benchmark report"
    assert list((tmp_path / "bench").glob("*.png")), "the report's figures were not written"
