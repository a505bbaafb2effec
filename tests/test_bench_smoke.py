"""The benchmark pipeline runs end to end on tiny sizes and reports every walk, the guided target and the goals."""
from rwalk.bench.smoke import smoke
from rwalk.walk_core import WALKS


def test_bench_smoke_reports_every_walk(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    text = smoke(out)
    assert text.startswith("# Benchmarks") and out.read_text() == text
    for name in WALKS:
        assert f"`{name}`" in text, f"walk {name} missing from the benchmark report"
    assert "## Goals (issue 6, part 3)" in text
    for target in ("ring", "image", "classes"):
        assert f"### {target}:" in text, f"target {target} missing from the benchmark report"
    assert "— error:" not in text, "a walk raised an error other than WalkDivergedError"
    assert list((tmp_path / "bench").glob("*.png")), "the report's figures were not written"


def test_bench_smoke_keeps_other_commands_sections(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nold\n\n<!-- section:gpu -->\nGPU figures\n<!-- /section:gpu -->\n")
    text = smoke(out)
    written = out.read_text()
    assert written.startswith(text) and "<!-- section:gpu -->\nGPU figures\n<!-- /section:gpu -->" in written
    assert "\nold\n" not in written
