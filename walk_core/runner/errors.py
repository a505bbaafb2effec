"""Errors of the headless runner: each names the node id, its class and the input."""
from __future__ import annotations

from typing import Optional, Sequence


def where(node_id: Optional[str], class_type: Optional[str], input_name: Optional[str] = None) -> str:
    """``node 5 (WalkSampler), input 'steps'`` — the prefix every runner error starts with."""
    parts = []
    if node_id is not None:
        parts.append(f"node {node_id}" + (f" ({class_type})" if class_type else ""))
    elif class_type:
        parts.append(class_type)
    if input_name:
        parts.append(f"input {input_name!r}")
    return ", ".join(parts)


class WorkflowError(ValueError):
    """A bad workflow (format, graph, values), found before any node runs.

    ``others`` holds further problems found in the same check, summarised in the message.
    """

    def __init__(
        self,
        node_id: Optional[str],
        class_type: Optional[str],
        input_name: Optional[str],
        message: str,
        others: Sequence["WorkflowError"] = (),
    ):
        self.node_id = None if node_id is None else str(node_id)
        self.class_type = class_type
        self.input_name = input_name
        self.message = message
        self.others = tuple(others)
        prefix = where(self.node_id, class_type, input_name)
        text = f"{prefix}: {message}" if prefix else message
        if self.others:
            more = "\n".join(f"  - {e.brief()}" for e in self.others[:10])
            extra = len(self.others) - 10
            text += f"\n{len(self.others)} more problem(s) in this workflow:\n{more}"
            if extra > 0:
                text += f"\n  ... and {extra} more"
        super().__init__(text)

    def brief(self) -> str:
        """The message of this error alone, without the summary of the others."""
        prefix = where(self.node_id, self.class_type, self.input_name)
        return f"{prefix}: {self.message}" if prefix else self.message

    def with_others(self, others: Sequence["WorkflowError"]) -> "WorkflowError":
        return WorkflowError(self.node_id, self.class_type, self.input_name, self.message, others)


class NodeExecutionError(RuntimeError):
    """A node raised while running; the original exception is kept as ``__cause__``."""

    def __init__(self, node_id: str, class_type: str, message: str):
        self.node_id = str(node_id)
        self.class_type = class_type
        self.message = message
        super().__init__(f"{where(self.node_id, class_type)}: {message}")


def unknown_classes_error(unknown: "dict[str, list[str]]", known: Sequence[str]) -> WorkflowError:
    """ONE error listing every unknown class (with its node ids) and the classes available here.

    ``unknown`` maps class name -> node ids using it, in workflow order.
    """
    listed = "; ".join(
        f"{name} (node{'s' if len(ids) > 1 else ''} {', '.join(ids)})" for name, ids in unknown.items()
    )
    names = sorted(known)
    available = ", ".join(names[:80]) + (f", ... ({len(names)} in all)" if len(names) > 80 else "")
    first_class, first_ids = next(iter(unknown.items()))
    message = (
        f"this workflow uses {len(unknown)} node class(es) the headless runner does not have: {listed}. "
        "They are not part of this pack — nodes such as checkpoint loaders and text encoders need "
        "ComfyUI: run it against a ComfyUI server with `cli.py run WORKFLOW --server http://127.0.0.1:8188`, "
        "open it in the ComfyUI editor, or replace those nodes with this pack's nodes. "
        f"Node classes available here: {available or '(none)'}"
    )
    return WorkflowError(first_ids[0], first_class, None, message)
