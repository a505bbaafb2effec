"""Reading ComfyUI's start-up log for one custom node pack's import failures.

ComfyUI logs a pack that fails to load as ``Cannot import <path> module for custom nodes: <error>``, as
``<seconds> seconds (IMPORT FAILED): <path>`` in its import-time summary, or as ``Skip <path> module for custom
nodes ...`` when it has no node table. Its own optional nodes that fail (comfy_extras/nodes_audio.py without
torchaudio, say) appear as ``Cannot import .../comfy_extras/...`` and ``IMPORT FAILED: nodes_audio.py``: they
are not the pack's business and are ignored.
"""
from __future__ import annotations

import re
from typing import List

MARKERS = ("IMPORT FAILED", "Cannot import", "Skip ")


def pack_import_failures(log_text: str, pack_folder: str) -> List[str]:
    """The log lines saying that ``custom_nodes/<pack_folder>`` failed to load (none: it loaded)."""
    path = re.compile(r"custom_nodes[\\/]" + re.escape(pack_folder) + r"(?=$|[\s\\/:])")
    return [line for line in log_text.splitlines()
            if path.search(line) and any(marker in line for marker in MARKERS)]
