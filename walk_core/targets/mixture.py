"""Exact Gaussian-mixture targets: the ground truth every walk is verified against.

p(x0) = sum_k w_k N(mu_k, Sigma_k) with Sigma_k = diag(v_k) + U_k U_k^T (diagonal, or low rank plus a
diagonal / isotropic part). Under noise of scale sigma each component stays Gaussian with covariance
C_k = Sigma_k + sigma^2 I, so the noisy density, its score and the denoiser E[x0 | x] are exact:

    score(x, sigma) = -sum_k r_k(x) C_k^{-1} (x - mu_k),    D(x, sigma) = x + sigma^2 score(x, sigma)

with responsibilities r_k from a log-sum-exp. C_k is handled in whitened form: with A = diag(v + sigma^2)
and W = A^{-1/2} U = Q S V^T, C^{-1} = A^{-1/2} (I - Q diag(s^2 / (1 + s^2)) Q^T) A^{-1/2}, which stays
accurate from sigma = 1e-3 to 1e3. All arithmetic is float64; inputs and outputs keep their dtype.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

_F = torch.float64


def _as_batch(x: torch.Tensor, d: int, who: str, device) -> torch.Tensor:
    if x.ndim < 1 or x.shape[0] == 0 or x[0].numel() != d:
        raise ValueError(f"{who}: x has shape {tuple(x.shape)}; expected [B, ...] with {d} values per item")
    return x.reshape(x.shape[0], d).to(device=device, dtype=_F)


@dataclass(frozen=True)
class _Whitened:
    """Per-sigma factorisation of C_k for all components (shapes in comments)."""

    a: torch.Tensor  # [K, D]  v + sigma^2
    q: torch.Tensor  # [K, D, r]  orthonormal directions of W = A^{-1/2} U
    shrink: torch.Tensor  # [K, r]  s^2 / (1 + s^2)
    logdet: torch.Tensor  # [K]  log det C_k


class GaussianMixture:
    """A mixture of Gaussians in any dimension with exact denoiser, score, log-density and sampling.

    Args:
        weights: [K] positive (normalised here).
        means: [K, *shape] component means; ``shape`` is the shape of one sample (e.g. (2,) or (3, 16, 16)).
        variances: the diagonal part: a scalar, [K] (isotropic per component) or [K, *shape]; > 0.
        factors: optional low-rank part U, [K, *shape, r] (Sigma_k = diag(v_k) + U_k U_k^T).
        labels: optional class label per component, [K] ints (for conditional targets).
    """

    def __init__(self, weights, means, variances, factors=None, labels: Optional[Sequence[int]] = None):
        means = torch.as_tensor(means, dtype=_F)
        if means.ndim < 2:
            raise ValueError(f"GaussianMixture: means must be [K, ...]; got shape {tuple(means.shape)}")
        k = means.shape[0]
        self.shape = tuple(means.shape[1:])
        d = math.prod(self.shape)
        self.dim = d
        w = torch.as_tensor(weights, dtype=_F).reshape(-1)
        if w.numel() != k or not bool((w > 0).all()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"GaussianMixture: weights must be {k} positive finite values; got {w.tolist()}")
        self.weights = w / w.sum()
        self.means = means.reshape(k, d)
        v = torch.as_tensor(variances, dtype=_F)
        if v.ndim == 0:
            v = v.expand(k, d)
        elif tuple(v.shape) == (k,):
            v = v[:, None].expand(k, d)
        elif tuple(v.shape) in ((k,) + self.shape, (k, d)):
            v = v.reshape(k, d)
        else:
            raise ValueError(f"GaussianMixture: variances has shape {tuple(v.shape)}; expected a scalar, "
                             f"[{k}] or [{k}, *{self.shape}]")
        if not bool((v > 0).all()):
            raise ValueError("GaussianMixture: variances must all be > 0 (use a small value for a near-degenerate part)")
        self.variances = v.contiguous()
        if factors is None:
            self.factors = torch.zeros(k, d, 0, dtype=_F)
        else:
            f = torch.as_tensor(factors, dtype=_F)
            if f.ndim < 3 or f.shape[0] != k or math.prod(f.shape[1:-1]) != d:
                raise ValueError(f"GaussianMixture: factors has shape {tuple(f.shape)}; expected [{k}, *{self.shape}, r]")
            self.factors = f.reshape(k, d, f.shape[-1])
        if labels is None:
            self.labels = None
        else:
            self.labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
            if self.labels.numel() != k:
                raise ValueError(f"GaussianMixture: labels has {self.labels.numel()} entries; expected {k}")
        self._cache: dict = {}

    # ----------------------------------------------------------------- structure
    @property
    def n_components(self) -> int:
        return self.weights.numel()

    @property
    def rank(self) -> int:
        return self.factors.shape[-1]

    def classes(self) -> list[int]:
        return [] if self.labels is None else sorted(set(self.labels.tolist()))

    def covariance(self, k: int) -> torch.Tensor:
        """The dense [D, D] covariance of component k (for tests and small D)."""
        u = self.factors[k]
        return torch.diag(self.variances[k]) + u @ u.T

    def condition(self, label: int) -> "GaussianMixture":
        """The exact class-conditional mixture p(x0 | class = label)."""
        if self.labels is None:
            raise ValueError("GaussianMixture.condition: this mixture has no class labels")
        keep = self.labels == int(label)
        if not bool(keep.any()):
            raise ValueError(f"GaussianMixture.condition: class {label} not present; expected one of {self.classes()}")
        return GaussianMixture(self.weights[keep], self.means[keep].reshape(-1, *self.shape),
                               self.variances[keep], self.factors[keep], self.labels[keep])

    # ----------------------------------------------------------------- per-sigma algebra
    def _whiten(self, sigma: float) -> _Whitened:
        key = float(sigma)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        a = self.variances + key * key  # [K, D]
        logdet = a.log().sum(-1)
        if self.rank == 0:
            q = self.factors
            shrink = torch.zeros(self.n_components, 0, dtype=_F)
        else:
            w = self.factors / a.sqrt()[..., None]  # [K, D, r]
            s2, v = torch.linalg.eigh(w.transpose(1, 2) @ w)  # W^T W = V S^2 V^T, [K, r]
            s2 = s2.clamp_min(0)
            q = (w @ v) / s2.sqrt().clamp_min(1e-300)[:, None, :]  # W V S^-1: orthonormal where s > 0
            q = torch.where(s2[:, None, :] > 0, q, torch.zeros_like(q))
            shrink = s2 / (1 + s2)
            logdet = logdet + torch.log1p(s2).sum(-1)
        out = _Whitened(a, q, shrink, logdet)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _terms(self, x: torch.Tensor, sigma: float):
        """Log-joint per component [B, K] and the whitened solves C_k^{-1}(x - mu_k) [B, K, D]."""
        wh = self._whiten(sigma)
        resid = x[:, None, :] - self.means[None]  # [B, K, D]
        inv_sqrt_a = wh.a.rsqrt()
        y = resid * inv_sqrt_a  # A^{-1/2} r
        p = torch.einsum("bkd,kdr->bkr", y, wh.q)  # coordinates along Q
        y_perp = y - torch.einsum("bkr,kdr->bkd", p, wh.q)
        maha = y_perp.square().sum(-1) + (p.square() * (1 - wh.shrink)).sum(-1)
        solve = (y - torch.einsum("bkr,kdr->bkd", p * wh.shrink, wh.q)) * inv_sqrt_a
        log_joint = self.weights.log() - 0.5 * (maha + wh.logdet + self.dim * math.log(2 * math.pi))
        return log_joint, solve

    def _per_sigma(self, x: torch.Tensor, sigma, fn):
        """Apply ``fn(x_rows, sigma_float)`` grouping items that share a sigma."""
        sig = torch.as_tensor(sigma, dtype=_F).reshape(-1).cpu()
        if sig.numel() == 1 or bool((sig == sig[0]).all()):  # the usual case: one sigma for the batch
            return fn(x, float(sig[0]))
        if sig.numel() != x.shape[0]:
            raise ValueError(f"GaussianMixture: sigma has {sig.numel()} values for a batch of {x.shape[0]}")
        out = None
        for value in torch.unique(sig).tolist():
            rows = (sig == value).nonzero().reshape(-1).to(x.device)
            part = fn(x[rows], value)
            if out is None:
                out = part.new_empty((x.shape[0],) + part.shape[1:])
            out[rows] = part
        return out

    # ----------------------------------------------------------------- public maths
    def responsibilities(self, x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        """p(component k | x) under noise sigma, [B, K] (float64)."""
        xf = _as_batch(x, self.dim, "GaussianMixture.responsibilities", self.means.device)
        return self._per_sigma(xf, sigma, lambda xs, s: torch.softmax(self._terms(xs, s)[0], dim=-1))

    def log_prob(self, x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        """log p_sigma(x), [B] (float64)."""
        xf = _as_batch(x, self.dim, "GaussianMixture.log_prob", self.means.device)
        return self._per_sigma(xf, sigma, lambda xs, s: torch.logsumexp(self._terms(xs, s)[0], dim=-1))

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """grad_x log p_sigma(x), same shape and dtype as x."""
        xf = _as_batch(x, self.dim, "GaussianMixture.score", self.means.device)

        def fn(xs, s):
            log_joint, solve = self._terms(xs, s)
            r = torch.softmax(log_joint, dim=-1)
            return -(r[..., None] * solve).sum(1)

        return self._per_sigma(xf, sigma, fn).reshape(x.shape).to(device=x.device, dtype=x.dtype)

    def denoise(self, x: torch.Tensor, sigma, **extra) -> torch.Tensor:
        """The exact denoiser E[x0 | x_sigma = x] = x + sigma^2 score, same shape and dtype as x.

        Accepts and ignores extra keyword arguments (a walk's ``extra_args`` such as ``seed``)."""
        xf = _as_batch(x, self.dim, "GaussianMixture.denoise", self.means.device)

        def fn(xs, s):
            log_joint, solve = self._terms(xs, s)
            r = torch.softmax(log_joint, dim=-1)
            return xs - (s * s) * (r[..., None] * solve).sum(1)

        return self._per_sigma(xf, sigma, fn).reshape(x.shape).to(device=x.device, dtype=x.dtype)

    __call__ = denoise

    def denoise_reweighted(self, x: torch.Tensor, sigma, log_offset: torch.Tensor) -> torch.Tensor:
        """The exact denoiser of the mixture whose component log-weights are shifted per item by ``log_offset``
        [B, K] (item b samples weights proportional to w_k exp(log_offset[b, k])); one sigma for the batch."""
        xf = _as_batch(x, self.dim, "GaussianMixture.denoise_reweighted", self.means.device)
        sig = torch.as_tensor(sigma, dtype=_F).reshape(-1)
        if not bool((sig == sig[0]).all()):
            raise ValueError("GaussianMixture.denoise_reweighted: expected one sigma for the whole batch")
        s = float(sig[0])
        log_joint, solve = self._terms(xf, s)
        r = torch.softmax(log_joint + log_offset.to(device=log_joint.device, dtype=_F), dim=-1)
        out = xf - (s * s) * (r[..., None] * solve).sum(1)
        return out.reshape(x.shape).to(device=x.device, dtype=x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None, sigma: float = 0.0,
               return_components: bool = False):
        """Exact samples of p_sigma: [n, *shape] float64 (and their component indices when asked)."""
        if n < 1:
            raise ValueError(f"GaussianMixture.sample: n={n} is not allowed; expected >= 1")
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=_F, generator=generator)
        x = self.means[comp] + self.variances[comp].sqrt() * z
        if self.rank:
            u = torch.randn(n, self.rank, 1, dtype=_F, generator=generator)
            x = x + (self.factors[comp] @ u)[..., 0]
        if sigma:
            x = x + sigma * torch.randn(n, self.dim, dtype=_F, generator=generator)
        x = x.reshape(n, *self.shape)
        return (x, comp) if return_components else x
