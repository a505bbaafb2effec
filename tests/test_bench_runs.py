"""Benchmark runs: failures of one sampler are recorded, never raised; goals are evaluated from the results; the
goal-evaluation API runs on small sizes."""
from __future__ import annotations

import torch

from rwalk.bench.accuracy import AccuracyConfig, measure_accuracy
from rwalk.bench.config import BenchConfig, ImageTargetSize
from rwalk.bench.develop import evaluate
from rwalk.bench.goals import evaluate_goals
from rwalk.bench.overhead import OverheadConfig
from rwalk.bench.result import BenchResult
from rwalk.bench.samplers import Sampler, pack_sampler
from rwalk.bench.targets import ring_target
from rwalk.walk_core import WalkDivergedError

SMALL = AccuracyConfig(nfes=(10, 20), schedules=("karras",), samples=300, directions=32, floor_repeats=6,
                       spread_seeds=0)


def fake(name: str, body, group: str = "test") -> Sampler:
    """A sampler that calls the model once per level and then returns ``body(x, seed)``."""

    def run(model, x, sigmas, seed):
        for sigma in sigmas[:-1]:
            model(x, sigma.expand(x.shape[0]).to(x.dtype))
        return body(x, seed)

    return Sampler(name, group, False, run, lambda steps: steps)


def _raise(error):
    def body(x, seed):
        raise error

    return body


def exact_sampler(target, name="exact", group="pack") -> Sampler:
    """Returns exact samples (seeded by the run's seed): a perfect walk."""
    return fake(name, lambda x, seed: target.mixture.sample(x.shape[0], torch.Generator().manual_seed(seed % 2**62))
                .to(x.dtype), group)


def test_failures_are_recorded_and_the_run_goes_on():
    target = ring_target()
    samplers = [
        fake("nan", lambda x, seed: x * float("nan")),
        fake("huge", lambda x, seed: x * 1e6),
        fake("raises", _raise(RuntimeError("boom"))),
        fake("walk-diverged", _raise(WalkDivergedError("fake", 3, 0.5))),
        pack_sampler("euler"),
    ]
    result = measure_accuracy(target, SMALL, samplers)
    status = {(s.sampler, s.budget): s.status for s in result.scores}
    for budget in (10, 20):
        assert status[("nan", budget)] == "diverged"
        assert status[("huge", budget)] == "diverged"
        assert status[("raises", budget)] == "error"
        assert status[("walk-diverged", budget)] == "diverged"
        assert status[("euler", budget)] == "ok"
    euler = result.score("euler", "karras", 20)
    assert euler.nfe == 20 and set(euler.values) == {"sw2", "tv", "mean_err", "cov_err"}


def test_goals_of_a_perfect_and_a_noisy_walk():
    target = ring_target()
    noisy = fake("noisy", lambda x, seed: (target.mixture.sample(x.shape[0], torch.Generator().manual_seed(1))
                                           + 0.8 * torch.randn(x.shape[0], 2, dtype=torch.float64)).to(x.dtype),
                 group="pack")
    peer = exact_sampler(target, "peer:exact", group="k-diffusion")
    result = BenchResult("test", None, [measure_accuracy(target, SMALL, [exact_sampler(target), noisy, peer])])
    goals = {g.key: g for g in evaluate_goals(result)}
    assert goals["ring-10"].met
    # a perfect sampler is within 2 sd on all four metrics only most of the time: check it is near every floor
    assert goals["ring-20"].best.startswith("exact") and all(c.excess < 1.5 for c in goals["ring-20"].criteria)
    assert goals["ring-10"].best.startswith("exact") and goals["ring-10"].peer.startswith("peer:exact")
    assert not goals["image-10"].met and goals["image-10"].criteria[0].value == "target not run"
    assert not goals["overhead"].met

    only_noisy = BenchResult("test", None, [measure_accuracy(target, SMALL, [noisy])])
    ring20 = {g.key: g for g in evaluate_goals(only_noisy)}["ring-20"]
    assert not ring20.met and any(not c.met for c in ring20.criteria)


def test_goal_evaluation_api_on_tiny_sizes():
    tiny = AccuracyConfig(nfes=(10, 20), schedules=("karras",), samples=48, directions=8, floor_repeats=2,
                          spread_seeds=0)
    config = BenchConfig("tiny", overhead=OverheadConfig(shape=(1, 1, 8, 8), nfe=4, repeats=1, warmup=0),
                         ring=tiny, image=tiny, classes=tiny, image_target=ImageTargetSize(3, 4, 2), peers=())
    report = evaluate(["euler", pack_sampler("euler_ancestral", eta=0.5)], config=config)
    assert set(report.met) == {"ring-10", "ring-20", "image-10", "cfg-stable", "cfg-quality", "overhead"}
    text = report.markdown()
    assert "## Goals" in text and "euler_ancestral(eta=0.5)" in text
    assert report.score("ring", "euler", 10).nfe == 10


def test_ring_goals_average_over_further_initial_noises():
    """With repeats the ring goals use the mean over initial noises and the sd of a mean: a perfect walk stays
    near every floor, a slightly biased one (invisible in one noise set's luck) is caught."""
    from dataclasses import replace

    target = ring_target()
    config = replace(SMALL, repeat_seeds=4, repeat_nfes=(10, 20))
    biased = fake("biased", lambda x, seed: (target.mixture.sample(x.shape[0], torch.Generator().manual_seed(seed % 2**62))
                                             * 1.04).to(x.dtype), group="pack")
    result = measure_accuracy(target, config, [exact_sampler(target), biased])
    assert len(result.repeats[("exact", "karras", 20)]) == 3 and len(result.repeats[("biased", "karras", 10)]) == 3
    seeds = {s.values["sw2"] for s in result.repeats[("exact", "karras", 20)]}
    assert len(seeds) == 3  # different initial noises, different samples
    exact_only = BenchResult("test", None, [replace(result, scores=[s for s in result.scores if s.sampler == "exact"])])
    ring20 = {g.key: g for g in evaluate_goals(exact_only)}["ring-20"]
    assert all("mean of 4 initial noises" in c.text for c in ring20.criteria)
    assert all(c.excess < 1.0 for c in ring20.criteria)
    biased_only = BenchResult("test", None, [replace(result, scores=[s for s in result.scores if s.sampler == "biased"])])
    assert not {g.key: g for g in evaluate_goals(biased_only)}["ring-20"].met


def test_sd_criterion_counts_the_floor_means_own_uncertainty():
    """A walk's mean of k runs is compared with the floor's mean of F exact sets: the sd is that of their
    difference, sd * sqrt(1/k + 1/F), so a floor from few sets is not charged to the walk."""
    from types import SimpleNamespace

    from rwalk.bench.goals import _sd_criterion
    from rwalk.bench.metrics import Floor

    def criterion(value, seeds, repeats):
        result = SimpleNamespace(floors={"mean_err": Floor(1.0, 0.1)}, config=SimpleNamespace(floor_repeats=repeats))
        return _sd_criterion(result, "mean_err", value, seeds)

    edge = 1.0 + 2.0 * 0.1 * (1 / 4 + 1 / 5) ** 0.5  # k = 4 runs against F = 5 exact sets
    assert criterion(edge - 1e-6, 4, 5).met and not criterion(edge + 1e-6, 4, 5).met
    assert not criterion(edge - 1e-6, 4, 1000).met  # many floor sets: nearly the plain sd of a mean of 4
    assert criterion(1.0 + 2.0 * 0.1 * (1 / 4) ** 0.5 - 1e-6, 4, 1000).met
    assert "over 5 exact sets" in criterion(1.1, 4, 5).value and "+1.5 sd" in criterion(1.1, 4, 5).value


def test_noise_sets_tells_a_coarse_walk_from_exact(monkeypatch):
    """bench/noise_sets.py: every seed range, the pooled row and the exact row; a 3-step Euler walk sits many
    standard errors above exact in sliced W2."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import noise_sets

    keys, rows = noise_sets.measure([pack_sampler("euler")], budget=3, schedule="karras", sets=3, bases=(0, 10**6),
                                    samples=200)
    assert list(rows) == ["exact", "`euler`, seeds from 0", "`euler`, seeds from 1000000", "`euler`, all 2 ranges"]
    (walk, walk_se), (exact, exact_se) = rows["`euler`, all 2 ranges"]["sw2"], rows["exact"]["sw2"]
    assert walk - exact > 3 * (walk_se ** 2 + exact_se ** 2) ** 0.5
    text = noise_sets.markdown(keys, rows, 3, "karras", 3, 1.0, ["euler"])
    assert text.count("\n| `euler`") == 3 and "| exact |" in text
    assert "bench/noise_sets.py euler --budget 3 --schedule karras --sets 3 --write" in text  # the command remakes it


def test_patch_benchmark_calibrates_the_criteria_with_fresh_pictures(monkeypatch):
    """bench/patch.py: each reference's row carries the walks' and the fresh pictures' pass counts (within their
    counts), and the rendered table and summary say how many fresh pictures pass all three criteria."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import patch as patch_bench

    monkeypatch.setattr(patch_bench, "REFERENCES", ("bricks", "marble"))
    rows = patch_bench.criteria_rows(range(1), 32, fresh_seeds=(20, 40), copies=True)
    assert [r["reference"] for r in rows] == ["bricks", "marble"]
    for r in rows:
        assert r["n"] == 1 and r["n_fresh"] == 2
        for key in ("novel", "colour", "gram", "all"):
            assert 0 <= r[f"{key}_pass"] <= 1 and 0 <= r[f"{key}_pass_fresh"] <= 2
        assert r["all_pass_fresh"] <= min(r[f"{k}_pass_fresh"] for k in ("novel", "colour", "gram"))
        assert r["novelty_fresh"] > 0 and r["novelty_halves"] > 0
    text = patch_bench.render([], rows, [], "cmd", 32)
    assert text.count("| bricks |") == 2 and " · " in text  # the criteria and the copy tables
    fresh_all = sum(r["all_pass_fresh"] for r in rows)
    assert f"and {fresh_all} of 4 fresh pictures" in text
    # the copy measures: shares in [0, 1], the most copied walk at least the mean, counts within their counts
    for r in rows:
        assert 0 <= r["copied"] <= r["copied_max"] <= 1 and 0 <= r["copied_fresh"] <= 1
        assert r["novelty_half_bank"] > 0 and 0 <= r["half_bank_pass"] <= 1 and 0 <= r["half_bank_pass_fresh"] <= 2
    assert "### Copied, or new?" in text
    half_walks = sum(r["half_bank_pass"] for r in rows)
    assert f"Against a half: {half_walks} of 2 walks and {sum(r['half_bank_pass_fresh'] for r in rows)} of 4" in text


def test_patch_benchmark_tradeoff_rows_name_their_target_settings_and_walk(monkeypatch):
    """bench/patch.py: the trade-off table states each row's balance, palette hold and walk (the defaults, unless
    the row sets them), a row with balance off, the hold off or another walk measures another picture than the
    default's, and the walks are the patch target's own."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import patch as patch_bench

    from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE, PatchSpec

    request = patch_bench.walk_request(3)
    assert (request.walk, request.steps, request.options) == (WALK, STEPS, {"s_noise": WALK_S_NOISE})
    assert patch_bench.walk_request(3, 1.0, "euler", 4).options == {"s_noise": 1.0}
    monkeypatch.setattr(patch_bench, "REFERENCES", ("stained_glass",))
    old = {"walk": "euler_ancestral", "steps": 6, "s_noise": 1.0}
    rows = patch_bench.tradeoff_rows(range(1), 32, [{}, {"balance": 0.0}, old, {"palette": 0.0}, {"context": 2.0}])
    assert [r["balance"] for r in rows] == [PatchSpec.balance, 0.0] + [PatchSpec.balance] * 3
    assert [(r["walk"], r["steps"], r["s_noise"]) for r in rows] == [(WALK, STEPS, WALK_S_NOISE)] * 2 + [
        ("euler_ancestral", 6, 1.0)] + [(WALK, STEPS, WALK_S_NOISE)] * 2
    assert [r["palette"] for r in rows] == [PatchSpec.palette] * 3 + [0.0, PatchSpec.palette]
    assert [r["context"] for r in rows] == [PatchSpec.context] * 4 + [2.0]
    assert rows[0]["gram"] != rows[4]["gram"]
    assert all(0 <= r["all_pass"] <= r["n"] == 1 for r in rows)
    assert rows[0]["colour_swd"] != rows[1]["colour_swd"]
    assert rows[0]["novelty"] != rows[2]["novelty"]
    assert rows[0]["colour_swd"] != rows[3]["colour_swd"]
    text = patch_bench.render([], [], [], "cmd", 32, rows)
    assert "| patch_size | fine_patch_size | level_sigma | balance | context | palette | palette_sigma |" in text
    ps, fine, ls = PatchSpec.patch_size, PatchSpec.fine_patch_size, PatchSpec.level_sigma
    hold = f"{PatchSpec.context:g} | {PatchSpec.palette:g} | {PatchSpec.palette_sigma:g}"
    assert f"| {ps} | {fine} | {ls:g} | 0 | {hold} | {WALK} · {STEPS} | {WALK_S_NOISE:g} |" in text
    assert f"| {ps} | {fine} | {ls:g} | {PatchSpec.balance:g} | {hold} | euler_ancestral · 6 | 1 |" in text
    no_hold = f"| {PatchSpec.balance:g} | {PatchSpec.context:g} | 0 | {PatchSpec.palette_sigma:g} | {WALK} · {STEPS} |"
    assert no_hold in text
    assert f"| {PatchSpec.balance:g} | 2 | {PatchSpec.palette:g} |" in text


def test_patch_benchmark_reports_the_walks_guided_by_their_own_statistics(monkeypatch):
    """bench/patch.py: the guided criteria rows walk the same references with walk_core.guidance.own_statistics
    (another picture than the unguided walk's), the settings rows name their weights, ends and walk, and
    both render as tables after the unguided one."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import patch as patch_bench

    from rwalk.walk_core.guidance import own_statistics as own
    from rwalk.walk_core.targets.patch import STEPS, WALK, WALK_S_NOISE

    monkeypatch.setattr(patch_bench, "REFERENCES", ("marble",))
    plain = patch_bench.criteria_rows(range(1), 32, fresh_seeds=(20,))
    guided = patch_bench.criteria_rows(range(1), 32, fresh_seeds=(), guided={})
    assert [r["reference"] for r in guided] == ["marble"] and guided[0]["n"] == 1
    assert "n_fresh" not in guided[0] and guided[0]["gram"] != plain[0]["gram"]
    assert guided[0]["novelty_halves"] == plain[0]["novelty_halves"]  # the same reference
    other = {"style_weight": 0.5, "s_noise": 1.0, "walk": "euler_ancestral", "steps": 4}
    settings = patch_bench.guided_setting_rows(range(1), 32, [{}, other])
    assert [(r["style_weight"], r["walk"], r["steps"], r["s_noise"]) for r in settings] == [
        (own.STYLE_WEIGHT, WALK, STEPS, WALK_S_NOISE), (0.5, "euler_ancestral", 4, 1.0)]
    assert settings[0]["gram"] != settings[1]["gram"] and all(r["n"] == 1 for r in settings)
    text = patch_bench.render([], plain, [], "cmd", 32, (), guided, settings)
    assert text.count("| marble |") == 2 and "### The same walks with their own texture statistics as guidance" in text
    assert f"encoder seed {own.ENCODER_SEED}" in text and f"(without guidance: {plain[0]['all_pass']})" in text
    assert f"| 0.5 · {own.STYLE_END:.0%} | euler_ancestral · 4 | 1 |" in text
    assert f"| {own.STYLE_WEIGHT:g} · {own.STYLE_END:.0%} | {WALK} · {STEPS} | {WALK_S_NOISE:g} |" in text


def test_gpu_benchmark_smoke_run_writes_every_walk_and_the_patch_timing(monkeypatch, tmp_path, capsys):
    """bench/gpu.py on the CPU at a tiny shape (the device run is the same code): a row per pack walk, the noise
    settings it ran with, the CPU-side costs, and the patch timing (bit-identical runs; on the CPU, equal to the
    CPU reference run); a malformed --shape is refused naming the value."""
    import json
    from pathlib import Path

    import pytest

    from rwalk.bench.samplers import pack_samplers

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import gpu

    with pytest.raises(SystemExit):
        gpu.main(["--out", str(tmp_path), "--shape", "1,2,x,8"])
    assert "--shape '1,2,x,8': expected four positive integers" in capsys.readouterr().err
    monkeypatch.setenv("WALK_NOISE_PREFETCH", "0")
    assert gpu.main(["--out", str(tmp_path), "--tag", "t", "--device", "cpu", "--shape", "1,1,8,8", "--no-peers",
                     "--patch-sizes", "32"]) == 0
    result = json.loads((tmp_path / "gpu_t.json").read_text())
    over = result["overhead"]
    assert over["prefetch"] is False and over["shape"] == [1, 1, 8, 8]
    assert [w["walk"] for w in over["walks"]] == list(pack_samplers())
    assert all(w["ratio"] > 0 and w["group"] == "pack" for w in over["walks"])
    assert {c["key"] for c in over["costs_cpu"]} >= {"item_noise", "batch_noise"}
    (patch,) = result["patch"]
    assert patch["size"] == 32 and patch["identical_runs"] and patch["max_diff_vs_cpu"] == 0.0
    text = (tmp_path / "gpu_t.md").read_text()
    assert "Noise prefetch off" in text and text.count("| pack |") == len(over["walks"])
    assert "| 32×32 | " in text and "| yes | 0 |" in text  # bit-identical runs, 0 apart from the CPU run

    busy = gpu.busy_denoiser((1, 2, 8, 8), "cpu", 0.2)  # a stand-in network: matrix products sized to ~0.2 ms
    x = torch.randn(1, 2, 8, 8)
    assert busy.layers >= 1 and busy.ms > 0
    assert torch.allclose(busy(x, torch.ones(1)), x * 0.5, atol=1.01e-3) and not torch.equal(busy(x, None), x * 0.5)
