"""Write the example workflows (editor format) of workflows/ and their .jpg thumbnails.

    .venv/bin/python scripts/make_workflows.py              # all of them
    .venv/bin/python scripts/make_workflows.py default      # one (or several) by name
    .venv/bin/python scripts/make_workflows.py --no-run     # the .json files only; thumbnails stay as they are
    .venv/bin/python scripts/make_workflows.py --models DIR # copy trained own models in, so no thumbnail trains
    .venv/bin/python scripts/make_workflows.py --server http://127.0.0.1:8188   # ComfyUI's own nodes as that
        # server declares them (else as scripts/comfy_core_nodes.py declares them)

Every file is what the editor itself would save (widget values in its places, a control value after every
seed) and is laid out from the sizes the editor draws (walk_core/runner/layout.py). A weight-free workflow is
then run headless at full size and its first picture becomes its thumbnail; a workflow that needs ComfyUI and a
model file gets a diagram of its graph instead. All of them go to workflows/, where ComfyUI's template browser
lists them (it reads <custom node>/workflows/*.json and the .jpg of the same name, one folder deep).
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "rwalk" not in sys.modules:
    pack = types.ModuleType("rwalk")
    pack.__path__ = [str(ROOT)]
    sys.modules["rwalk"] = pack

from PIL import Image  # noqa: E402

from comfy_core_nodes import comfy_node_table, display_names  # noqa: E402
from example_workflows import COMFY_WORKFLOWS, WORKFLOWS  # noqa: E402
from workflow_diagram import diagram_image  # noqa: E402
from rwalk.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402
from rwalk.walk_core.runner import IO_NODE_CLASSES, RunnerPaths, load_workflow, run_workflow  # noqa: E402
from rwalk.walk_core.runner.layout import workflow  # noqa: E402

FOLDER = ROOT / "workflows"
TABLE = {**NODE_CLASS_MAPPINGS, **IO_NODE_CLASSES}
COMFY_TABLE = {**comfy_node_table(), **TABLE}
DISPLAY = {"SaveImage": "Save Image", "PreviewImage": "Preview Image", "LoadImage": "Load Image",
           "SaveAnimatedWEBP": "SaveAnimatedWEBP", **display_names(), **NODE_DISPLAY_NAME_MAPPINGS}
LOADERS = {"CheckpointLoaderSimple": "models/checkpoints/", "CLIPVisionLoader": "models/clip_vision/"}
log = logging.getLogger("make_workflows")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder: no reader sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_workflow(path: Path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


def save_jpeg(img: Image.Image, path: Path, quality: int) -> Path:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    write_atomic(path, buffer.getvalue())
    return path


def diagram(path: Path) -> Path:
    """A thumbnail for a workflow that needs a model file: its graph drawn (pack nodes blue, ComfyUI's grey),
    with text large enough to read on the template browser's card (scripts/workflow_diagram.py)."""
    data = json.loads(path.read_text())
    files = {n["type"]: n["widgets_values"][0] for n in data["nodes"] if n["type"] in LOADERS}
    needs = "needs ComfyUI and " + " and ".join(f"{LOADERS[kind]}{name}" for kind, name in files.items())
    return save_jpeg(diagram_image(data, DISPLAY, set(NODE_CLASS_MAPPINGS), needs), path.with_suffix(".jpg"), 90)


THUMBNAIL_SIDE = 256  # the short side of a thumbnail: the template browser draws its cards about 300 px wide


def thumbnail_image(img: Image.Image) -> Image.Image:
    """``img`` scaled to THUMBNAIL_SIDE px on its short side, up or down. Lanczos both ways: the outputs are
    textures and paintings, which nearest neighbour would turn into visible blocks."""
    scale = THUMBNAIL_SIDE / min(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img if size == img.size else img.resize(size, Image.LANCZOS)


def thumbnail(path: Path, trained: Path = None) -> Path:
    """Run the workflow headless at full size; its first picture, 256 px on its short side, is the thumbnail."""
    api, ui = load_workflow(path, TABLE)
    with tempfile.TemporaryDirectory() as tmp:
        if trained:  # a workflow's Train Walk Model finds its model already trained
            models = Path(tmp) / "out" / "walk_models"
            models.mkdir(parents=True)
            for f in trained.glob("*.safetensors"):
                shutil.copy(f, models / f.name)
        result = run_workflow(api, TABLE, ui_workflow=ui, progress=False,
                              paths=RunnerPaths(Path(tmp) / "in", Path(tmp) / "out"))
        with Image.open(result.saved[0]) as img:
            return save_jpeg(thumbnail_image(img.convert("RGB")), path.with_suffix(".jpg"), 85)


def parse(args: list) -> dict:
    options = {"run": True, "models": None, "server": None, "names": []}
    while args:
        arg = args.pop(0)
        if arg == "--no-run":
            options["run"] = False
        elif arg in ("--models", "--server"):
            if not args:
                raise SystemExit(f"make_workflows: {arg} needs a value (a folder for --models, a URL for --server)")
            options[arg[2:]] = args.pop(0)
        elif arg in WORKFLOWS or arg in COMFY_WORKFLOWS:
            options["names"].append(arg)
        else:
            raise SystemExit(f"make_workflows: unknown workflow or option {arg!r}; workflows: "
                             f"{', '.join([*WORKFLOWS, *COMFY_WORKFLOWS])}; options: --no-run, --models DIR, "
                             "--server URL")
    return options


def main(args: list) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = parse(list(args))
    comfy_table = COMFY_TABLE
    if options["server"]:  # ComfyUI's own nodes as the server declares them
        from rwalk.walk_core.runner.remote import server_node_table  # noqa: PLC0415

        comfy_table = {**server_node_table(options["server"]), **TABLE}
    trained = Path(options["models"]) if options["models"] else None
    for name in options["names"] or [*WORKFLOWS, *COMFY_WORKFLOWS]:
        path = FOLDER / f"{name}.json"
        if name in COMFY_WORKFLOWS:
            write_workflow(path, workflow(comfy_table, DISPLAY, *COMFY_WORKFLOWS[name]()))
            log.info("wrote %s and %s", path.relative_to(ROOT), diagram(path).relative_to(ROOT))
            continue
        write_workflow(path, workflow(TABLE, DISPLAY, *WORKFLOWS[name]()))
        if options["run"]:
            log.info("wrote %s and %s", path.relative_to(ROOT), thumbnail(path, trained).relative_to(ROOT))
        else:
            log.info("wrote %s (thumbnail kept)", path.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
