"""``cli.py`` as a newcomer meets it: examples that run as written, and a clear word when torch is missing."""
from __future__ import annotations

import re
import subprocess
import sys

from test_workflows import ROOT, load_cli


def test_every_example_uses_the_projects_environment(capsys):
    cli = load_cli()
    for argv in (["--help"], ["train", "--help"]):
        try:
            cli.main(argv)
        except SystemExit as stop:
            assert stop.code == 0
        text = capsys.readouterr().out
        examples = [line.strip() for line in text.splitlines() if "cli.py " in line and not line.startswith("usage")]
        assert examples and all(line.startswith(".venv/bin/python cli.py ") for line in examples), examples
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        bare = [line for line in doc.read_text(encoding="utf-8").splitlines()
                if re.search(r"(^|[`\s])python3? cli\.py", line)]
        assert bare == [], f"{doc.name}: {bare}"


def test_a_python_without_torch_gets_a_clear_message_not_a_traceback():
    # -S: no site-packages, so this interpreter has the standard library only (as a system Python without torch)
    done = subprocess.run([sys.executable, "-S", str(ROOT / "cli.py"), "nodes"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"this Python ({sys.executable}) cannot import torch" in done.stderr
    assert ".venv/bin/python cli.py" in done.stderr
