"""The single-image peers of issue 28 §2 (bench/peer_gpnn.py, bench/peer_quilting.py): deterministic for a seed,
made of the reference's patches, the quilting cut is the least-error path, GPNN keeps the coarse layout."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from rwalk.bench.peer_gpnn import generate as gpnn_generate
from rwalk.bench.peer_gpnn import gpnn
from rwalk.bench.peer_quilting import generate as quilt_generate
from rwalk.bench.peer_quilting import min_error_cut, quilt
from rwalk.walk_core.references import reference_image

SIZE = 64
PEERS = {"gpnn": gpnn, "quilt": quilt}


@pytest.fixture(scope="module")
def bricks():
    return reference_image("bricks", SIZE, SIZE, 0)


@pytest.fixture(scope="module")
def outputs(bricks):
    """Each peer at seeds 0, 0 (again) and 1."""
    return {name: [peer(bricks, SIZE, SIZE, seed) for seed in (0, 0, 1)] for name, peer in PEERS.items()}


def nearest_patch_distance(img: torch.Tensor, ref: torch.Tensor, p: int = 5) -> float:
    """Mean over the patches of ``img`` of the RMS difference to the closest patch of ``ref``."""
    q = F.unfold(img[None], p)[0].T
    k = F.unfold(ref[None], p)[0].T
    return float((torch.cdist(q, k).amin(1) / p / (3 ** 0.5)).mean())


@pytest.mark.parametrize("name", sorted(PEERS))
def test_deterministic_for_a_seed_and_seeds_differ(outputs, name):
    a, again, b = outputs[name]
    assert torch.equal(a, again)
    assert (a - b).abs().mean() > 0.02


@pytest.mark.parametrize("name", sorted(PEERS))
def test_shape_and_range(bricks, name):
    out = PEERS[name](bricks, 48, 80, 2)
    assert out.shape == (3, 48, 80) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize("name", sorted(PEERS))
def test_made_of_the_reference_patches(bricks, outputs, name):
    noise = torch.rand(bricks.shape, generator=torch.Generator().manual_seed(0))
    blurred = F.avg_pool2d(bricks[None], 5, 1, 2, count_include_pad=False)[0]
    out = outputs[name][0]
    d_out = nearest_patch_distance(out, bricks)
    assert d_out < 0.2 * nearest_patch_distance(noise, bricks)
    assert d_out < 0.6 * nearest_patch_distance(blurred, bricks)  # sharp, not a smeared average


def test_generate_uses_seed_plus_item(bricks, outputs):
    assert torch.equal(quilt_generate(bricks, SIZE, SIZE, 0, count=2)[1], outputs["quilt"][2])
    assert torch.equal(gpnn_generate(bricks, SIZE, SIZE, 0, count=2)[1], outputs["gpnn"][2])


def brute_force_cut(err: torch.Tensor) -> float:
    rows, cols = err.shape
    best = float("inf")
    for path in itertools.product(range(cols), repeat=rows):
        if all(abs(a - b) <= 1 for a, b in zip(path, path[1:])):
            best = min(best, sum(float(err[r, c]) for r, c in enumerate(path)))
    return best


def cut_cost(err: torch.Tensor, path) -> float:
    assert len(path) == err.shape[0]
    assert all(abs(a - b) <= 1 for a, b in zip(path, path[1:]))
    return sum(float(err[r, c]) for r, c in enumerate(path))


@pytest.mark.parametrize("seed", range(6))
def test_min_error_cut_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    err = torch.rand(5, 4, generator=g, dtype=torch.float64)
    assert cut_cost(err, min_error_cut(err)) == pytest.approx(brute_force_cut(err))


def test_min_error_cut_on_a_two_colour_toy():
    """Two colours: in row r the old block is red up to column edge[r] and blue after it, the new block blue
    before edge[r] and red from it on, so the only zero-error pixel of each row is edge[r]: the least-error cut
    must follow that staircase exactly."""
    red, blue = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0])
    edge = [3, 3, 2, 1, 1, 2]
    old = torch.empty(3, 6, 5)
    new = torch.empty(3, 6, 5)
    for r, c in enumerate(edge):
        old[:, r, :c + 1], old[:, r, c + 1:] = red[:, None], blue[:, None]
        new[:, r, :c], new[:, r, c:] = blue[:, None], red[:, None]
    err = ((new - old) ** 2).sum(0)
    path = min_error_cut(err)
    assert cut_cost(err, path) == pytest.approx(brute_force_cut(err)) == 0
    assert path == edge


def test_gpnn_layout_keeps_the_coarse_arrangement():
    g = torch.Generator().manual_seed(0)
    ref = torch.zeros(3, 64, 64)
    ref[0, :32] = 0.8
    ref[2, 32:] = 0.8
    ref = (ref + 0.15 * torch.rand(3, 64, 64, generator=g)).clamp(0, 1)  # some texture inside each half
    for seed in range(3):
        out = gpnn(ref, 64, 64, seed, layout=True)
        top, bottom = out[:, :28], out[:, 36:]
        assert float((top[0] > top[2]).float().mean()) > 0.8
        assert float((bottom[2] > bottom[0]).float().mean()) > 0.8


def test_gpnn_layout_false_and_the_approximate_search(bricks):
    shuffled = gpnn(bricks, SIZE, SIZE, 0, layout=False, exact_limit=0)  # every level past the coarsest: local search
    noise = torch.rand(bricks.shape, generator=torch.Generator().manual_seed(0))
    assert nearest_patch_distance(shuffled, bricks) < 0.2 * nearest_patch_distance(noise, bricks)
    assert (shuffled - gpnn(bricks, SIZE, SIZE, 0, exact_limit=0)).abs().mean() > 0.02


@pytest.mark.parametrize("call, message", [
    (lambda r: gpnn(r[0], 64, 64, 0), r"shape \[3, H, W\]"),
    (lambda r: gpnn(r * 2, 64, 64, 0), r"\[0, 1\]"),
    (lambda r: gpnn(r, 0, 64, 0), "out_h must be an int"),
    (lambda r: gpnn(r, 64, 64, 0, coarsest=3), "coarsest"),
    (lambda r: gpnn(r, 64, 64, 0, iterations=0), "iterations"),
    (lambda r: gpnn(r.numpy(), 64, 64, 0), "torch.Tensor"),
    (lambda r: quilt(r, 64, 64.5, 0), "out_w must be an int"),
    (lambda r: quilt(r, 64, 64, 0, block=65), r"block must be an int in \[3, 64\]"),
    (lambda r: quilt(r, 64, 64, 0, block=16, overlap=9), r"overlap must be an int in \[1, 8\]"),
    (lambda r: quilt(r, 64, 64, 0, tolerance=-1), "tolerance"),
])
def test_input_checks(bricks, call, message):
    with pytest.raises(ValueError, match=message):
        call(bricks)
