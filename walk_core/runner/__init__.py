"""The headless workflow runner: load ComfyUI workflows (editor or API format), check them against
a node table, and run them without ComfyUI.

The node table (class name -> node class) is given by the caller — the CLI passes the pack's
NODE_CLASS_MAPPINGS plus :data:`IO_NODE_CLASSES`. Every name below loads on first use (walk_core/lazy.py):
nodes that need one submodule (paths, spec) do not load the whole runner when ComfyUI imports the pack.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "NodeExecutionError": "errors", "WorkflowError": "errors",
    "RunResult": "execute", "run_workflow": "execute",
    "api_to_json": "graph", "detect_format": "graph", "load_workflow": "graph", "node_title": "graph",
    "normalize_api": "graph", "ui_to_api": "graph",
    "IO_NODE_CLASSES": "io_nodes", "IO_NODE_DISPLAY_NAMES": "io_nodes", "LoadImage": "io_nodes",
    "PreviewImage": "io_nodes", "SaveImage": "io_nodes",
    "apply_overrides": "overrides", "seed_overrides": "overrides", "set_seed": "overrides",
    "RunnerPaths": "paths", "current_paths": "paths", "use_paths": "paths",
    "read_png_text": "png", "read_png_workflow": "png", "save_png": "png",
    "LogProgress": "terminal", "TerminalProgress": "terminal", "progress_reporter": "terminal",
    "check_workflow": "validate", "plan_workflow": "validate",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
