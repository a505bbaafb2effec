"""Training pictures and the random crops a training step sees.

An :class:`ImageSet` is the pictures ([3, H, W] in [-1, 1], any sizes) with a class index each. It comes from a
folder of image files (sub-folders = classes, the usual image-folder convention), from the pack's procedural
references, or from tensors (the nodes' IMAGE input). :class:`CropSampler` draws a batch of ``size`` x ``size``
crops with augmentation from one ``torch.Generator`` (so a run is fixed by its seed and a resumed run continues
identically): crops at the picture's own scale ("native", single-image training in the spirit of SinFusion /
SinDDM), from the picture resized so its shorter side is ``size`` ("fit", a dataset of whole pictures), or from
an antialiased pyramid between the two ("mixed"); random horizontal flips.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CROPS = ("auto", "native", "fit", "mixed")
FEW_PICTURES = 8  # "auto" crops: native below this many pictures, fit from it on
PYRAMID_LEVELS = 6  # "mixed": scales between fit and native


@dataclass(frozen=True)
class ImageSet:
    """Pictures [3, H, W] in [-1, 1] with a class index each; ``classes`` empty = unconditional."""

    pictures: Tuple[torch.Tensor, ...]
    labels: Tuple[int, ...]
    classes: Tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self):
        if not self.pictures:
            raise ValueError(f"ImageSet ({self.source or 'pictures'}): no pictures; expected at least one")
        if len(self.labels) != len(self.pictures):
            raise ValueError(f"ImageSet: {len(self.labels)} labels for {len(self.pictures)} pictures")
        for i, p in enumerate(self.pictures):
            if p.ndim != 3 or p.shape[0] != 3:
                raise ValueError(f"ImageSet ({self.source}): picture {i} has shape {tuple(p.shape)}; expected [3, H, W]")
            if not torch.isfinite(p).all():
                raise ValueError(f"ImageSet ({self.source}): picture {i} has non-finite pixels")
        bad = [lab for lab in self.labels if not 0 <= lab < max(1, len(self.classes))]
        if bad:
            raise ValueError(f"ImageSet: labels {bad[:5]} out of range for {len(self.classes)} classes")

    def check_size(self, size: int, who: str) -> None:
        small = [(i, tuple(p.shape[-2:])) for i, p in enumerate(self.pictures) if min(p.shape[-2:]) < size]
        if small:
            raise ValueError(f"{who}: picture(s) {small[:4]} (index, (H, W)) of {self.source or 'the data'} are smaller "
                             f"than the training size {size} px; expected every side >= {size} (lower size)")

    def split(self, every: int = 10) -> Tuple["ImageSet", Optional["ImageSet"]]:
        """(train, held out): every ``every``-th picture held out when there are at least ``every`` of them."""
        if len(self.pictures) < every:
            return self, None
        keep = [i for i in range(len(self.pictures)) if i % every != every - 1]
        held = [i for i in range(len(self.pictures)) if i % every == every - 1]

        def pick(idx, tag):
            return ImageSet(tuple(self.pictures[i] for i in idx), tuple(self.labels[i] for i in idx), self.classes,
                            f"{self.source} ({tag})")
        return pick(keep, "train"), pick(held, "held out")


def from_tensors(pictures: Sequence[torch.Tensor] | torch.Tensor, labels: Optional[Sequence[int]] = None,
                 classes: Sequence[str] = (), source: str = "pictures") -> ImageSet:
    """Pictures in [-1, 1] ([B, 3, H, W] or a list of [3, H, W]); grayscale repeated to RGB, alpha dropped."""
    items = list(pictures.unbind(0) if torch.is_tensor(pictures) else pictures)
    fixed = []
    for p in items:
        p = p.detach().float().cpu()
        if p.shape[0] == 1:
            p = p.expand(3, -1, -1)
        elif p.shape[0] == 4:
            p = p[:3]
        fixed.append(p.contiguous())
    return ImageSet(tuple(fixed), tuple(labels) if labels is not None else (0,) * len(fixed), tuple(classes), source)


def _load_picture(path: Path) -> torch.Tensor:
    """The first frame of a picture file [3, H, W] in [-1, 1]; every Pillow mode read with its true values
    (walk_core.picture_files), transparent areas composited on white (not black)."""
    import numpy as np

    from ..walk_core.picture_files import read_first_frame

    rgb, alpha = read_first_frame(path, "training data")
    if alpha is not None:
        rgb = rgb * alpha[..., None] + (1.0 - alpha[..., None])
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).contiguous() * 2 - 1


def load_folder(folder: Path | str) -> ImageSet:
    """Image files of ``folder``; its sub-folders holding images are classes (named after the sub-folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training data: {folder} is not a folder; expected a folder of images "
                                f"({', '.join(IMAGE_SUFFIXES)}) or of class sub-folders")

    def images(d: Path) -> List[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    subfolders = sorted(d for d in folder.iterdir() if d.is_dir() and images(d))
    if subfolders:
        if images(folder):
            log.warning("training data: %s has class sub-folders; the %d images directly in it are not used",
                        folder, len(images(folder)))
        files = [(p, i) for i, d in enumerate(subfolders) for p in images(d)]
        classes = tuple(d.name for d in subfolders)
    else:
        files = [(p, 0) for p in images(folder)]
        classes = ()
    if not files:
        raise ValueError(f"training data: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder} or its sub-folders")
    return ImageSet(tuple(_load_picture(p) for p, _ in files), tuple(lab for _, lab in files), classes, str(folder))


def from_references(names: Sequence[str], size: int, seed: int = 0) -> ImageSet:
    """The pack's procedural references at ``size`` x ``size``; several names = one class each."""
    from ..walk_core.references import reference_image

    names = list(names)
    pictures = tuple(reference_image(n, size, size, seed) * 2 - 1 for n in names)
    classes = tuple(names) if len(names) > 1 else ()
    return ImageSet(pictures, tuple(range(len(names))) if classes else (0,) * len(names), classes,
                    f"references {', '.join(names)} at {size} px, seed {seed}")


def _resize(p: torch.Tensor, scale: float) -> torch.Tensor:
    if scale >= 0.999:
        return p.clone()  # a tensor of the sampler's own (not an inference-mode tensor of the caller's)
    h, w = p.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(p[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


class CropSampler:
    """Random ``size`` crops of an :class:`ImageSet`, every draw from the generator it is given."""

    def __init__(self, data: ImageSet, size: int, crops: str = "auto", flip: bool = True):
        if crops not in CROPS:
            raise ValueError(f"CropSampler: crops={crops!r}; expected one of {', '.join(CROPS)}")
        data.check_size(size, "CropSampler")
        if crops == "auto":
            crops = "native" if len(data.pictures) < FEW_PICTURES else "fit"
        self.data, self.size, self.crops, self.flip = data, size, crops, flip
        self.levels: List[List[torch.Tensor]] = []  # per picture: its pyramid, finest first
        for p in data.pictures:
            fit = size / min(p.shape[-2:])
            if crops == "native":
                scales = [1.0]
            elif crops == "fit":
                scales = [fit]
            else:
                n = max(1, min(PYRAMID_LEVELS, round(math.log2(1 / fit) * 4) + 1))
                scales = [fit ** (i / max(1, n - 1)) for i in range(n)]
            self.levels.append([_resize(p, s) for s in scales])

    def batch(self, n: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """``n`` crops [n, 3, size, size] and their labels [n] (long)."""
        s = self.size
        picks = torch.randint(len(self.levels), (n,), generator=generator).tolist()
        crops, labels = [], []
        for i in picks:
            pyramid = self.levels[i]
            level = pyramid[int(torch.randint(len(pyramid), (1,), generator=generator))]
            h, w = level.shape[-2:]
            top = int(torch.randint(h - s + 1, (1,), generator=generator))
            left = int(torch.randint(w - s + 1, (1,), generator=generator))
            crop = level[:, top:top + s, left:left + s]
            if self.flip and bool(torch.rand((), generator=generator) < 0.5):
                crop = crop.flip(-1)
            crops.append(crop)
            labels.append(self.data.labels[i])
        return torch.stack(crops), torch.tensor(labels, dtype=torch.long)
