"""What guidance keeps and what it loses, measured against the exact class-conditional distribution.

Every sample goes to its most responsible component of the *unconditional* mixture at sigma = 0.

* Class precision: the fraction of samples assigned to a component of the wanted class.
* Diversity kept: the samples' spread, the mean squared distance to their own mean (the trace of the
  sample covariance, summed over all dimensions), over the same spread of exact conditional samples
  (1 = the conditional's diversity; CFG at a high scale shrinks it).
* In-class mode TV: among the samples assigned to the wanted class, the fraction per in-class component
  against the conditional weights (total variation; 0 = the conditional's proportions).
"""
from __future__ import annotations

import torch

from ..walk_core import GaussianMixture

_F = torch.float64


def class_precision(mixture: GaussianMixture, components: torch.Tensor, label: int) -> float:
    """Fraction of samples whose assigned component (of ``mixture``) has class ``label``."""
    return float((mixture.labels[components] == int(label)).to(_F).mean())


def spread(x: torch.Tensor) -> float:
    """Mean squared distance of the samples [n, ...] to their mean."""
    flat = x.reshape(x.shape[0], -1).to(_F)
    return float((flat - flat.mean(0)).square().sum(1).mean())


def in_class_tv(mixture: GaussianMixture, components: torch.Tensor, label: int) -> float:
    """TV between the in-class samples' component fractions and the conditional weights (nan: no sample in class)."""
    members = torch.nonzero(mixture.labels == int(label)).reshape(-1)  # component indices of the class
    counts = torch.bincount(components, minlength=mixture.n_components)[members].to(_F)
    if float(counts.sum()) == 0:
        return float("nan")
    weights = mixture.weights[members] / mixture.weights[members].sum()
    return 0.5 * float((counts / counts.sum() - weights).abs().sum())
