"""Running a workflow on a ComfyUI server given by URL (for graphs that need ComfyUI-only nodes).

Speaks ComfyUI's HTTP API with the standard library: POST /prompt, poll GET /history/<id>, then fetch
each output image with GET /view into the local output folder.
"""
from __future__ import annotations

import http.client
import itertools
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..atomic_files import write_new
from .errors import NodeExecutionError, WorkflowError
from .paths import resolve_inside

log = logging.getLogger(__name__)

#: what a server that stopped answering raises from urllib (refused, reset, timed out, cut short)
UNREACHABLE = (urllib.error.URLError, OSError, http.client.HTTPException)


class ServerUnreachable(WorkflowError):
    """The ComfyUI server at a URL did not answer (a sweep moves its jobs to the other servers)."""

    def __init__(self, server: str, error: BaseException):
        self.server = server
        super().__init__(None, None, None, f"--server {server!r}: cannot reach ComfyUI ({error})")


def _request(url: str, data: Optional[dict] = None, timeout: float = 30.0) -> bytes:
    body = None if data is None else json.dumps(data).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310  (user-given server URL)
        return response.read()


def _as_input_types(inputs: dict) -> dict:
    """object_info inputs -> INPUT_TYPES; new-style ("COMBO", {"options": [...]}) becomes a choice list."""
    out = {}
    for section, entries in inputs.items():
        if not isinstance(entries, dict):
            continue
        out[section] = {}
        for name, decl in entries.items():
            kind, options = (decl + [{}])[:2] if isinstance(decl, list) else (decl, {})
            if kind == "COMBO" and isinstance(options, dict):
                kind = list(options.get("options", []))
            out[section][name] = (kind, options if isinstance(options, dict) else {})
    return out


def server_node_table(server: str) -> dict:
    """Stand-in classes for every node the server has (from GET /object_info), enough to convert and
    check a UI workflow locally; running them happens on the server."""
    return server_nodes(server)[0]


def server_nodes(server: str) -> Tuple[dict, Dict[str, str]]:
    """:func:`server_node_table` and the server's display name of each node class (the editor's titles)."""
    try:
        info = json.loads(_request(f"{server.rstrip('/')}/object_info"))
    except UNREACHABLE as e:
        raise ServerUnreachable(server, e) from e
    return _stand_ins(info), {name: str(node.get("display_name") or name) for name, node in info.items()}


def _stand_ins(info: dict) -> dict:
    table = {}
    for name, node in info.items():
        declared = _as_input_types(node.get("input", {}))
        table[name] = type(name, (), {
            "INPUT_TYPES": classmethod(lambda cls, d=declared: d),
            "RETURN_TYPES": tuple(t if isinstance(t, str) else "COMBO" for t in node.get("output", [])),
            "RETURN_NAMES": tuple(node.get("output_name") or ()) or None,
            "OUTPUT_NODE": bool(node.get("output_node")),
            "FUNCTION": "remote",
            "CATEGORY": node.get("category", ""),
        })
    return table


def run_on_server(api_prompt: dict, server: str, output_dir: Path, *, ui_workflow: Optional[dict] = None,
                  timeout: float = 3600.0, poll: float = 0.5) -> List[Path]:
    """Queue ``api_prompt`` on the ComfyUI server at ``server``, wait for it, and download its images.

    Returns the local paths written under ``output_dir``. ComfyUI's own validation errors come back as one
    WorkflowError naming the node; a failed execution as a NodeExecutionError; a server that does not answer
    as a :class:`ServerUnreachable`.
    """
    prompt_id = queue_prompt(api_prompt, server, ui_workflow=ui_workflow)
    entry = wait_for(prompt_id, server, timeout=timeout, poll=poll)
    saved = []
    for name, data in download_images(entry, server):
        target = resolve_inside(Path(output_dir), name, "output")
        # a local file of that name is never overwritten: the download gets _2, _3, ... instead
        others = (target.with_name(f"{target.stem}_{n}{target.suffix}") for n in itertools.count(2))
        saved.append(write_new(itertools.chain((target,), others), lambda temp, data=data: temp.write_bytes(data)))
    return saved


def _base(server: str) -> str:
    base = server.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise WorkflowError(None, None, None, f"--server {server!r}: expected an http:// or https:// URL")
    return base


def queue_prompt(api_prompt: dict, server: str, *, ui_workflow: Optional[dict] = None) -> str:
    """POST the prompt to the server's queue; returns its prompt id. A refusal names the node and input."""
    base = _base(server)
    extra = {"extra_pnginfo": {"workflow": ui_workflow}} if ui_workflow else {}
    try:
        answer = json.loads(_request(f"{base}/prompt", {"prompt": api_prompt, "client_id": "rwalk-cli", **extra}))
    except urllib.error.HTTPError as e:
        if e.code >= 500:  # the server broke, not the workflow
            raise ServerUnreachable(server, e) from e
        detail = json.loads(e.read() or b"{}")
        node_errors = detail.get("node_errors") or {}
        for node_id, err in node_errors.items():
            first = (err.get("errors") or [{}])[0]
            raise WorkflowError(node_id, err.get("class_type"), (first.get("extra_info") or {}).get("input_name"),
                                f"the ComfyUI server refused the workflow: {first.get('message')}: {first.get('details')}")
        raise WorkflowError(None, None, None, f"the ComfyUI server refused the workflow: {detail.get('error', detail)}")
    except UNREACHABLE as e:
        raise ServerUnreachable(server, e) from e
    log.info("queued on %s as %s", base, answer["prompt_id"])
    return answer["prompt_id"]


def wait_for(prompt_id: str, server: str, *, timeout: float = 3600.0, poll: float = 0.5) -> dict:
    """Poll the server's history until the prompt has finished; its history entry, or the node's error."""
    base = _base(server)
    deadline = time.monotonic() + timeout
    while True:
        try:
            history = json.loads(_request(f"{base}/history/{prompt_id}"))
        except UNREACHABLE as e:
            raise ServerUnreachable(server, e) from e
        if prompt_id in history:
            entry = history[prompt_id]
            break
        if time.monotonic() > deadline:
            raise NodeExecutionError(None, None, f"the ComfyUI server did not finish within {timeout:.0f}s")
        time.sleep(poll)
    status = entry.get("status", {})
    if status.get("status_str") != "success":
        messages = [m for m in status.get("messages", []) if m and m[0] == "execution_error"]
        info = messages[0][1] if messages else {}
        raise NodeExecutionError(info.get("node_id"), info.get("node_type"),
                                 f"failed on the ComfyUI server: {info.get('exception_message', status)}")
    return entry


def download_images(entry: dict, server: str, kinds: Tuple[str, ...] = ("output", "temp", "input")
                    ) -> List[Tuple[str, bytes]]:
    """``(subfolder/filename, bytes)`` of every image of a finished history entry whose type is in ``kinds``."""
    base = _base(server)
    images = []
    for node_output in entry.get("outputs", {}).values():
        for image in node_output.get("images", []):
            if image.get("type", "output") not in kinds:
                continue
            query = urllib.parse.urlencode({k: image.get(k, "") for k in ("filename", "subfolder", "type")})
            try:
                data = _request(f"{base}/view?{query}")
            except UNREACHABLE as e:
                raise ServerUnreachable(server, e) from e
            images.append((str(Path(image.get("subfolder", "")) / image["filename"]), data))
    return images


def cancel_prompt(prompt_id: str, server: str) -> None:
    """Take the prompt off the server's queue, and interrupt it if it is running (best effort)."""
    base = _base(server)
    for path, body in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
        try:
            _request(base + path, body, timeout=5.0)
        except UNREACHABLE as e:
            log.debug("%s%s: %s", base, path, e)
