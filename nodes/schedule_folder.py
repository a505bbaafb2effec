"""Inside ComfyUI, learned schedules live in ``models/walk_schedules``: registered with the engine here (which may
not import ComfyUI), before the schedule input's choices are listed (nodes/inputs.py)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from ..walk_core.schedule_learning.files import SUBDIR, add_folder_provider


def comfy_schedule_dir() -> Optional[Path]:
    """ComfyUI's ``models/walk_schedules``; None outside ComfyUI.

    Asked when the pack loads (the schedule input's choices), so it only looks at a ``folder_paths`` ComfyUI has
    already imported -- it is, before any custom node loads -- and never tries the import itself."""
    folder_paths = sys.modules.get("folder_paths")
    if folder_paths is None or not hasattr(folder_paths, "models_dir"):
        return None
    return Path(folder_paths.models_dir) / SUBDIR


add_folder_provider(comfy_schedule_dir)
