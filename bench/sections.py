"""Sections of docs/BENCHMARKS.md written by other benchmark commands, kept when the main report is rewritten.

A section is the text between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``."""
from __future__ import annotations

import re
from pathlib import Path

_PATTERN = re.compile(r"<!-- section:(?P<name>[\w-]+) -->.*?<!-- /section:(?P=name) -->\n?", re.S)


def wrap(name: str, text: str) -> str:
    return f"<!-- section:{name} -->\n{text.rstrip()}\n<!-- /section:{name} -->\n"


def kept_sections(path: Path) -> str:
    """Every marked section of the file at ``path`` ('' when there is none or no file)."""
    if not path.is_file():
        return ""
    return "".join(m.group(0) for m in _PATTERN.finditer(path.read_text(encoding="utf-8")))


def replace_section(path: Path, name: str, text: str) -> None:
    """Write ``text`` as section ``name`` of the file: in place when present, else appended."""
    body = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    block = wrap(name, text)
    pattern = re.compile(rf"<!-- section:{name} -->.*?<!-- /section:{name} -->\n?", re.S)
    body = pattern.sub(lambda _: block, body) if pattern.search(body) else body.rstrip() + "\n\n" + block
    path.write_text(body, encoding="utf-8")
