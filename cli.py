#!/usr/bin/env python3
"""Run this pack's ComfyUI workflows without ComfyUI.

The pack is loaded under the fixed module name ``rwalk`` whatever its folder is called, and its
nodes plus the runner's headless LoadImage / SaveImage / PreviewImage form the node table.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent
PACKAGE = "rwalk"
log = logging.getLogger(PACKAGE + ".cli")

EXAMPLES = """\
examples:
  .venv/bin/python cli.py run workflows/default.json                  run it; prints each saved PNG path
  .venv/bin/python cli.py run wf.json --set 5.steps=4 --seed 7        change inputs before running
  .venv/bin/python cli.py run wf.json --set WalkSampler.steps=4       a node may be named by its class or title
  .venv/bin/python cli.py run output/ComfyUI_00001_.png               run the workflow embedded in a PNG
  .venv/bin/python cli.py run wf.json --walk-picture                  also draw each walk: sigma, guidance, x0 frames
  .venv/bin/python cli.py check wf.json                               validate only: "ok: N nodes"
  .venv/bin/python cli.py run wf.json --max-memory 8                  refuse walks estimated to need over 8 GB
  .venv/bin/python cli.py convert wf.json -o wf_api.json              editor (UI) format -> API format
  .venv/bin/python cli.py nodes                                       list the node classes available here
  .venv/bin/python cli.py sweep wf.json --vary WalkSampler.steps=10:50:10 --seeds 0-3 --output-dir sweeps/a
                                                                      many runs, a contact sheet (see sweep --help)
  .venv/bin/python cli.py train --references painting --out m.safetensors   train an own model (see train --help)
  .venv/bin/python cli.py learn-schedule --model m.safetensors --nfe 8 --name m_nfe8   learn a schedule (learned:m_nfe8)

Workflows may be saved from the ComfyUI editor (UI format) or exported as API format. Files that
a workflow names are looked up in --input-dir and written to --output-dir. Exit status: 0 ok,
2 a problem with the workflow (nothing ran), 1 a node failed while running.
"""


def _package() -> ModuleType:
    """The pack as module ``rwalk`` (its ``__init__`` is run only by :func:`load_pack`)."""
    module = sys.modules.get(PACKAGE)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(PACKAGE, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    return module


def load_runner() -> ModuleType:
    """``rwalk.walk_core.runner`` (imports the engine, not the nodes)."""
    _package()
    return importlib.import_module(PACKAGE + ".walk_core.runner")


def load_pack() -> ModuleType:
    """The pack with its ``__init__`` run (NODE_CLASS_MAPPINGS)."""
    module = _package()
    if not hasattr(module, "NODE_CLASS_MAPPINGS"):
        init = ROOT / "__init__.py"
        if not init.is_file():
            raise RuntimeError(f"the pack's {init} is missing; cannot load its nodes")
        spec = module.__spec__ or importlib.util.spec_from_file_location(
            PACKAGE, init, submodule_search_locations=[str(ROOT)])
        if module.__spec__ is None:
            module.__spec__ = spec
        spec.loader.exec_module(module)
    return module


def node_table() -> dict:
    """The pack's NODE_CLASS_MAPPINGS plus the runner's headless image IO nodes."""
    table = dict(load_pack().NODE_CLASS_MAPPINGS)
    for name, cls in load_runner().IO_NODE_CLASSES.items():
        if name in table:
            log.warning("NODE_CLASS_MAPPINGS has %s, which would shadow ComfyUI's; using the headless one", name)
        table[name] = cls
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cli.py", description="Run, check and convert ComfyUI workflows of this pack headless.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr, no progress")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of failing nodes")
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument("workflow", help="workflow: .json (editor or API format), a PNG with an embedded "
                        "workflow, or - for stdin")
    values = argparse.ArgumentParser(add_help=False)
    values.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="set an input before running, e.g. --set 5.steps=20 (repeatable; NODE is a "
                        "node id, or a class name or title used by one node only)")
    values.add_argument("--seed", type=int, help="set every seed / noise_seed input to this value")
    values.add_argument("--max-memory", type=float, metavar="GB", help="the most memory one walk may be "
                        "estimated to need (default: env WALK_MAX_MEMORY_GB, else 16 or 3/4 of this machine's "
                        "memory); larger walks are refused before they start (README: Limits)")
    folders = argparse.ArgumentParser(add_help=False)
    folders.add_argument("--input-dir", type=Path, help="folder LoadImage reads from (default: ./input)")
    folders.add_argument("--output-dir", type=Path, help="folder SaveImage writes to (default: ./output)")

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    run = commands.add_parser("run", parents=[source, values, folders, common],
                              help="run a workflow; prints the saved PNG paths, one per line")
    run.add_argument("--no-progress", action="store_true", help="no progress (a bar on a terminal, else "
                     "a log line every 10 s with steps, elapsed time and ETA)")
    run.add_argument("--walk-picture", action="store_true", help="also draw each WalkSampler's walk (sigma per "
                     "step, each guidance term's change, an x0 filmstrip) as walk_<node>_NNNNN_.png in --output-dir "
                     "(set the sampler's trajectory_every for more frames)")
    run.add_argument("--server", metavar="URL", help="run on this ComfyUI server instead (e.g. "
                     "http://127.0.0.1:8188), for workflows that need ComfyUI-only nodes; the images are "
                     "downloaded into --output-dir")
    commands.add_parser("check", parents=[source, values, folders, common],
                        help="validate a workflow without running anything")
    convert = commands.add_parser("convert", parents=[source, common],
                                  help="convert an editor (UI) workflow to API format JSON")
    convert.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    commands.add_parser("nodes", parents=[common], help="list the node classes available headless")
    sweeper = _sweep_module("cli_args")
    sweep = commands.add_parser("sweep", parents=[source, values, common], help="run a workflow many times with "
                                "inputs varied (--vary, --seeds); pictures, sweep.jsonl and XY contact sheets",
                                epilog=sweeper.EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweeper.add_arguments(sweep)
    trainer = _train_module("cli_train")
    train = commands.add_parser("train", parents=[common], help="train an own model (EDM U-Net) on pictures",
                                epilog=trainer.EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    trainer.add_arguments(train)
    learner = _train_module("cli_schedule")
    learn = commands.add_parser("learn-schedule", parents=[common], help="learn a few-step schedule for a walk, NFE "
                                "and target (saved as learned:<name>)", epilog=learner.EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    learner.add_arguments(learn)
    return parser


def _train_module(name: str) -> ModuleType:
    _package()
    return importlib.import_module(f"{PACKAGE}.models.{name}")


def _sweep_module(name: str) -> ModuleType:
    _package()
    return importlib.import_module(f"{PACKAGE}.walk_core.sweep.{name}")


def _paths(runner: ModuleType, args) -> object:
    base = runner.RunnerPaths.default()
    return runner.RunnerPaths(args.input_dir or base.input_dir, args.output_dir or base.output_dir)


def display_names(runner: ModuleType) -> dict:
    """The editor's default node titles (``_meta.title``): ComfyUI's for the image IO nodes, and the pack's
    NODE_DISPLAY_NAME_MAPPINGS once its nodes are loaded."""
    pack = sys.modules.get(PACKAGE)
    return {**runner.IO_NODE_DISPLAY_NAMES, **getattr(pack, "NODE_DISPLAY_NAME_MAPPINGS", {})}


def _load(runner: ModuleType, args, table: Mapping[str, type], names: Optional[Mapping[str, str]] = None):
    source = sys.stdin.read() if args.workflow == "-" else args.workflow
    if args.workflow == "-" and not source.strip():
        raise runner.WorkflowError(None, None, None, "no workflow on stdin")
    paths = _paths(runner, args) if hasattr(args, "input_dir") else None
    with runner.use_paths(paths):  # LoadImage's choices come from the input folder
        return runner.load_workflow(source, table, display_names(runner) if names is None else names)


def _overrides(runner: ModuleType, args, api, table) -> list:
    found = runner.seed_overrides(api, args.seed, table) if args.seed is not None else []
    return found + list(args.set)  # --set wins over --seed


def _cmd_run_remote(runner, args) -> int:
    from importlib import import_module

    remote = import_module(runner.__name__ + ".remote")
    table, names = remote.server_nodes(args.server)
    api, ui = _load(runner, args, table, names)
    overrides = _overrides(runner, args, api, table)
    if overrides:
        api = runner.apply_overrides(api, overrides, table)
    for path in remote.run_on_server(api, args.server, _paths(runner, args).output_dir, ui_workflow=ui):
        print(path)
    return 0


def _walk_pictures(runner, args, result) -> list:
    """``run --walk-picture``: the drawings of the run's walks, beside its pictures."""
    plot = importlib.import_module(PACKAGE + ".walk_core.trajectory_plot")
    written = plot.write_walk_pictures(result.outputs, _paths(runner, args).output_dir)
    if not written:
        log.warning("--walk-picture: no WalkSampler ran, so there is no walk to draw")
    return written


def _cmd_run(runner, args, table) -> int:
    if args.server:
        if args.walk_picture:
            raise runner.WorkflowError(None, None, None, "--walk-picture draws walks run here; it does not work "
                                       "with --server (connect Walk Picture to a Save Image node instead)")
        return _cmd_run_remote(runner, args)
    api, ui = _load(runner, args, table)
    result = runner.run_workflow(api, table, ui_workflow=ui, overrides=_overrides(runner, args, api, table),
                                 progress=not (args.quiet or args.no_progress), paths=_paths(runner, args))
    for path in result.saved + (_walk_pictures(runner, args, result) if args.walk_picture else []):
        print(path)
    if not result.saved:
        log.warning("the workflow ran but saved no images")
    return 0


def _cmd_check(runner, args, table) -> int:
    api, _ = _load(runner, args, table)
    overrides = _overrides(runner, args, api, table)
    paths = _paths(runner, args)
    if overrides:
        with runner.use_paths(paths):
            api = runner.apply_overrides(api, overrides, table)
    order = runner.plan_workflow(api, table, paths=paths)
    log.info("%d of the %d nodes would run: %s", len(order), len(api), ", ".join(order))
    print(f"ok: {len(api)} nodes")
    return 0


def _atomic_files() -> ModuleType:
    _package()
    return importlib.import_module(PACKAGE + ".walk_core.atomic_files")


def _check_output_file(runner, path: Path) -> None:
    """``convert -o``: a file name in an existing folder (checked before converting; exit 2 otherwise)."""
    try:
        if path.is_dir():
            raise runner.WorkflowError(None, None, None, f"-o {str(path)!r} is a folder; expected a file name such "
                                       f"as {str(path / 'workflow_api.json')!r}")
        problem = _atomic_files().not_regular_file(path)
        if problem:
            raise runner.WorkflowError(None, None, None, f"-o {str(path)!r} {problem}")
        folder = path.parent
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise runner.WorkflowError(None, None, None, f"-o {str(path)!r}: the folder {str(folder)!r} {what}; "
                                       "expected a file name in an existing folder (create the folder first)")
    except OSError as error:  # e.g. a name too long for the file system
        raise runner.WorkflowError(None, None, None, f"-o {str(path)!r} cannot be a file name here "
                                   f"({error.strerror or error})") from None


def _limits(runner, args):
    """The run's resource limits (walk_core.limits): the environment's, with --max-memory; exit 2 when bad."""
    limits = importlib.import_module(PACKAGE + ".walk_core.limits")
    try:
        current = limits.current_limits()
    except limits.LimitError as e:
        raise runner.WorkflowError(None, None, None, str(e)) from None
    memory = getattr(args, "max_memory", None)
    if memory is not None and not 0 < memory < float("inf"):
        raise runner.WorkflowError(None, None, None, f"--max-memory {memory}: expected a positive number of GB")
    return limits.use_limits(current, **({"max_memory_gb": memory} if memory is not None else {}))


def _cmd_convert(runner, args, table) -> int:
    if args.output:
        _check_output_file(runner, args.output)
    api, ui = _load(runner, args, table)
    if ui is None:
        log.warning("the workflow is already in API format; writing it unchanged")
    text = runner.api_to_json(api)
    if args.output:
        try:  # atomic: the file is the whole new text or what it was before, never half of it
            _atomic_files().write_text_replace(args.output, text)
        except OSError as error:
            raise runner.WorkflowError(None, None, None, f"-o {str(args.output)!r}: cannot write it "
                                       f"({error.strerror or error})") from None
        log.info("wrote %s", args.output)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_nodes(runner, args, table) -> int:
    from importlib import import_module

    spec = import_module(runner.__name__ + ".spec")
    for name in sorted(table):
        cls = table[name]
        inputs = ", ".join(f"{n}: {s.type}" for n, s in spec.input_specs(cls).items())
        outputs = ", ".join(t if isinstance(t, str) else "COMBO" for t in spec.return_types(cls))
        print(f"{name}({inputs}) -> ({outputs})")
    return 0


def _cmd_sweep(runner, args, table) -> int:
    names = None
    if args.executor == "comfyui" and args.server:  # checked against a server's nodes, as run --server does
        table, names = _sweep_module("executors.comfyui_executor").server_nodes(args.server)
    api, ui = _load(runner, args, table, names)
    return _sweep_module("command").run(args, api, ui, table, _paths(runner, args))


def _cmd_train(runner, args, table) -> int:
    bar, ticks = runner.progress_reporter(f"train {args.out.name}", enabled=not args.quiet), 1000
    text = _train_module("train").progress_text  # "step 120, loss 0.0831"
    try:
        return _train_module("cli_train").run(args, lambda fraction, info: bar(int(fraction * ticks), ticks,
                                                                               text(info)))
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    finally:
        bar.close()


def _cmd_learn_schedule(runner, args, table) -> int:
    bar = runner.progress_reporter(f"learn-schedule {args.name}", enabled=not args.quiet, unit="walks")
    try:
        return _train_module("cli_schedule").run(args, lambda done, budget, best: bar(
            min(done, budget), budget, f"distance to the teacher {best:.4g}"))
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    finally:
        bar.close()


COMMANDS = {"run": _cmd_run, "check": _cmd_check, "convert": _cmd_convert, "nodes": _cmd_nodes, "train": _cmd_train,
            "sweep": _cmd_sweep, "learn-schedule": _cmd_learn_schedule}


NEEDS = ("torch", "numpy", "PIL", "safetensors")  # what the pack imports (requirements.txt, plus torch)


def _missing_packages() -> list:
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def main(argv: Optional[Sequence[str]] = None, node_classes: Optional[Mapping[str, type]] = None) -> int:
    """The CLI; ``node_classes`` replaces the pack's node table (for tests)."""
    missing = _missing_packages()
    if missing:  # e.g. ``python cli.py`` with the system Python: say what to run instead of a traceback
        sys.stderr.write(f"error: this Python ({sys.executable}) cannot import {', '.join(missing)}, which the pack "
                         "needs. Run the CLI with the project's environment: .venv/bin/python cli.py ... (bash "
                         "scripts/env.sh makes .venv), or install torch and requirements.txt into this Python.\n")
        return 2
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger(PACKAGE)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    try:
        runner = load_runner()
        table = dict(node_classes) if node_classes is not None else node_table()
        atomic = _atomic_files()
        try:
            with atomic.terminate_raises(), _limits(runner, args):  # SIGTERM unwinds: no half-written file
                return COMMANDS[args.command](runner, args, table)
        except atomic.Terminated as e:
            sys.stderr.write("terminated\n")
            return e.code
        except runner.WorkflowError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
        except runner.NodeExecutionError as e:
            if args.verbose:
                traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
            sys.stderr.write(f"error: {e}\n" + ("" if args.verbose else "(run with -v for the traceback)\n"))
            return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


if __name__ == "__main__":
    sys.exit(main())
