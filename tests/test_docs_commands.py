"""Every command in README.md and docs/*.md runs as written.

The shell commands of the documents' code blocks (and inline code that starts like one) are read as a shell
would split them. Each must name files that exist and use the project's environment (never a bare ``python``);
``cli.py`` commands must parse with cli.py's own argparse parser, and ``bench/`` and ``scripts/`` programs must
accept the options shown (their own parsers, caught at their first ``parse_args`` in one subprocess, so nothing
runs). The relative links and pictures of the documents must exist too, anchors included.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_workflows import ROOT, load_cli

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
PLACEHOLDER = "__PLACEHOLDER__"
# Where the install instructions clone the pack (README: Install into ComfyUI): the repository root.
CLONE_FOLDER = "comfyui-random-walk/"
# Folders of the repository whose paths in a command must exist (other paths are the reader's own files).
REPO_FOLDERS = ("bench/", "docs/", "models/", "scripts/", "tests/", "walk_core/", "workflows/")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
# Reports the bench scripts write: their commands record runs as they were made (on a lent GPU machine, with
# that machine's Python), so they are checked for files and options but not for the interpreter.
GENERATED = {"BENCHMARKS.md"}


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    argv: tuple

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {' '.join(self.argv)}"


def _split(text: str) -> list:
    """A command line as the shell splits it, comments dropped; ``<...>`` placeholders kept as one token."""
    text = re.sub(r"<[^<>\n]*>", PLACEHOLDER, text)
    return shlex.split(text, comments=True)


def _command(doc: str, line: int, text: str):
    """The command on this line, without leading NAME=value assignments; None for what is not a command."""
    try:
        argv = _split(text)
    except ValueError:  # not shell (unbalanced quotes in prose or a diagram)
        return None
    while argv and ENV_ASSIGNMENT.match(argv[0]):
        argv = argv[1:]
    if not argv:
        return None
    head = argv[0]
    if head in ("bash", "cd", "git") or head.endswith(("python", "python3", "/pip")):
        return Command(doc, line, tuple(argv))
    return None


def commands_in(path: Path) -> list:
    """The shell commands of one document: every line of its shell code blocks (continuations joined), and
    inline code spans that start with the project's Python or one of its scripts."""
    text = path.read_text(encoding="utf-8")
    found, fence, pending, start = [], None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower()
            continue
        if fence is None or fence not in SHELL_FENCES:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        command = _command(path.name, start, pending + stripped)
        pending = ""
        if command:
            found.append(command)
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    for match in re.finditer(r"`([^`]+)`", outside):
        span = " ".join(match.group(1).split())
        if span.startswith((".venv/bin/python ", "bash scripts/")):
            command = _command(path.name, text.count("\n", 0, match.start()) + 1, span)
            if command:
                found.append(command)
    return found


COMMANDS = [command for doc in DOCS for command in commands_in(doc)]


def _repo_path(arg: str):
    """The repository file a command argument names, or None when it names none (the reader's own files)."""
    if PLACEHOLDER in arg or "$" in arg:
        return None
    if arg.startswith(CLONE_FOLDER):
        arg = arg[len(CLONE_FOLDER):]
    if arg in ("cli.py", "requirements.txt", "requirements-dev.txt") or arg.startswith(REPO_FOLDERS):
        return ROOT / arg
    return None


def _program(argv: tuple):
    """(interpreter, program path as written, its arguments) of a Python or bash command; None for others."""
    head = argv[0]
    if head == "bash":
        return head, argv[1], list(argv[2:])
    if head.endswith(("python", "python3")):
        if argv[1] == "-m":
            return head, "-m " + argv[2], list(argv[3:])
        return head, argv[1], list(argv[2:])
    return None


def _cli_problem(args: list):
    """None when cli.py's parser takes these arguments, else what it said."""
    parser = load_cli()._parser()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            parser.parse_args(args)
    except SystemExit as stop:
        if stop.code not in (0, None):
            return err.getvalue().strip() or f"exit {stop.code}"
    return None


def test_the_documents_show_commands():
    names = {command.doc for command in COMMANDS}
    assert {"README.md", "testing.md", "benchmarking.md", "runner.md"} <= names, names
    assert len(COMMANDS) >= 30, [str(c) for c in COMMANDS]


def test_every_command_names_files_that_exist_and_uses_the_projects_python():
    problems = []
    for command in COMMANDS:
        argv = command.argv
        if argv[0] in ("cd", "git"):
            continue
        if argv[0] in ("python", "python3", "pip") and command.doc not in GENERATED:
            problems.append(f"{command}: bare {argv[0]}; use .venv/bin/python")
        if argv[0].endswith("pip") or argv[1:3] == ("-m", "pip"):
            named = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-r", "--requirement")]
        else:
            program = _program(argv)
            named = [program[1]] if program and not program[1].startswith("-m ") else []
            named += [a for a in argv[2:] if _repo_path(a)]
        for arg in named:
            path = _repo_path(arg) or ROOT / arg
            if not path.exists():
                problems.append(f"{command}: {arg} does not exist")
    assert problems == []


def test_every_cli_command_parses_with_cli_py_parser():
    checked, problems = 0, []
    for command in COMMANDS:
        program = _program(command.argv) if command.argv[0] not in ("cd", "git") else None
        if program is None:
            continue
        _, name, args = program
        if name == "scripts/demo.sh":  # its arguments go to `cli.py run workflows/default.json`
            args = ["run", "workflows/default.json", *args]
        elif name != "cli.py":
            continue
        checked += 1
        said = _cli_problem(args)
        if said:
            problems.append(f"{command}: {said}")
    assert checked >= 10
    assert problems == []


# Runs each program up to its first parse_args (nothing else of it), then parses the documents' arguments
# with the parser it built. One interpreter for all: torch and the pack load once.
PARSE_ONLY = r"""
import argparse, contextlib, io, json, runpy, sys
from pathlib import Path

class Caught(Exception):
    pass

def capture(self, args=None, namespace=None):
    raise Caught(self)

results = []
for program, args in json.load(sys.stdin):
    path = Path(program).resolve()
    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    sys.argv, sys.path[0:0] = [str(path)], [str(path.parent)]
    said = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if path.name == "make_workflows.py":  # its own small parser: parse(args)
                namespace = runpy.run_path(str(path), run_name="docs_check")
                raise Caught(namespace["parse"])
            runpy.run_path(str(path), run_name="__main__")
        said = "finished without parsing its arguments"
    except Caught as caught:
        argparse.ArgumentParser.parse_args = original
        parser, err = caught.args[0], io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                parser(list(args)) if callable(parser) and not isinstance(parser, argparse.ArgumentParser) \
                    else parser.parse_args(list(args))
        except SystemExit as stop:
            if stop.code not in (0, None):
                said = err.getvalue().strip() or str(stop.code)
    except SystemExit as stop:
        said = f"exited ({stop.code}) before parsing its arguments"
    finally:
        argparse.ArgumentParser.parse_args = original
        del sys.path[0]
    results.append(said)
print(json.dumps(results))
"""


def test_every_bench_and_scripts_program_accepts_the_options_shown():
    jobs, shown = [], []
    for command in COMMANDS:
        program = _program(command.argv) if command.argv[0] not in ("cd", "git") else None
        if program is None or program[0] == "bash":
            continue
        name = program[1][len(CLONE_FOLDER):] if program[1].startswith(CLONE_FOLDER) else program[1]
        if not name.startswith(("bench/", "scripts/")) or not name.endswith(".py"):
            continue
        args = ["/path/to/ComfyUI" if "$" in a else a for a in program[2]]
        jobs.append([str(ROOT / name), args])
        shown.append(str(command))
    assert len(jobs) >= 10, shown
    done = subprocess.run([sys.executable, "-c", PARSE_ONLY], input=json.dumps(jobs), capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    problems = [f"{command}: {said}" for command, said in zip(shown, results) if said]
    assert problems == []


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} +(.+)$", text, flags=re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_and_picture_exists(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    assert broken == []


def test_the_readme_lists_every_example_workflow():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w-]+\.json)` \|", readme, flags=re.M))
    shipped = {p.name for p in (ROOT / "workflows").glob("*.json")}
    assert listed == shipped
