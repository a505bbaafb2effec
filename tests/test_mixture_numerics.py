"""GaussianMixture against independent float64 references: dense algebra on small D, Woodbury on large D."""
import math

import pytest
import torch

from rwalk.walk_core.targets import GaussianMixture

F = torch.float64
SIGMAS = [1e-3, 0.1, 1.0, 10.0, 1e3]


def small_mixture(labels=None, seed=0):
    """D = 5, K = 3, rank 2, non-isotropic diagonal variances, unequal weights."""
    g = torch.Generator().manual_seed(seed)
    k, d, r = 3, 5, 2
    means = torch.randn(k, d, generator=g, dtype=F) * 2
    variances = 0.05 + torch.rand(k, d, generator=g, dtype=F) * 0.5
    factors = torch.randn(k, d, r, generator=g, dtype=F) * 0.4
    return GaussianMixture([0.2, 0.5, 0.3], means, variances, factors, labels=labels)


def dense_terms(mixture, x, sigma):
    """Reference log N(x; mu_k, Sigma_k + sigma^2 I) [B, K] and C_k^{-1}(x - mu_k) [B, K, D], dense."""
    d = mixture.dim
    log_n, solves = [], []
    for k in range(mixture.n_components):
        c = mixture.covariance(k) + sigma**2 * torch.eye(d, dtype=F)
        resid = x - mixture.means[k]  # [B, D]
        solve = torch.linalg.solve(c, resid.T).T
        _, logdet = torch.linalg.slogdet(c)
        log_n.append(-0.5 * ((resid * solve).sum(-1) + logdet + d * math.log(2 * math.pi)))
        solves.append(solve)
    return torch.stack(log_n, 1), torch.stack(solves, 1)


def dense_reference(mixture, x, sigma):
    log_n, solves = dense_terms(mixture, x, sigma)
    log_joint = log_n + mixture.weights.log()
    resp = torch.softmax(log_joint, -1)
    score = -(resp[..., None] * solves).sum(1)
    return {"log_prob": torch.logsumexp(log_joint, -1), "resp": resp, "score": score,
            "denoised": x + sigma**2 * score}


def points(mixture, sigma, n=16, seed=1):
    """Typical points of p_sigma, plus two far from every component."""
    x = mixture.sample(n, torch.Generator().manual_seed(seed), sigma=sigma).reshape(n, -1)
    far = torch.full((2, mixture.dim), 6.0, dtype=F) * torch.tensor([[1.0], [-1.0]], dtype=F)
    return torch.cat([x, far + sigma * torch.ones_like(far)])


# ---------------------------------------------------------------- small D: dense reference


@pytest.mark.parametrize("sigma", SIGMAS)
def test_matches_the_dense_reference(sigma):
    mixture = small_mixture()
    x = points(mixture, sigma)
    ref = dense_reference(mixture, x, sigma)
    scale = 1 + x.abs().max()
    torch.testing.assert_close(mixture.log_prob(x, sigma), ref["log_prob"], rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(mixture.responsibilities(x, sigma), ref["resp"], rtol=1e-8, atol=1e-10)
    score_scale = float(ref["score"].abs().max()) + 1e-300
    torch.testing.assert_close(mixture.score(x, sigma), ref["score"], rtol=1e-8, atol=1e-10 * score_scale)
    torch.testing.assert_close(mixture.denoise(x, sigma), ref["denoised"], rtol=1e-8, atol=1e-10 * float(scale))


@pytest.mark.parametrize("sigma", SIGMAS)
def test_denoiser_is_x_plus_sigma_squared_score(sigma):
    mixture = small_mixture()
    x = points(mixture, sigma)
    expected = x + sigma**2 * mixture.score(x, sigma)
    torch.testing.assert_close(mixture.denoise(x, sigma), expected, rtol=1e-10,
                               atol=1e-12 * float(1 + x.abs().max()))


@pytest.mark.parametrize("sigma", SIGMAS)
def test_responsibilities_are_a_distribution(sigma):
    mixture = small_mixture()
    r = mixture.responsibilities(points(mixture, sigma), sigma)
    assert bool((r >= 0).all())
    torch.testing.assert_close(r.sum(-1), torch.ones(r.shape[0], dtype=F), rtol=0, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.1, 1.0, 10.0])
def test_score_is_the_gradient_of_log_prob(sigma):
    mixture = small_mixture()
    x = points(mixture, sigma).requires_grad_(True)
    (grad,) = torch.autograd.grad(mixture.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(mixture.score(x.detach(), sigma), grad, rtol=1e-8,
                               atol=1e-10 * float(grad.abs().max()))


def test_per_item_sigma_equals_separate_calls():
    mixture = small_mixture()
    x = points(mixture, 1.0, n=6)[:6]
    sigma = torch.tensor([0.1, 1.0, 10.0, 0.1, 1e3, 1.0], dtype=F)
    together = mixture.denoise(x, sigma)
    for i in range(6):
        alone = mixture.denoise(x[i:i + 1], sigma[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        mixture.denoise(x, sigma[:4])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_shape_are_kept(dtype):
    g = torch.Generator().manual_seed(0)
    mixture = GaussianMixture([1, 1], torch.randn(2, 3, 4, 4, generator=g), 0.1)
    x = torch.randn(5, 3, 4, 4, generator=g).to(dtype)
    for out in (mixture.denoise(x, 1.0), mixture.score(x, 1.0)):
        assert out.dtype == dtype and out.shape == x.shape
    assert mixture.log_prob(x, 1.0).shape == (5,)
    with pytest.raises(ValueError):
        mixture.denoise(torch.zeros(5, 7), 1.0)


def test_extra_keyword_arguments_are_ignored():
    mixture = small_mixture()
    x = points(mixture, 1.0)
    torch.testing.assert_close(mixture.denoise(x, 1.0, seed=3, anything="x"), mixture.denoise(x, 1.0))


# ---------------------------------------------------------------- large D: Woodbury reference


def image_mixture(seed=0):
    """D = 3 x 64 x 64, K = 4, rank 4; per-pixel stds in [0.1, 0.2], low-rank part of ~0.075 per pixel."""
    g = torch.Generator().manual_seed(seed)
    k, shape, r = 4, (3, 64, 64), 4
    means = torch.rand((k,) + shape, generator=g, dtype=F) * 2 - 1
    stds = 0.1 + 0.1 * torch.rand((k,) + shape, generator=g, dtype=F)
    factors = torch.randn((k,) + shape + (r,), generator=g, dtype=F) * 0.075
    return GaussianMixture([1.0, 2.0, 3.0, 4.0], means, stds**2, factors)


def woodbury_reference(mixture, x, sigma):
    """Denoiser and responsibilities with C^{-1} = A^{-1} - A^{-1} U M^{-1} U^T A^{-1}, M = I + U^T A^{-1} U."""
    a = mixture.variances + sigma**2  # [K, D]
    u = mixture.factors  # [K, D, r]
    m = torch.eye(mixture.rank, dtype=F) + u.transpose(1, 2) @ (u / a[..., None])  # [K, r, r]
    resid = x[:, None, :] - mixture.means[None]  # [B, K, D]
    y = resid / a
    inner = torch.linalg.solve(m[None], torch.einsum("kdr,bkd->bkr", u, y)[..., None])[..., 0]  # [B, K, r]
    solve = y - torch.einsum("kdr,bkr->bkd", u, inner) / a
    logdet = a.log().sum(-1) + torch.linalg.slogdet(m)[1]
    log_joint = mixture.weights.log() - 0.5 * ((resid * solve).sum(-1) + logdet + mixture.dim * math.log(2 * math.pi))
    resp = torch.softmax(log_joint, -1)
    return x - sigma**2 * (resp[..., None] * solve).sum(1), resp


@pytest.fixture(scope="module")
def big():
    return image_mixture()


@pytest.mark.parametrize("sigma", [1e-3, 1.0, 1e3])
def test_image_sized_mixture_matches_woodbury(big, sigma):
    x = big.sample(3, torch.Generator().manual_seed(2), sigma=sigma).reshape(3, -1)
    ref_denoised, ref_resp = woodbury_reference(big, x, sigma)
    denoised = big.denoise(x, sigma)
    assert bool(torch.isfinite(denoised).all())
    torch.testing.assert_close(big.responsibilities(x, sigma), ref_resp, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(denoised, ref_denoised, rtol=1e-7, atol=1e-9 * float(1 + x.abs().max()))


def test_image_sized_mixture_at_tiny_sigma_is_almost_the_identity(big):
    """|D(x) - x| = sigma^2 |C^{-1}(x - mu)|, about sigma^2 * |z| / min std for x drawn from the mixture."""
    sigma = 1e-3
    x = big.sample(3, torch.Generator().manual_seed(3), sigma=sigma)
    denoised = big.denoise(x, sigma)
    bound = sigma**2 * 6 / float(big.variances.min().sqrt())  # 6 standard deviations
    assert float((denoised - x).abs().max()) <= bound
    assert bound <= 1e-4 * float(x.abs().max())
    # and a point far from everything: finite, with responsibilities still a distribution
    far = torch.full((1, big.dim), 4.0, dtype=F)
    assert bool(torch.isfinite(big.denoise(far, sigma)).all())
    torch.testing.assert_close(big.responsibilities(far, sigma).sum(-1), torch.ones(1, dtype=F))


def test_image_sized_mixture_at_huge_sigma_is_the_mean_of_means(big):
    """At sigma >> data scale, D(x) ~ sum_k r_k(x) mu_k with r_k ~ w_k (the weighted mean of the means).

    D(x) - sum_k r_k mu_k = sum_k r_k Sigma_k C_k^{-1} (x - mu_k), and C_k^{-1} = I / sigma^2 to relative
    O(|Sigma_k| / sigma^2), so per coordinate it is at most (max v_k |x - mu_k|_inf + max row |U_k| *
    |U_k^T (x - mu_k)|) / sigma^2, up to that relative error (10% allowed).
    """
    sigma = 1e3
    x = big.sample(3, torch.Generator().manual_seed(4), sigma=sigma).reshape(3, -1)
    denoised = big.denoise(x, sigma)
    assert bool(torch.isfinite(denoised).all())
    r = big.responsibilities(x, sigma)
    resid = x[:, None, :] - big.means[None]  # [B, K, D]
    along_u = torch.einsum("bkd,kdr->bkr", resid, big.factors).norm(dim=-1)  # [B, K]
    first_order = (big.variances.max(-1).values * resid.abs().max(-1).values
                   + big.factors.norm(dim=-1).max(-1).values * along_u) / sigma**2
    bound = 1.1 * float(first_order.max())
    assert bound < 0.05, "the test mixture is not in the large-sigma regime"
    assert float((denoised - r @ big.means).abs().max()) <= bound
    # r_k - w_k: the log-odds move by about x.(mu_k - mu_j) / sigma^2 ~ N(0, 1) |mu_k - mu_j| / sigma
    spread = float(torch.cdist(big.means, big.means).max())
    assert float((r - big.weights).abs().max()) <= 5 * spread / sigma


# ---------------------------------------------------------------- exact sampling


N_SAMPLES = 40_000


def test_samples_have_the_component_moments():
    mixture = small_mixture()
    x, comp = mixture.sample(N_SAMPLES, torch.Generator().manual_seed(5), return_components=True)
    assert x.shape == (N_SAMPLES, 5) and x.dtype == F
    # component frequencies: binomial, 5 standard errors
    freq = torch.bincount(comp, minlength=mixture.n_components).to(F) / N_SAMPLES
    w = mixture.weights
    assert bool(((freq - w).abs() <= 5 * (w * (1 - w) / N_SAMPLES).sqrt()).all()), (freq, w)
    for k in range(mixture.n_components):
        xs = x[comp == k]
        n = xs.shape[0]
        cov = mixture.covariance(k)
        var = cov.diagonal()
        # mean: standard error sqrt(C_ii / n)
        assert bool(((xs.mean(0) - mixture.means[k]).abs() <= 5 * (var / n).sqrt()).all())
        # covariance entries: standard error sqrt((C_ii C_jj + C_ij^2) / n) for Gaussian data
        emp = torch.cov(xs.T)
        se = ((var[:, None] * var[None, :] + cov**2) / n).sqrt()
        assert bool(((emp - cov).abs() <= 5 * se).all()), (emp - cov) / se


def test_noisy_samples_add_sigma_squared():
    mixture = GaussianMixture([1.0], torch.zeros(1, 4, dtype=F), torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=F))
    sigma = 0.7
    x = mixture.sample(N_SAMPLES, torch.Generator().manual_seed(6), sigma=sigma)
    expected = mixture.variances[0] + sigma**2
    se = expected * math.sqrt(2 / N_SAMPLES)
    assert bool(((x.var(0) - expected).abs() <= 5 * se).all()), x.var(0)


def test_sampling_is_seeded_and_shaped():
    mixture = GaussianMixture([1, 1], torch.zeros(2, 3, 2, 2), 0.1)
    a = mixture.sample(7, torch.Generator().manual_seed(1))
    b = mixture.sample(7, torch.Generator().manual_seed(1))
    assert a.shape == (7, 3, 2, 2) and torch.equal(a, b)
    with pytest.raises(ValueError):
        mixture.sample(0)


# ---------------------------------------------------------------- conditioning


def test_condition_keeps_one_class_and_renormalises():
    mixture = small_mixture(labels=[0, 1, 0])
    assert mixture.classes() == [0, 1]
    part = mixture.condition(0)
    keep = torch.tensor([True, False, True])
    assert part.n_components == 2
    torch.testing.assert_close(part.weights, mixture.weights[keep] / mixture.weights[keep].sum())
    torch.testing.assert_close(part.means, mixture.means[keep])
    torch.testing.assert_close(part.variances, mixture.variances[keep])
    torch.testing.assert_close(part.factors, mixture.factors[keep])
    assert part.labels.tolist() == [0, 0]
    # and it is the same distribution as a mixture built from those components alone
    direct = GaussianMixture(mixture.weights[keep], mixture.means[keep], mixture.variances[keep], mixture.factors[keep])
    x = points(mixture, 1.0)
    torch.testing.assert_close(part.denoise(x, 1.0), direct.denoise(x, 1.0))
    single = mixture.condition(1)
    assert single.n_components == 1 and math.isclose(float(single.weights.sum()), 1.0)


def test_condition_errors():
    with pytest.raises(ValueError):
        small_mixture().condition(0)  # no labels
    with pytest.raises(ValueError, match="7"):
        small_mixture(labels=[0, 1, 0]).condition(7)


# ---------------------------------------------------------------- bad inputs


def make(**changes):
    args = {"weights": [1.0, 1.0], "means": torch.zeros(2, 3), "variances": 0.1, "factors": None, "labels": None}
    args.update(changes)
    return GaussianMixture(args["weights"], args["means"], args["variances"], args["factors"], args["labels"])


@pytest.mark.parametrize("changes", [
    {"weights": [1.0, -1.0]},
    {"weights": [1.0, 0.0]},
    {"weights": [1.0, math.nan]},
    {"weights": [1.0, math.inf]},
    {"weights": [1.0, 1.0, 1.0]},
    {"variances": 0.0},
    {"variances": -0.1},
    {"variances": [0.1, 0.0]},
    {"variances": torch.tensor([[0.1, 0.1, 0.1], [0.1, 0.0, 0.1]])},
    {"labels": [0, 1, 2]},
    {"labels": [0]},
    {"means": torch.zeros(3)},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_bad_inputs_raise_value_error(changes):
    with pytest.raises(ValueError):
        make(**changes)


@pytest.mark.parametrize("changes", [
    {"variances": torch.full((2, 4), 0.1)},
    {"factors": torch.zeros(2, 4, 1)},
    {"factors": torch.zeros(3, 3, 1)},
], ids=["variances-wrong-shape", "factors-wrong-dim", "factors-wrong-count"])
def test_wrongly_shaped_parts_raise_value_error(changes):
    """A shape mismatch is a user's mistake like any other: a ValueError naming what was expected."""
    with pytest.raises(ValueError):
        make(**changes)


def test_good_inputs_are_accepted():
    mixture = make(variances=[0.1, 0.2], factors=torch.zeros(2, 3, 2), labels=[3, 4])
    assert mixture.n_components == 2 and mixture.rank == 2 and mixture.classes() == [3, 4]
    torch.testing.assert_close(mixture.weights, torch.tensor([0.5, 0.5], dtype=F))
