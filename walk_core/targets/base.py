"""The WALK_TARGET value: a denoiser plus what a walk needs to know about where it lives."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Tuple

import torch

Denoiser = Callable[..., torch.Tensor]  # D(x [B, ...], sigma [B], **extra) -> denoised [B, ...]

SPACES = ("pixels", "latent", "vector")  # vector: abstract exact targets (e.g. 2-D mixtures)


@dataclass(frozen=True)
class Decoder:
    """A differentiable map from a latent target's space to walk-space pictures (a VAE's decoder).

    ``decode(z [B, C, h, w]) -> [B, 3, h * factor, w * factor]`` in [-1, 1]; gradients flow back to z.
    ``factor`` is pixels per latent cell at the size the decoder works at (8 for Stable Diffusion's VAE; 4
    when it decodes at half size to save memory).
    """

    decode: Callable[[torch.Tensor], torch.Tensor]
    factor: int
    channels: int = 3

    def pixel_shape(self, latent_shape: Tuple[int, ...]) -> Tuple[int, int, int]:
        return (self.channels, int(latent_shape[-2]) * self.factor, int(latent_shape[-1]) * self.factor)


@dataclass(frozen=True)
class WalkTarget:
    """An immutable description of a target distribution.

    Attributes:
        name: shown in errors and logs.
        denoiser: D(x, sigma, **extra) in the k-diffusion / EDM convention.
        space: "pixels" (walk tensors [B, C, H, W] in [-1, 1]), "latent" (a model's latent space) or
            "vector" (an abstract exact target such as a 2-D mixture).
        sigma_min, sigma_max: the natural sigma range of the target.
        shape: the shape of one sample, e.g. (3, 64, 64).
        resize: for targets that take a size, ``resize(width, height) -> WalkTarget`` at that size; None
            when the shape is fixed.
        unconditional: the branch guidance extrapolates away from (classifier-free guidance's D(x, sigma | {}));
            None when the target has no conditional branch.
        exact: the exact distribution (a GaussianMixture) the target samples -- the conditional one when a
            class is chosen -- where there is one, for verification.
        info: free-form facts for display (components, source, ...).
        start_mean: where the target's pictures have a mean far from 0 (a bright or dark reference), that mean,
            broadcastable to ``shape`` (e.g. [C, 1, 1]): a walk from pure noise then starts at start_mean +
            sigma_max * noise, the sigma_max marginal of the target, rather than at sigma_max * noise (whose
            offset a patch posterior reads as evidence for darker/lighter patches). None = 0.
        energy: where the target has one, ``energy(x [B, *shape]) -> [B]``, the negative log-density up to a
            constant (p(x) proportional to exp(-energy(x))), differentiable in x; None otherwise.
        paired: ``paired(x, sigma, **extra) -> (conditional, unconditional)`` where the target computes both
            branches cheaper in one call than in two (a diffusion MODEL batches its prompts); guidance uses it at
            the evaluations where a term needs the unconditional branch. None = two calls.
        decoder: for latent targets, the :class:`Decoder` from the latent to walk-space pixels that energy
            guidance measures through (a VAE); None = pixel energies cannot act on this target.
        cfg_formula: ``cfg_formula(conditional, unconditional, scale, x, sigma, **extra) -> denoised`` replacing the plain
            classifier-free guidance formula of the ``cfg`` term (a MODEL patched with a cfg function, such as
            ComfyUI's RescaleCFG); None = ``u + scale (c - u)``.
        tiled: ``tiled() -> WalkTarget``, the same target with periodic boundaries (its pictures tile
            seamlessly); None when the target cannot tile.
        walk_s_noise: the noise scale (EDM's S_noise) this target's pictures are best walked with, for callers that
            set the walk themselves (the control nodes); WalkSampler's own ``s_noise`` input is the user's. 1 = plain.
        perturbed: ``perturbed(x, sigma, perturbation, **extra) -> denoised``: a prediction of the target's network
            with its insides changed as ``perturbation`` (a guidance.perturbed.Perturbation) says -- self-attention
            replaced or blurred, layers skipped -- for PAG, SEG, SAG, SLG and SWG. Only a diffusion MODEL has one
            (its view inside ComfyUI's sampling); None = the target has no attention to perturb.
        conditioned: ``conditioned(x, sigma, transform, **extra) -> denoised``: the conditional prediction with the
            target's condition tensor y [B, ...] replaced by ``transform(y)`` (CADS perturbs it); None = the target's
            condition is not a tensor a guidance term can reach.
    """

    name: str
    denoiser: Denoiser
    space: str
    sigma_min: float
    sigma_max: float
    shape: Tuple[int, ...]
    resize: Optional[Callable[[int, int], "WalkTarget"]] = None
    exact: Any = None
    unconditional: Optional[Denoiser] = None
    info: dict = field(default_factory=dict)
    energy: Optional[Callable[[torch.Tensor], torch.Tensor]] = None  # last: positional construction keeps working
    start_mean: Optional[torch.Tensor] = None
    paired: Optional[Callable[..., Tuple[torch.Tensor, torch.Tensor]]] = None
    decoder: Optional["Decoder"] = None
    cfg_formula: Optional[Callable[..., torch.Tensor]] = None
    tiled: Optional[Callable[[], "WalkTarget"]] = None
    walk_s_noise: float = 1.0
    perturbed: Optional[Callable[..., Any]] = None
    conditioned: Optional[Callable[..., torch.Tensor]] = None

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"WalkTarget {self.name}: space={self.space!r}; expected one of {SPACES}")
        if not 0 < self.sigma_min <= self.sigma_max:
            raise ValueError(
                f"WalkTarget {self.name}: sigma range ({self.sigma_min}, {self.sigma_max}) must satisfy 0 < min <= max"
            )

    @property
    def takes_size(self) -> bool:
        return self.resize is not None

    def at_size(self, width: int, height: int) -> "WalkTarget":
        """This target at ``width`` x ``height`` pixels (itself when the size is fixed or already matches; a latent
        target's ``info['pixels_per_latent']`` converts its shape to pixels)."""
        factor = self.info.get("pixels_per_latent", 1) if isinstance(self.info, dict) else 1  # latent targets
        if self.resize is None or tuple(int(n) * factor for n in self.shape[-2:]) == (height, width):
            return self
        return self.resize(width, height)

    def with_sigmas(self, sigma_min: float, sigma_max: float) -> "WalkTarget":
        return replace(self, sigma_min=sigma_min, sigma_max=sigma_max)
