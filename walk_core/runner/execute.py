"""Running a validated workflow: each needed node once, dependencies first, nothing cached."""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

from ..progress import use_progress
from .errors import NodeExecutionError, WorkflowError
from .graph import normalize_api
from .overrides import apply_overrides
from .paths import RunnerPaths, use_paths
from .shape import check_ui_shape
from .spec import hidden_inputs, input_specs, return_types
from .terminal import progress_reporter
from .validate import is_link, plan_workflow, unwrap

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced.

    ``outputs``: node id -> tuple of its outputs; ``ui``: node id -> the "ui" dict it returned;
    ``saved``: files written by the nodes (the images in their "ui" dicts), in run order;
    ``order``: the node ids in the order they ran; ``prompt``: the API prompt that ran.
    """

    outputs: Dict[str, tuple] = field(default_factory=dict)
    ui: Dict[str, dict] = field(default_factory=dict)
    saved: List[Path] = field(default_factory=list)
    order: List[str] = field(default_factory=list)
    prompt: Dict[str, Any] = field(default_factory=dict)


def _coerce(spec, value: Any) -> Any:
    """Literal values as the node expects them (a JSON 5.0 for an INT input becomes 5)."""
    if spec.type == "INT" and isinstance(value, float) and value.is_integer():
        return int(value)
    if spec.type == "FLOAT" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _node_kwargs(node_id: str, node: Mapping[str, Any], cls: type, outputs: Mapping[str, tuple],
                 hidden_values: Mapping[str, Any]) -> Dict[str, Any]:
    specs = input_specs(cls)
    kwargs: Dict[str, Any] = {}
    for name, value in (node.get("inputs") or {}).items():
        if name not in specs:
            continue
        if is_link(value):
            kwargs[name] = outputs[str(value[0])][value[1]]
        else:
            kwargs[name] = _coerce(specs[name], unwrap(value))
    for name, kind in hidden_inputs(cls).items():
        if kind == "UNIQUE_ID":
            kwargs[name] = node_id
        else:
            kwargs[name] = hidden_values.get(kind)
    return kwargs


def _split_result(node_id: str, class_type: str, cls: type, returned: Any):
    """(outputs tuple, ui dict or None) from what a node's function returned."""
    ui = None
    if isinstance(returned, dict):
        if "expand" in returned:
            raise NodeExecutionError(node_id, class_type, "node expansion ('expand') is not supported headless")
        ui = returned.get("ui")
        returned = returned.get("result", ())
    if returned is None:
        returned = ()
    if not isinstance(returned, (tuple, list)):
        raise NodeExecutionError(node_id, class_type,
                                 f"returned {type(returned).__name__}; a node must return a tuple of its outputs")
    expected = len(return_types(cls))
    if len(returned) < expected:
        raise NodeExecutionError(node_id, class_type,
                                 f"returned {len(returned)} output(s); RETURN_TYPES declares {expected}")
    return tuple(returned), ui


def _saved_files(ui: Mapping[str, Any], paths: RunnerPaths) -> List[Path]:
    files = []
    for entry in (ui.get("images") or []) if isinstance(ui, Mapping) else []:
        if isinstance(entry, Mapping) and entry.get("filename") and entry.get("type") in ("output", "temp", "input"):
            files.append(paths.folder(entry["type"]) / (entry.get("subfolder") or "") / entry["filename"])
    return files


def run_workflow(
    api_prompt: Mapping[str, Any],
    node_classes: Mapping[str, type],
    *,
    ui_workflow: Optional[dict] = None,
    overrides: Optional[Iterable[str]] = None,
    progress: bool = True,
    paths: Optional[RunnerPaths] = None,
) -> RunResult:
    """Validate, then run the nodes the output nodes need, dependencies first, each once.

    ``overrides`` are ``"NODE.INPUT=VALUE"`` texts (see :func:`apply_overrides`); they are also
    written into a copy of ``ui_workflow``, which saved PNGs embed as their "workflow" chunk.
    ``progress`` reports each node's steps: a bar on stderr when it is a terminal, else INFO log lines
    every few seconds with the count, elapsed time and ETA (terminal.py). A node's exception is
    re-raised as :class:`NodeExecutionError` naming the node (the original is its ``__cause__``).
    """
    paths = paths or RunnerPaths.default()
    if ui_workflow is not None:
        check_ui_shape(ui_workflow, "ui_workflow")  # before deepcopy, which recurses once per level
    ui = copy.deepcopy(ui_workflow) if ui_workflow is not None else None
    prompt = normalize_api(api_prompt) if isinstance(api_prompt, Mapping) else api_prompt
    if overrides:
        with use_paths(paths):  # choices that list folders (LoadImage's image) list this run's folders
            prompt = apply_overrides(prompt, list(overrides), node_classes, ui_workflow=ui)
    order = plan_workflow(prompt, node_classes, paths=paths)
    hidden_values = {"PROMPT": prompt, "EXTRA_PNGINFO": {"workflow": ui} if ui is not None else None}
    result = RunResult(prompt=prompt)
    with use_paths(paths):
        for node_id in order:
            class_type = prompt[node_id]["class_type"]
            cls = node_classes[class_type]
            kwargs = _node_kwargs(node_id, prompt[node_id], cls, result.outputs, hidden_values)
            function = getattr(cls(), getattr(cls, "FUNCTION", ""), None)
            if not callable(function):
                raise NodeExecutionError(node_id, class_type, f"FUNCTION {getattr(cls, 'FUNCTION', None)!r} is not a method of the class")
            log.info("node %s (%s): running", node_id, class_type)
            started = time.perf_counter()
            bar = progress_reporter(f"node {node_id} ({class_type})", enabled=progress)
            try:
                with use_progress(bar):
                    returned = function(**kwargs)
            except (NodeExecutionError, WorkflowError):
                raise
            except Exception as e:
                text = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
                raise NodeExecutionError(node_id, class_type, text) from e
            finally:
                bar.close()
            outputs, node_ui = _split_result(node_id, class_type, cls, returned)
            result.outputs[node_id] = outputs
            result.order.append(node_id)
            if node_ui is not None:
                result.ui[node_id] = node_ui
                result.saved.extend(_saved_files(node_ui, paths))
            log.info("node %s (%s): done in %.2fs", node_id, class_type, time.perf_counter() - started)
    return result
