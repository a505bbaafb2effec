"""The exact denoiser of a low-rank Gaussian mixture in closed form, fast enough for hundreds of benchmark runs.

``GaussianMixture.denoise`` is general (any diagonal variance) and forms an [n, K, D] tensor per call. The
benchmark's mixtures have the structure C_k = v_k I + U_k U_k^T (isotropic variance v_k, rank-r factor U_k),
for which everything reduces to matrix products with the [D, K r] stack of factors:

* with G_k = U_k^T U_k = Q_k diag(lambda_k) Q_k^T and U'_k = U_k Q_k (orthogonal columns), a = v_k + sigma^2 and
  p = U'_k^T (x - mu_k):  (C_k + sigma^2 I)^-1 (x - mu_k) = ((x - mu_k) - U'_k (p / (a + lambda_k))) / a,
* the quadratic form is (|x - mu_k|^2 - sum_j p_j^2 / (a + lambda_kj)) / a and
  log det = (D - r) log a + sum_j log(a + lambda_kj) (matrix determinant lemma),
* E[x0 | x] = x - sigma^2 sum_k r_k (C_k + sigma^2 I)^-1 (x - mu_k), r the responsibilities.

All in float64; the result has the input's dtype. ``tests/test_bench_metrics.py`` checks it against
``GaussianMixture.denoise`` and ``responsibilities``.
"""
from __future__ import annotations

import math

import torch

from ..walk_core import GaussianMixture

_F = torch.float64


class LowRankExact:
    """Exact denoiser and responsibilities of ``mixture`` (whose variances must be isotropic per component)."""

    def __init__(self, mixture: GaussianMixture, chunk: int = 256):
        v = mixture.variances  # [K, D]
        if not bool(torch.allclose(v, v[:, :1].expand_as(v), rtol=1e-12, atol=0.0)):
            raise ValueError("LowRankExact: mixture variances must be isotropic per component "
                             "(the same value over all dimensions); use GaussianMixture.denoise instead")
        self.mixture = mixture
        self.chunk = chunk
        k, d, r = mixture.factors.shape
        self.k, self.d, self.r = k, d, r
        self.v = v[:, 0].clone()  # [K]
        self.means = mixture.means  # [K, D]
        self.mean_sq = self.means.square().sum(1)  # [K]
        self.log_w = mixture.weights.log()  # [K]
        if r:
            gram = mixture.factors.transpose(1, 2) @ mixture.factors  # [K, r, r]
            lam, q = torch.linalg.eigh(gram)
            self.lam = lam.clamp_min(0.0)  # [K, r]
            rotated = mixture.factors @ q  # [K, D, r], orthogonal columns
            self.u_cat = rotated.permute(1, 0, 2).reshape(d, k * r)  # [D, K r]
            self.u_t = self.u_cat.T.contiguous()  # [K r, D]
            self.mean_u = torch.einsum("kd,kdr->kr", self.means, rotated)  # [K, r]
        else:
            self.lam = torch.zeros(k, 0, dtype=_F)

    # ------------------------------------------------------------------ internals
    def _sigma2(self, sigma, n: int) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=_F).reshape(-1)
        if s.numel() == 1:
            s = s.expand(n)
        elif s.numel() != n:
            raise ValueError(f"LowRankExact: sigma has {s.numel()} values for a batch of {n}; expected 1 or {n}")
        return s.square()

    def _terms(self, x: torch.Tensor, s2: torch.Tensor):
        """log p(x, k) up to a constant [n, K], a [n, K], projections p [n, K, r] and their weights 1/(a+lam)."""
        a = self.v[None, :] + s2[:, None]  # [n, K]
        sq = torch.linalg.vector_norm(x, dim=1, keepdim=True).square()
        d2 = torch.addmm(sq + self.mean_sq[None], x, self.means.T, alpha=-2.0)  # |x - mu_k|^2, [n, K]
        log_joint = self.log_w[None] - 0.5 * (self.d - self.r) * a.log()
        if self.r:
            p = (x @ self.u_cat).reshape(-1, self.k, self.r) - self.mean_u[None]  # [n, K, r]
            inv = 1.0 / (a[..., None] + self.lam[None])  # [n, K, r]
            quad = (d2 - (p.square() * inv).sum(-1)) / a
            log_joint = log_joint - 0.5 * (quad - inv.log().sum(-1))
        else:
            p = inv = None
            log_joint = log_joint - 0.5 * d2 / a
        return log_joint, a, p, inv

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if math.prod(x.shape[1:]) != self.d:
            raise ValueError(f"LowRankExact: x has shape {tuple(x.shape)}; expected [n, *{self.mixture.shape}]")
        return x.reshape(x.shape[0], self.d).to(_F)

    # ------------------------------------------------------------------ public
    def responsibilities(self, x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        """[n, K] posterior component probabilities of x at noise level ``sigma``."""
        xf = self._flat(x)
        s2 = self._sigma2(sigma, xf.shape[0])
        return torch.cat([torch.softmax(self._terms(xs, ss)[0], dim=-1)
                          for xs, ss in zip(xf.split(self.chunk), s2.split(self.chunk))])

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """[n] index of the most responsible component at sigma = 0."""
        return self.responsibilities(x, 0.0).argmax(dim=-1)

    def denoise(self, x: torch.Tensor, sigma, **extra) -> torch.Tensor:
        """E[x0 | x_sigma = x], same shape and dtype as x; extra keyword arguments are ignored."""
        xf = self._flat(x)
        s2 = self._sigma2(sigma.to("cpu") if torch.is_tensor(sigma) else sigma, xf.shape[0])
        out = torch.cat([self._denoise(xs, ss) for xs, ss in zip(xf.split(self.chunk), s2.split(self.chunk))])
        return out.reshape(x.shape).to(device=x.device, dtype=x.dtype)

    __call__ = denoise

    def _denoise(self, x: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        log_joint, a, p, inv = self._terms(x, s2)
        ra = torch.softmax(log_joint, dim=-1) / a  # r_k / a_k, [n, K]
        solve = torch.addmm(x * ra.sum(1, keepdim=True), ra, self.means, alpha=-1.0)  # sum_k r_k (x - mu_k) / a_k
        if self.r:
            solve.addmm_((ra[..., None] * p * inv).reshape(x.shape[0], -1), self.u_t, alpha=-1.0)
        return solve.mul_(-s2[:, None]).add_(x)  # in place: fewer large temporaries
