"""A small EDM-preconditioned U-Net denoiser for pixel space (Karras et al. 2022, "Elucidating the Design Space
of Diffusion-Based Generative Models", §5 and Table 1: c_skip, c_out, c_in, c_noise).

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), label)

F is a plain U-Net (Ho et al. 2020 / Nichol & Dhariwal 2021 layout): residual blocks with GroupNorm and a
scale/shift from the noise (+ class) embedding, optional self-attention at chosen levels, strided-conv down and
nearest+conv up, skip connections by concatenation. It is fully convolutional: any size divisible by
``2 ** (levels - 1)`` walks, not only the training size. Class conditioning adds a learned label embedding; the
extra index ``num_classes`` is the "no class" label that classifier-free guidance uses as the unconditional
branch (trained by dropping labels, Ho & Salimans 2022).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

SIGMA_DATA = 0.5  # pixel space in [-1, 1] (DESIGN.md)


@dataclass(frozen=True)
class UNetConfig:
    """The architecture; stored as JSON in every checkpoint's metadata."""

    channels: int = 3  # picture channels
    width: int = 32  # channels of the first level
    mults: Tuple[int, ...] = (1, 2, 2)  # width multiplier per level; level i works at 1 / 2**i of the size
    blocks: int = 2  # residual blocks per level (encoder; the decoder has blocks + 1)
    attention: Tuple[int, ...] = ()  # levels with self-attention after each block (e.g. (2,) = the coarsest of 3)
    num_classes: int = 0  # 0 = unconditional; else labels 0..num_classes-1, and num_classes = "no class"
    dropout: float = 0.0
    sigma_data: float = SIGMA_DATA
    patch: int = 1  # pixels per side folded into channels before the first level (pixel unshuffle); 2 = 4x cheaper

    def __post_init__(self):
        object.__setattr__(self, "mults", tuple(int(m) for m in self.mults))
        object.__setattr__(self, "attention", tuple(int(a) for a in self.attention))
        # upper bounds keep a file's metadata from describing an absurd network before its size is counted
        checks = (
            ("channels", 1 <= self.channels <= 64, "1..64"),
            ("width", 8 <= self.width <= 4096 and self.width % 8 == 0,
             "a multiple of 8 in 8..4096 (GroupNorm groups)"),
            ("mults", 1 <= len(self.mults) <= 8 and all(1 <= m <= 64 for m in self.mults),
             "1 to 8 integers in 1..64"),
            ("blocks", 1 <= self.blocks <= 16, "1..16"),
            ("attention", all(0 <= a < len(self.mults) for a in self.attention),
             f"level indices in 0..{len(self.mults) - 1}"),
            ("num_classes", 0 <= self.num_classes <= 100_000, "0..100000"),
            ("dropout", 0.0 <= self.dropout < 1.0, "in [0, 1)"),
            ("sigma_data", 0 < self.sigma_data < math.inf, "a finite number > 0"),
            ("patch", self.patch in (1, 2, 4), "1, 2 or 4"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"UNetConfig: {name}={getattr(self, name)!r} is not allowed; expected {allowed}")

    @property
    def multiple(self) -> int:
        """Width and height must be multiples of this."""
        return self.patch * 2 ** (len(self.mults) - 1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, who: str = "UNetConfig") -> "UNetConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{who}: the architecture metadata is not JSON ({e})") from None
        except RecursionError:
            raise ValueError(f"{who}: the architecture metadata nests too deeply to be a UNetConfig") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise ValueError(f"{who}: the architecture metadata is {type(data).__name__}; expected a JSON object of "
                             f"the fields {sorted(known)}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{who}: the architecture metadata has unknown fields {unknown}; known: {sorted(known)}")
        for name, value in data.items():
            problem = _field_type_problem(name, value)
            if problem:
                raise ValueError(f"{who}: the architecture metadata's {name}={value!r} is not allowed; expected {problem}")
        try:
            return cls(**data)
        except ValueError as e:
            raise ValueError(f"{who}: the architecture metadata: {e}") from None


def _field_type_problem(name: str, value) -> str:
    """What a UNetConfig field read from JSON should be, when ``value`` is not that ("" when it is)."""
    def integer(v):
        return isinstance(v, int) and not isinstance(v, bool)
    if name in ("mults", "attention"):
        return "" if isinstance(value, list) and all(integer(v) for v in value) else "a list of integers"
    if name in ("dropout", "sigma_data"):
        return "" if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    return "" if integer(value) else "an integer"


def _groups(channels: int) -> int:
    """GroupNorm groups: the largest divisor of ``channels`` up to 32."""
    return math.gcd(channels, 32)


class NoiseEmbedding(nn.Module):
    """c_noise = log(sigma) / 4 -> sinusoidal features -> MLP (EDM's positional embedding of the noise level)."""

    def __init__(self, dim: int, frequencies: int = 32):
        super().__init__()
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(frequencies) / frequencies) * 100.0
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:  # [B] -> [B, dim]
        angles = c_noise[:, None].float() * self.freqs[None]
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=1))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the embedding gives a per-channel scale and shift after the second norm."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(torch.addcmul(shift, self.norm2(h), scale + 1))
        return self.skip(x) + self.conv2(self.dropout(h))


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of one level (residual)."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = max(1, channels // 64)
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """The blocks (each optionally followed by attention) of one U-Net level."""

    def __init__(self, cins, cout: int, emb: int, dropout: float, attention: bool):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(cin, cout, emb, dropout) for cin in cins)
        self.attn = nn.ModuleList(Attention(cout) for _ in cins) if attention else None


class UNet(nn.Module):
    """F(x_in [B, C, H, W], c_noise [B], label [B] or None) -> [B, C, H, W] (the raw network, no preconditioning)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        widths = [config.width * m for m in config.mults]
        emb = 4 * config.width
        self.noise_emb = NoiseEmbedding(emb)
        self.label_emb = nn.Embedding(config.num_classes + 1, emb) if config.num_classes else None
        folded = config.channels * config.patch**2
        self.conv_in = nn.Conv2d(folded, widths[0], 3, padding=1)
        self.down_levels = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        skips = [widths[0]]
        cin = widths[0]
        for i, w in enumerate(widths):
            cins = [cin] + [w] * (config.blocks - 1)
            self.down_levels.append(Level(cins, w, emb, config.dropout, i in config.attention))
            skips += [w] * config.blocks
            cin = w
            if i < len(widths) - 1:
                self.downsamples.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
                skips.append(w)
        self.mid = Level([cin, cin], cin, emb, config.dropout, True)
        self.up_levels = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            cins = []
            for _ in range(config.blocks + 1):
                cins.append(cin + skips.pop())
                cin = w
            self.up_levels.append(Level(cins, w, emb, config.dropout, i in config.attention))
            if i > 0:
                self.upsamples.append(nn.Conv2d(w, w, 3, padding=1))
        self.norm_out = nn.GroupNorm(_groups(cin), cin)
        self.conv_out = nn.Conv2d(cin, folded, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @staticmethod
    def _run(level: Level, h, emb):
        """Yield the output of each block (after its attention) of an encoder / middle level."""
        for j, block in enumerate(level.blocks):
            h = block(h, emb)
            if level.attn is not None:
                h = level.attn[j](h)
            yield h

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, label: Optional[torch.Tensor] = None) -> torch.Tensor:
        emb = self.noise_emb(c_noise)
        if self.label_emb is not None:
            if label is None:  # no class = the unconditional branch
                label = torch.full((x.shape[0],), self.config.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.label_emb(label)
        emb = F.silu(emb)
        p = self.config.patch
        h = self.conv_in(F.pixel_unshuffle(x, p) if p > 1 else x)
        skips = [h]
        for i, level in enumerate(self.down_levels):
            for h in self._run(level, h, emb):
                skips.append(h)
            if i < len(self.downsamples):
                h = self.downsamples[i](h)
                skips.append(h)
        *_, h = self._run(self.mid, h, emb)
        for i, level in enumerate(self.up_levels):
            for j, block in enumerate(level.blocks):
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
                if level.attn is not None:
                    h = level.attn[j](h)
            if i < len(self.upsamples):
                h = self.upsamples[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(out, p) if p > 1 else out


class EDMDenoiser(nn.Module):
    """D(x, sigma, label=None) with EDM preconditioning around a :class:`UNet`; x [B, C, H, W], sigma [B].

    The initial weights come from ``seed`` alone; torch's global random state is left as it was."""

    def __init__(self, config: UNetConfig, seed: int = 0):
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = UNet(config)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, label: Optional[torch.Tensor] = None) -> torch.Tensor:
        sd = self.config.sigma_data
        sigma = sigma.to(x.dtype).reshape(-1)
        if sigma.numel() == 1 and x.shape[0] != 1:
            sigma = sigma.expand(x.shape[0])
        s = sigma[:, None, None, None]
        norm = (s * s + sd * sd).rsqrt()
        c_skip = sd * sd * norm * norm
        c_out = s * sd * norm
        c_noise = sigma.log() / 4
        dtype = next(self.net.parameters()).dtype
        out = self.net((x * norm).to(dtype), c_noise.to(dtype), label)
        return c_skip * x + c_out * out.to(x.dtype)

    def check_size(self, height: int, width: int, who: str) -> None:
        m = self.config.multiple
        if height % m or width % m or height < m or width < m:
            raise ValueError(f"{who}: {width}x{height} px is not allowed for this model; expected width and height "
                             f"multiples of {m} (patch {self.config.patch}, then {len(self.config.mults)} levels "
                             f"halving the size {len(self.config.mults) - 1} times)")
