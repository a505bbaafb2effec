"""Where own models live: the pack's ``models/trained/`` (models shipped with the pack), ComfyUI's
``models/walk_models/`` inside ComfyUI, and the runner's ``<output>/walk_models/`` headless. New models are saved
to the last of these (ComfyUI's folder inside ComfyUI, the output folder headless)."""
from __future__ import annotations

from pathlib import Path
from typing import List

from ..walk_core.runner.paths import check_name_length, current_paths, resolve_inside

PACK_MODELS = Path(__file__).resolve().parents[1] / "models" / "trained"
SUBDIR = "walk_models"
SUFFIX = ".safetensors"


def _comfy_models_dir():
    try:
        import folder_paths  # noqa: PLC0415  (only present inside ComfyUI)
    except ImportError:
        return None
    return Path(folder_paths.models_dir) / SUBDIR


def save_dir() -> Path:
    """The folder a trained model is written to."""
    comfy = _comfy_models_dir()
    return comfy if comfy is not None else current_paths().output_dir / SUBDIR


def model_dirs() -> List[Path]:
    """Folders searched for model files, in order (a name found in an earlier one wins)."""
    return [PACK_MODELS, save_dir()]


def model_names() -> List[str]:
    """The model files found (TargetDistributionCheckpoint's choices); never empty for the editor's sake."""
    from ..models.checkpoint import list_models  # noqa: PLC0415  (not at import: ComfyUI's start-up)

    return list_models(model_dirs()) or ["(no models: train one with Train Walk Model)"]


def find_model(name: str, who: str) -> Path:
    """The file a model name stands for; the error lists the folders looked in and the names there."""
    for folder in model_dirs():
        try:
            path = resolve_inside(folder, name, "models")
        except ValueError as e:
            raise ValueError(f"{who}: model_name {e}") from None
        if path.is_file():
            return path
    from ..models.checkpoint import list_models  # noqa: PLC0415

    found = list_models(model_dirs())
    raise FileNotFoundError(f"{who}: model_name={name!r} is not in {', '.join(str(d) for d in model_dirs())}; "
                            f"found: {', '.join(found) or 'none'} (train one with Train Walk Model or "
                            "`cli.py train`)")


def output_file(model_name: str, who: str) -> Path:
    """Where a model named ``model_name`` is written (``.safetensors`` added when missing); refuses a name that is
    empty, escapes the folder, or is too long for its training state (``.state.safetensors``) beside it."""
    from ..models.checkpoint import STATE_SUFFIX  # noqa: PLC0415  (not at import: ComfyUI's start-up)

    if not isinstance(model_name, str) or not model_name.strip():
        raise ValueError(f"{who}: model_name={model_name!r} is empty; expected a file name such as 'my_walk_model'")
    name = model_name.strip()
    if not name.endswith(SUFFIX):
        name += SUFFIX
    try:
        check_name_length(name, "models", room=len(STATE_SUFFIX) - len(SUFFIX))
        return resolve_inside(save_dir(), name, "models")
    except ValueError as e:
        raise ValueError(f"{who}: model_name {e}") from None
