"""Per-item noise: item i of a batch is the run seeded seed + i, bit for bit, and nothing else is random."""
import pytest
import torch

from rwalk.walk_core.noise import SEED_MAX, ItemNoise, item_seeds
from rwalk.walk_core.sample import WalkRequest, run_walk
from rwalk.walk_core.targets import GaussianMixture, WalkTarget
from rwalk.walk_core.targets.image_mixture import ImageMixtureSpec, image_mixture_target
from rwalk.walk_core.walks import WALKS

STOCHASTIC = [n for n in WALKS.names() if WALKS[n].stochastic]
DETERMINISTIC = [n for n in WALKS.names() if not WALKS[n].stochastic]
ITEM_SHAPES = [(2,), (3, 8, 8), (3, 64, 64)]


def draws(noise: ItemNoise, batch: int, item_shape, count: int) -> list:
    return [noise.randn((batch,) + tuple(item_shape)) for _ in range(count)]


def count_for(item_shape) -> int:
    """Enough draws to refill the per-item buffer several times, whatever its chunk size."""
    return 300 if len(item_shape) == 1 else 6


# ---------------------------------------------------------------- ItemNoise


@pytest.mark.parametrize("item_shape", ITEM_SHAPES)
def test_same_seeds_give_identical_draws(item_shape):
    n = count_for(item_shape)
    a = draws(ItemNoise([5, 9, 1000]), 3, item_shape, n)
    b = draws(ItemNoise([5, 9, 1000]), 3, item_shape, n)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize("item_shape", ITEM_SHAPES)
@pytest.mark.parametrize("seed", [0, 12345])
def test_item_i_of_a_batch_is_the_single_stream_seeded_seed_plus_i(item_shape, seed):
    batch = 3
    n = count_for(item_shape)
    together = draws(ItemNoise.from_seed(seed, batch), batch, item_shape, n)
    for i in range(batch):
        alone = draws(ItemNoise([seed + i]), 1, item_shape, n)
        for step, (x, y) in enumerate(zip(together, alone)):
            assert torch.equal(x[i], y[0]), f"item {i} differs at draw {step}"


def test_item_independence_survives_changing_shapes():
    """A stream that changes item shape mid-way still gives item i the same numbers as seed + i alone."""
    shapes = [(2,), (2,), (3, 4, 4), (2,), (5,)]
    together = ItemNoise.from_seed(7, 2)
    alone = [ItemNoise([7]), ItemNoise([8])]
    for shape in shapes * 3:
        x = together.randn((2,) + shape)
        for i in range(2):
            assert torch.equal(x[i], alone[i].randn((1,) + shape)[0])


def test_successive_draws_differ_and_look_gaussian():
    noise = ItemNoise([3])
    values = torch.cat([noise.randn((1, 2)).reshape(-1) for _ in range(2000)])
    assert values.unique().numel() == values.numel(), "repeated draws: a stream restarted"
    n = values.numel()
    assert abs(float(values.mean())) < 5 / n**0.5
    assert abs(float(values.var()) - 1) < 5 * (2 / n) ** 0.5


def test_different_seeds_differ():
    a = ItemNoise([1]).randn((1, 3, 8, 8))
    b = ItemNoise([2]).randn((1, 3, 8, 8))
    assert not torch.equal(a, b)


def test_dtype_is_a_cast_of_the_float32_draw():
    """CPU and GPU runs start from the same numbers: draws are float32 on the CPU, then moved and cast."""
    a = ItemNoise([4, 5]).randn((2, 3, 4, 4), dtype=torch.float64)
    b = ItemNoise([4, 5]).randn((2, 3, 4, 4), dtype=torch.float32)
    assert a.dtype == torch.float64
    assert torch.equal(a, b.double())


def test_randn_like_matches_randn():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    assert torch.equal(ItemNoise([1, 2]).randn_like(x), ItemNoise([1, 2]).randn(x.shape, dtype=x.dtype))


def test_global_rng_is_untouched():
    state = torch.get_rng_state()
    ItemNoise.from_seed(3, 4).randn((4, 3, 8, 8))
    assert torch.equal(state, torch.get_rng_state())


def test_batch_mismatch_raises():
    with pytest.raises(ValueError):
        ItemNoise([1, 2]).randn((3, 2))


@pytest.mark.parametrize("seeds", [[], [-1], [SEED_MAX + 1]])
def test_bad_seeds_raise(seeds):
    with pytest.raises(ValueError):
        ItemNoise(seeds)


def test_item_seeds():
    assert item_seeds(10, 3) == [10, 11, 12]
    assert ItemNoise.from_seed(10, 3).seeds == [10, 11, 12]
    wrapped = item_seeds(SEED_MAX, 2)
    assert wrapped[0] == SEED_MAX and all(0 <= s <= SEED_MAX for s in wrapped)
    with pytest.raises(ValueError):
        item_seeds(0, 0)


# ---------------------------------------------------------------- whole walks


def point_target() -> WalkTarget:
    means = torch.tensor([[-1.0, 0.5], [1.0, -0.5], [0.0, 1.5]], dtype=torch.float64)
    mixture = GaussianMixture([1.0, 2.0, 1.0], means, 0.05)
    return WalkTarget("three points", mixture.denoise, "latent", 0.01, 20.0, (2,), exact=mixture)


TARGETS = {
    "points": point_target,
    "pictures": lambda: image_mixture_target(ImageMixtureSpec(), 8, 8),
}


def walk(target, name, seed, batch_size, steps=5):
    request = WalkRequest(walk=name, schedule="karras", steps=steps, seed=seed, batch_size=batch_size)
    return run_walk(target, request)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("name", STOCHASTIC)
def test_batch_item_equals_the_single_run_with_seed_plus_i(name, target_name):
    target = TARGETS[target_name]()
    seed, steps = 41, (5 if target_name == "points" else 3)  # 3 steps still cross the pictures' noise chunks
    batch = walk(target, name, seed, 3, steps)
    assert batch.seeds == [seed, seed + 1, seed + 2]
    for i in range(3):
        single = walk(target, name, seed + i, 1, steps)
        assert single.seeds == [seed + i]
        assert torch.equal(batch.x[i], single.x[0]), f"{name}: item {i} of the batch != a run with seed {seed + i}"


@pytest.mark.parametrize("name", STOCHASTIC)
def test_same_seed_same_walk_and_different_seed_different_walk(name):
    target = point_target()
    a, b = walk(target, name, 7, 3), walk(target, name, 7, 3)
    assert torch.equal(a.x, b.x)
    c = walk(target, name, 8, 3)
    assert not torch.equal(a.x[0], c.x[0])
    # seed 8's batch is seed 7's shifted by one item
    assert torch.equal(a.x[1:], c.x[:2])


@pytest.mark.parametrize("name", WALKS.names())
def test_run_walk_leaves_the_global_rng_alone(name):
    state = torch.get_rng_state()
    walk(point_target(), name, 3, 2)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_walks_repeat_exactly(name):
    target = point_target()
    a, b = walk(target, name, 5, 3), walk(target, name, 5, 3)
    assert torch.equal(a.x, b.x)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_walk_has_no_hidden_noise(name):
    """A deterministic walk called directly with the same start gives the same result whatever its seed."""
    mixture = point_target().exact
    sigmas = torch.tensor([20.0, 5.0, 1.0, 0.1, 0.0], dtype=torch.float64)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0)) * 20
    a = WALKS[name].fn(mixture.denoise, x, sigmas, extra_args={"seed": 1})
    b = WALKS[name].fn(mixture.denoise, x, sigmas, extra_args={"seed": 2})
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_extra_args_seed_is_the_per_item_noise(name):
    """Called as a ComfyUI SAMPLER (seed in extra_args) a walk draws from ItemNoise seeded seed + i."""
    mixture = point_target().exact
    sigmas = torch.tensor([20.0, 5.0, 1.0, 0.1, 0.0], dtype=torch.float64)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0)) * 20
    via_extra = WALKS[name].fn(mixture.denoise, x, sigmas, extra_args={"seed": 17})
    via_noise = WALKS[name].fn(mixture.denoise, x, sigmas, noise=ItemNoise.from_seed(17, 3))
    assert torch.equal(via_extra, via_noise)
    other = WALKS[name].fn(mixture.denoise, x, sigmas, extra_args={"seed": 18})
    assert not torch.equal(via_extra, other)
