"""k-diffusion (Katherine Crowson, PyPI ``k-diffusion``) as a peer: only its ``sampling.py``.

The installed package's ``__init__`` imports its training stack (accelerate, clip, kornia, wandb, ...), so
it is never imported: ``sampling.py`` and the ``utils.py`` it needs are executed from the installed folder as
``_rwalk_peer_kd.sampling`` / ``_rwalk_peer_kd.utils``. ``sampling.py`` itself needs scipy, torchsde,
torchdiffeq and tqdm (bench/requirements.txt). ``utils.py`` imports ``torchvision.transforms.functional`` at
module level but the samplers never call it; when torchvision is not installed, an empty stand-in module
serves that one import while the file loads (so torchvision, which must match torch's exact version, is not
a requirement).
"""
from __future__ import annotations

import importlib.util
import logging
import types
from pathlib import Path
from typing import Optional

from .module_loader import load_file, stand_ins, stub_module, synthetic_package

log = logging.getLogger(__name__)

PACKAGE = "_rwalk_peer_kd"
NEEDS = ("scipy", "torchsde", "torchdiffeq", "tqdm")
_loaded: Optional[types.ModuleType] = None


def kdiffusion_folder() -> Optional[Path]:
    """The installed k_diffusion package folder, found without importing it (None when not installed)."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _torchvision_stand_in() -> dict:
    if importlib.util.find_spec("torchvision") is not None:
        return {}
    functional = stub_module("torchvision.transforms.functional")
    transforms = stub_module("torchvision.transforms", functional=functional)
    return {"torchvision": stub_module("torchvision", transforms=transforms),
            "torchvision.transforms": transforms, "torchvision.transforms.functional": functional}


def missing_modules() -> list:
    """The modules sampling.py needs that are not installed."""
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def load_kdiffusion_sampling() -> types.ModuleType:
    """k-diffusion's ``sampling`` module (loaded once). Raises ImportError naming what is missing."""
    global _loaded
    if _loaded is not None:
        return _loaded
    folder = kdiffusion_folder()
    if folder is None:
        raise ImportError("k-diffusion is not installed (pip install --no-deps -r bench/requirements.txt)")
    missing = missing_modules()
    if missing:
        raise ImportError(f"k-diffusion's sampling.py needs {', '.join(missing)}, not installed "
                          "(pip install --no-deps -r bench/requirements.txt)")
    synthetic_package(PACKAGE, folder)
    with stand_ins(_torchvision_stand_in()):
        load_file(f"{PACKAGE}.utils", folder / "utils.py")
    _loaded = load_file(f"{PACKAGE}.sampling", folder / "sampling.py")
    log.info("peers: k-diffusion sampling loaded from %s", folder)
    return _loaded
