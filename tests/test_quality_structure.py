"""Structure measures (walk_core/quality_structure.py, issue 28 §1) on small synthetic pictures: a brick
pattern keeps its period when shifted and loses it when block-shuffled, long lines give long segments and
dashes short ones, big regions rank above small ones, brightness scaling leaves the measures alone, and bad
inputs are refused with a clear message."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rwalk.walk_core import quality_structure as qs

SIZE = 96


def bricks(size=SIZE, course=12, length=24, shift=(0, 0), seed=0):
    """Grey mortar, bricks of random shade in running bond; ``shift`` moves the pattern by (dy, dx) px."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(size).view(-1, 1) + shift[0]
    xs = torch.arange(size).view(1, -1) + shift[1]
    row = torch.div(ys, course, rounding_mode="floor")
    xo = xs + (row % 2) * (length // 2)
    col = torch.div(xo, length, rounding_mode="floor")
    mortar = ((ys % course) < 2) | ((xo % length) < 2)
    shade = 0.45 + 0.25 * torch.rand(64, 64, generator=g)
    lum = torch.where(mortar, torch.tensor(0.85), shade[row % 64, col % 64])
    return torch.stack([lum, lum * 0.6, lum * 0.5]).float()


def block_shuffle(x, block, seed=0):
    g = torch.Generator().manual_seed(seed)
    c, h, w = x.shape
    n = h // block
    tiles = x.reshape(c, n, block, n, block).permute(1, 3, 0, 2, 4).reshape(-1, c, block, block)
    tiles = tiles[torch.randperm(tiles.shape[0], generator=g)]
    return tiles.reshape(n, n, c, block, block).permute(2, 0, 3, 1, 4).reshape(c, h, w)


def lines(size=SIZE, dash=0, spacing=12, seed=0):
    """Light picture with dark horizontal lines; ``dash`` > 0 cuts them into dash-px pieces with dash-px gaps at
    random phases."""
    g = torch.Generator().manual_seed(seed)
    img = torch.full((size, size), 0.8)
    for y in range(spacing // 2, size, spacing):
        on = torch.ones(size, dtype=torch.bool)
        if dash:
            phase = int(torch.randint(0, 2 * dash, (1,), generator=g))
            on = ((torch.arange(size) + phase) % (2 * dash)) < dash
        img[y:y + 2, on] = 0.2
    img = img + 0.02 * torch.randn(size, size, generator=g)
    return img.clamp(0, 1).expand(3, -1, -1).contiguous()


def regions(size=SIZE, cell=24, seed=0):
    """A grid of cell x cell squares, each one of four well-separated colours, randomly."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.2, 0.3, 0.9], [0.9, 0.9, 0.3]])
    n = -(-size // cell)
    pick = torch.randint(0, 4, (n, n), generator=g)
    idx = pick.repeat_interleave(cell, 0).repeat_interleave(cell, 1)[:size, :size]
    return colours[idx].permute(2, 0, 1).contiguous()


def test_period_found_kept_when_shifted_and_lost_when_shuffled():
    ref = bricks()
    lags, heights = qs.reference_peaks(ref)
    assert lags and min(heights) > qs.PERIOD_APPLIES
    assert any(dy == 0 and dx % 24 == 0 for dy, dx in lags)  # the brick length along the course
    shifted = qs.period_kept(bricks(shift=(5, 7), seed=1), ref)
    shuffled = qs.period_kept(block_shuffle(ref, 16), ref)
    assert shifted["kept"] > 0.8
    assert shuffled["kept"] < 0.5 * shifted["kept"]
    crop = bricks(size=SIZE + 32, seed=2)[:, 9:9 + SIZE, 13:13 + SIZE]
    assert qs.period_kept(crop, ref)["kept"] > 0.8


def test_aperiodic_reference_reports_weak_peaks():
    noise = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    assert qs.period_kept(bricks(), noise)["ref_strength"] < qs.PERIOD_APPLIES
    assert qs.period_kept(noise, bricks())["ref_strength"] > qs.PERIOD_APPLIES


def test_long_lines_give_long_segments_and_dashes_short_ones():
    whole, dashed = qs.edge_stats(lines()), qs.edge_stats(lines(dash=6))
    assert whole["median"] > 3 * dashed["median"]
    assert whole["long_share"] > 0.8 > dashed["long_share"]
    assert qs.edge_continuity(lines(dash=6), lines())["median_ratio"] < qs.EDGE_PASS
    assert qs.edge_continuity(lines(seed=4), lines())["median_ratio"] > qs.EDGE_PASS


def test_big_regions_rank_above_small_ones():
    ref = regions(cell=24)
    big = qs.object_size(regions(cell=24, seed=5), ref)
    small = qs.object_size(regions(cell=8, seed=5), ref)
    assert big["size_ratio"] > small["size_ratio"] * 3
    assert big["size_ratio"] > qs.OBJECT_PASS > small["size_ratio"]
    assert small["count_ratio"] > big["count_ratio"]


def blobs(size=SIZE, seed=0, sigma=3.0):
    """Isotropic blotches: white noise blurred by ``sigma`` px, stretched to [0.2, 0.8]."""
    n = torch.rand(size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    b = qs._blur(n, sigma)
    b = 0.2 + 0.6 * (b - b.min()) / (b.max() - b.min())
    return b.float().expand(3, -1, -1).contiguous()


def test_oriented_strokes_are_coherent_and_blotches_not():
    assert qs.coherence(lines()) > 0.8
    assert qs.coherence(blobs()) < 0.5 * qs.coherence(lines())
    assert qs.coherence_kept(blobs(), lines())["ratio"] < qs.COHERENCE_PASS
    assert qs.coherence_kept(bricks(seed=3), bricks())["ratio"] > qs.COHERENCE_PASS
    assert qs.coherence_kept(block_shuffle(bricks(), 8), bricks())["ratio"] < qs.COHERENCE_PASS


def test_region_count_sees_fragments():
    ref = regions(cell=24)
    assert qs.object_size(regions(cell=24, seed=6), ref)["count_ratio"] <= qs.FRAGMENT_PASS
    assert qs.object_size(regions(cell=12, seed=6), ref)["count_ratio"] > qs.FRAGMENT_PASS


def test_components_join_diagonals_only_when_asked():
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[torch.arange(40), torch.arange(40)] = True  # one diagonal line
    mask[5, 30] = True
    assert int(qs._sizes(qs.components(mask)).max()) == 40
    assert int(qs._sizes(qs.components(mask, diagonal=False)).max()) == 1
    assert qs._sizes(qs.components(mask)).numel() == 2


@pytest.mark.parametrize("picture", [bricks, lines, regions, blobs])
def test_brightness_scaling_within_reason(picture):
    x = picture()
    darker = x * 0.6
    base = qs.structure_report(x, x)
    scaled = qs.structure_report(darker, x)
    for key in ("period_kept", "edge_median_ratio", "edge_share_ratio", "coherence_ratio"):
        if not np.isnan(base[key]):
            assert scaled[key] == pytest.approx(base[key], rel=0.25, abs=0.1), key
    assert qs.edge_stats(darker)["median"] == pytest.approx(qs.edge_stats(x)["median"], rel=0.25)


def test_report_and_criteria():
    report = qs.structure_report(bricks(seed=7), bricks())
    crit = qs.structure_criteria(report)
    assert set(crit) == {"period", "edges", "objects", "fragments", "coherence"}
    assert all(crit.values()), (report, crit)
    bad = qs.structure_criteria(qs.structure_report(block_shuffle(bricks(), 8), bricks()))
    assert not bad["period"]
    with pytest.raises(ValueError, match="report lacks 'period_kept'"):
        qs.structure_criteria({})


@pytest.mark.parametrize("fn", [
    lambda x: qs.period_kept(x, bricks()), lambda x: qs.period_kept(bricks(), x), qs.reference_peaks,
    qs.edge_stats, lambda x: qs.edge_continuity(x, lines()), lambda x: qs.object_size(regions(), x),
    lambda x: qs.structure_report(x, bricks()), qs.palette, qs.coherence,
    lambda x: qs.coherence_kept(lines(), x), lambda x: qs.object_stats(x, torch.rand(4, 3))])
@pytest.mark.parametrize("bad, words", [
    (torch.rand(SIZE, SIZE), r"shape \(96, 96\); expected \[3, H, W\]"),
    (torch.rand(4, SIZE, SIZE), r"shape \(4, 96, 96\)"),
    (torch.rand(3, 8, SIZE), r"H, W >= 32"),
    (torch.rand(3, SIZE, SIZE) * 2 - 1, r"values in \[-.*expected \[0, 1\]"),
    (torch.full((3, SIZE, SIZE), float("nan")), "non-finite"),
    (torch.zeros(3, SIZE, SIZE, dtype=torch.uint8), "dtype torch.uint8"),
    ([[0.5]], "is a list"),
])
def test_bad_inputs_are_refused_with_a_clear_message(fn, bad, words):
    with pytest.raises(ValueError, match=words):
        fn(bad)


def test_numpy_pictures_are_accepted():
    x = bricks()
    assert qs.period_kept(x.numpy(), x)["kept"] == pytest.approx(1.0, abs=1e-6)
