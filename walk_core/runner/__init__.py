"""The headless workflow runner: load ComfyUI workflows (editor or API format), check them against
a node table, and run them without ComfyUI.

The node table (class name -> node class) is given by the caller — the CLI passes the pack's
NODE_CLASS_MAPPINGS plus :data:`IO_NODE_CLASSES`.
"""
from .errors import NodeExecutionError, WorkflowError
from .execute import RunResult, run_workflow
from .graph import api_to_json, detect_format, load_workflow, normalize_api, ui_to_api
from .io_nodes import IO_NODE_CLASSES, LoadImage, PreviewImage, SaveImage
from .overrides import apply_overrides, seed_overrides, set_seed
from .paths import RunnerPaths, current_paths, use_paths
from .png import read_png_text, read_png_workflow, save_png
from .terminal import TerminalProgress
from .validate import check_workflow, plan_workflow

__all__ = [
    "IO_NODE_CLASSES", "LoadImage", "NodeExecutionError", "PreviewImage", "RunResult",
    "RunnerPaths", "SaveImage", "TerminalProgress", "WorkflowError", "api_to_json",
    "apply_overrides", "check_workflow", "current_paths", "detect_format", "load_workflow",
    "normalize_api", "plan_workflow", "read_png_text", "read_png_workflow", "run_workflow",
    "save_png", "seed_overrides", "set_seed", "ui_to_api", "use_paths",
]
