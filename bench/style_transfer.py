"""Photo style transfer with pretrained features: the pack's style-energy walk against AdaIN (issue 28 §3).

    .venv/bin/python bench/style_transfer.py [--size 256] [--styles stained_glass,painting]
                                             [--content-weights 10,20] [--textures] [--skip-transfer]
                                             [--threads 1]

Content: ``reference_image("photo", size, size, 0)``; styles: the pack's references at the same size.
Methods, each timed (wall seconds, ``--threads`` torch threads):

* ``adain`` -- feed-forward AdaIN, alpha 1 (bench/adain_peer.py; Huang & Belongie 2017).
* ``energy walk`` -- the pack's own TargetDistributionStyle with a ``vgg19_adain`` Gram code of the style and the
  photo as ``content`` (prior centre + ``content_weight`` x the unblurred squared error), walked by ``langevin``
  from the photo (init, denoise 0.6, 15 levels, 1 corrector step, ``s_noise`` 0: annealed MAP descent, the
  noise only in the starting state), 8 gradient steps per call: Gatys et al. 2016's energy (Gram matrices at
  relu1_1..relu5_1 + a content term), minimised by the noise-annealed walk instead of L-BFGS.

Measures: the mean over relu1_1..relu5_1 of the relative Gram distance to the style picture
(bench/deep_features.gram_distances) and the luminance SSIM to the photo (walk_core.quality, as bench/patch.py).
The table goes to ``docs/bench/style_transfer.md`` (written atomically), the pictures (one strip per style:
photo | style | AdaIN | walk per content weight) to ``bench/_out/style_transfer/``. ``--textures`` adds
64 px style-energy texture walks (stained glass, bricks; no content; prior_std 0.5, max_step 0.2, langevin from
sigma 1 with s_noise 0: the randomness is the walk's starting noise) with the random and vgg19_adain encoders.
Needs ``models/weights/vgg19_adain.safetensors`` and ``adain_decoder.safetensors`` (``bench/vgg_setup.py``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT_MD = ROOT / "docs" / "bench" / "style_transfer.md"
OUT_PNG = ROOT / "bench" / "_out" / "style_transfer"
log = logging.getLogger("bench.style_transfer")

# the transfer walk (tests/test_style_vgg_adain.py uses these too)
TRANSFER = dict(temperature=0.003, gradient_steps=8, content_blur=0.0, spectrum_weight=0.0)
TRANSFER_WALK = dict(walk="langevin", steps=15, denoise=0.6, options={"corrector_steps": 1, "s_noise": 0.0})
CONTENT_WEIGHT = 15.0  # 256 px: 10 and 20 bracket it in the table; 128 px: 10 gave SSIM 0.498, 30 0.625
# the texture walk (no content): grey prior, the walk's own noise
TEXTURE = dict(temperature=0.003, gradient_steps=8, spectrum_weight=1.0, prior_std=0.5, max_step=0.2)
TEXTURE_WALK = dict(walk="langevin", steps=30, sigma_max=1.0, options={"corrector_steps": 2, "s_noise": 0.0})


def transfer(code, photo: torch.Tensor, content_weight: float = CONTENT_WEIGHT, seed: int = 0,
             steps: int | None = None) -> torch.Tensor:
    """The energy walk: ``photo`` [1, 3, H, W] in [-1, 1] in the style ``code`` -> [1, 3, H, W] in [-1, 1]."""
    from rwalk.walk_core import WalkRequest, run_walk
    from rwalk.walk_core.targets.style_energy import StyleEnergySpec, style_energy_target

    h, w = photo.shape[-2:]
    target = style_energy_target(StyleEnergySpec(style=code, content=photo, content_weight=content_weight,
                                                 **TRANSFER), int(w), int(h))
    walk = dict(TRANSFER_WALK, steps=steps or TRANSFER_WALK["steps"])
    return run_walk(target, WalkRequest(seed=seed, init=photo, **walk)).x


def texture(code, size: int, seed: int = 0) -> torch.Tensor:
    """A style-energy texture walk at ``size`` px from the grey prior -> [1, 3, size, size] in [-1, 1]."""
    from rwalk.walk_core import WalkRequest, run_walk
    from rwalk.walk_core.targets.style_energy import StyleEnergySpec, style_energy_target

    target = style_energy_target(StyleEnergySpec(style=code, **TEXTURE), size, size)
    return run_walk(target, WalkRequest(seed=seed, **TEXTURE_WALK)).x


def save_strip(pictures: List[torch.Tensor], path: Path) -> None:
    """[3, H, W] pictures in [0, 1] side by side (4 px white gaps) as one PNG."""
    from PIL import Image

    h = max(p.shape[1] for p in pictures)
    canvas = torch.ones(3, h, sum(p.shape[2] + 4 for p in pictures) - 4)
    x = 0
    for p in pictures:
        canvas[:, :p.shape[1], x:x + p.shape[2]] = p.clamp(0, 1)
        x += p.shape[2] + 4
    Image.fromarray((canvas.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(path)


def measure(out: torch.Tensor, photo: torch.Tensor, style: torch.Tensor) -> Dict[str, float]:
    """out, photo, style: [3, H, W] in [0, 1]."""
    from rwalk.bench.deep_features import gram_distances
    from rwalk.walk_core import quality

    grams = gram_distances(out, style)
    row = {f"gram_{k}": v for k, v in grams.items()}
    row["gram_mean"] = sum(grams.values()) / len(grams)
    row["ssim"] = quality.ssim(quality.luminance(out * 2 - 1), quality.luminance(photo * 2 - 1))
    return row


def run_transfer(size: int, styles: List[str], weights: List[float]) -> List[Dict]:
    from rwalk.bench.adain_peer import adain_transfer
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.style import encode_style

    photo = reference_image("photo", size, size, 0)
    rows = []
    for name in styles:
        style = reference_image(name, size, size, 0)
        strip = [photo, style]
        rows.append({"style": name, "method": "photo (unchanged)", "seconds": 0.0, **measure(photo, photo, style)})
        start = time.perf_counter()
        out = adain_transfer(photo, style, alpha=1.0)
        seconds = time.perf_counter() - start
        rows.append({"style": name, "method": "AdaIN (alpha 1)", "seconds": seconds, **measure(out, photo, style)})
        strip.append(out)
        log.info("%s AdaIN: %s", name, rows[-1])
        for weight in weights:
            start = time.perf_counter()
            code = encode_style(style[None] * 2 - 1, "vgg19_adain", "gram")
            out = ((transfer(code, photo[None] * 2 - 1, weight)[0] + 1) / 2).clamp(0, 1)
            seconds = time.perf_counter() - start
            rows.append({"style": name, "method": f"energy walk, vgg19_adain, content_weight {weight:g}",
                         "seconds": seconds, **measure(out, photo, style)})
            strip.append(out)
            log.info("%s walk %g: %s", name, weight, rows[-1])
        save_strip(strip, OUT_PNG / f"transfer_{name}_{size}.png")
    return rows


def run_textures(size: int = 64) -> List[Dict]:
    from rwalk.bench.deep_features import gram_distances
    from rwalk.walk_core.references import reference_image
    from rwalk.walk_core.style import encode_style

    rows = []
    for name in ("stained_glass", "bricks"):
        ref = reference_image(name, 2 * size, 2 * size, 0)
        strip = [ref]
        grey = gram_distances(torch.full((3, size, size), 0.5), ref)
        rows.append({"style": name, "method": "grey start", "seconds": 0.0, "gram_mean": sum(grey.values()) / 5})
        for encoder in ("random", "vgg19_adain"):
            start = time.perf_counter()
            code = encode_style(ref[None] * 2 - 1, encoder, "gram")
            out = ((texture(code, size)[0] + 1) / 2).clamp(0, 1)
            seconds = time.perf_counter() - start
            grams = gram_distances(out, ref)
            rows.append({"style": name, "method": f"texture walk, {encoder}", "seconds": seconds,
                         "gram_mean": sum(grams.values()) / len(grams)})
            strip.append(torch.nn.functional.interpolate(out[None], scale_factor=2, mode="nearest")[0])
            log.info("%s texture %s: %s", name, encoder, rows[-1])
        save_strip(strip, OUT_PNG / f"texture_{name}_{size}.png")
    return rows


def markdown(rows: List[Dict], textures: List[Dict], size: int, threads: int) -> str:
    lines = ["# Photo style transfer: the style-energy walk against AdaIN", "",
             f"Made by `.venv/bin/python bench/style_transfer.py` ({size}x{size} px, {threads} torch thread(s), CPU). "
             "Gram = relative Frobenius distance of position-averaged Gram matrices of AdaIN's VGG-19 "
             "(bench/deep_features.py) to the style picture, mean over relu1_1..relu5_1 (lower = closer to the "
             "style); SSIM = luminance SSIM to the photo (walk_core.quality). Pictures: "
             "`bench/_out/style_transfer/transfer_<style>_<size>.png` (photo | style | AdaIN | walk per content "
             f"weight). The walk's default content_weight is {CONTENT_WEIGHT:g}. Seconds are wall time on a shared "
             "2-core machine (noisy; the walk's cost is fixed: 8 style gradients per call, 16 calls).", "",
             "| style | method | Gram mean | relu1_1 | relu2_1 | relu3_1 | relu4_1 | relu5_1 | SSIM | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        layers = " | ".join(f"{r[f'gram_relu{i}_1']:.3f}" for i in range(1, 6))
        lines.append(f"| {r['style']} | {r['method']} | {r['gram_mean']:.3f} | {layers} | {r['ssim']:.3f} | "
                     f"{r['seconds']:.1f} |")
    if textures:
        lines += ["", "## Texture walks (64 px, no content; reference at 128 px)", "",
                  "`bench/_out/style_transfer/texture_<style>_64.png` (reference | random | vgg19_adain).", "",
                  "| style | method | Gram mean | seconds |", "|---|---|---|---|"]
        lines += [f"| {r['style']} | {r['method']} | {r['gram_mean']:.3f} | {r['seconds']:.1f} |" for r in textures]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--styles", default="stained_glass,painting")
    parser.add_argument("--content-weights", default="10,20",
                        help=f"comma-separated (the walk's default is {CONTENT_WEIGHT:g})")
    parser.add_argument("--textures", action="store_true", help="also the 64 px texture walks")
    parser.add_argument("--skip-transfer", action="store_true",
                        help="keep the transfer rows of the last run (bench/_out/style_transfer/rows.json)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT_MD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import register_pack  # bench/run.py: the pack as ``rwalk``

    register_pack()
    torch.set_num_threads(args.threads)
    OUT_PNG.mkdir(parents=True, exist_ok=True)
    styles = [s for s in args.styles.split(",") if s]
    weights = [float(w) for w in args.content_weights.split(",") if w]
    saved = OUT_PNG / "rows.json"  # each part's rows, so one part can be rerun alone
    parts = json.loads(saved.read_text()) if saved.is_file() else {}
    if not args.skip_transfer:
        parts["transfer"] = {"size": args.size, "rows": run_transfer(args.size, styles, weights)}
    if args.textures:
        parts["textures"] = run_textures()
    write_atomic(saved, json.dumps(parts, indent=1))
    transfer_part = parts.get("transfer", {"size": args.size, "rows": []})
    write_atomic(args.out, markdown(transfer_part["rows"], parts.get("textures", []), transfer_part["size"],
                                    args.threads))
    log.info("wrote %s and %s", args.out, OUT_PNG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
