"""The dependency direction, read from the source with ``ast`` (nothing is imported).

``__init__ -> nodes -> (walk_core, models)``, ``models -> walk_core``; nothing imports ``nodes``; the engine
uses the standard library plus torch/numpy/PIL/safetensors; ComfyUI is imported only inside functions;
inside the pack every import is relative (ComfyUI has its own top-level ``nodes`` and ``models``).
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"tests", ".venv", "venv", "__pycache__", "node_modules", "output", "input", "shared"}

COMFY_MODULES = {"comfy", "comfy_extras", "folder_paths", "latent_preview", "server", "execution"}
ENGINE_THIRD_PARTY = {"torch", "numpy", "PIL", "safetensors"}
#: optional engines walk_core may import inside functions of these folders only (one clear error without them)
OPTIONAL_IN_FUNCTIONS = {"ray": ("walk_core/sweep/executors/",)}
PACK_TOP_LEVEL = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()} | {
    "rwalk", "walk_core", "nodes", "models",
}


def pack_files():
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        out.append(rel)
    return out


FILES = pack_files()
ENGINE_FILES = [f for f in FILES if f.parts[0] in ("walk_core", "models")]
WALK_CORE_FILES = [f for f in FILES if f.parts[0] == "walk_core"]


class Import:
    """One import statement; ``targets`` are the pack paths a relative import reaches."""

    def __init__(self, node, rel: Path, in_function: bool):
        self.node, self.line, self.in_function = node, node.lineno, in_function
        self.absolute, self.targets, self.escapes = [], [], False
        if isinstance(node, ast.Import):
            self.absolute = [alias.name for alias in node.names]
        elif not node.level:
            self.absolute = [node.module]
        else:
            package = list(rel.parts[:-1])  # the package of module ``rel``, as parts under the pack root
            up = node.level - 1
            self.escapes = up > len(package)
            base = package[: len(package) - up]
            if node.module:
                self.targets = [base + node.module.split(".")]
            else:  # from . import a, b
                self.targets = [base + [alias.name] for alias in node.names]

    def top_levels(self):
        return [name.split(".")[0] for name in self.absolute if name]


def imports(rel: Path, source: str = None):
    if source is None:
        source = (ROOT / rel).read_text(encoding="utf-8")
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(Import(child, rel, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source, filename=str(rel)), False)
    return found


def where(rel, imp):
    return f"{rel}:{imp.line}"


def test_files_found():
    assert any(f.parts[0] == "walk_core" for f in FILES)
    assert any(f.parts[0] == "nodes" for f in FILES)


def test_the_reader_sees_what_the_rules_forbid():
    """The checks below can fail: the reader resolves relative imports and tells module level from functions."""
    src = (
        "from ..nodes import table\n"
        "from . import sibling\n"
        "import comfy.utils\n"
        "def lazy():\n"
        "    import folder_paths\n"
        "class K:\n"
        "    from ... import too_high\n"
    )
    found = imports(Path("walk_core/walks/x.py"), src)
    assert found[0].targets == [["walk_core", "nodes"]]
    assert found[1].targets == [["walk_core", "walks", "sibling"]]
    assert found[2].top_levels() == ["comfy"] and not found[2].in_function
    assert found[3].top_levels() == ["folder_paths"] and found[3].in_function
    assert found[4].targets == [["too_high"]] and not found[4].in_function and not found[4].escapes
    assert imports(Path("walk_core/x.py"), "from ... import y\n")[0].escapes


@pytest.mark.parametrize("rel", ENGINE_FILES, ids=str)
def test_engine_never_imports_nodes_or_comfyui(rel):
    for imp in imports(rel):
        for target in imp.targets:
            assert target[:1] != ["nodes"], f"{where(rel, imp)} imports the pack's nodes/"
        for top in imp.top_levels():
            assert top != "nodes", f"{where(rel, imp)} imports a top-level 'nodes'"
            assert top not in COMFY_MODULES, f"{where(rel, imp)} imports ComfyUI module {top!r}"


@pytest.mark.parametrize("rel", [f for f in ENGINE_FILES if f.parts[0] == "models"], ids=str)
def test_models_import_only_the_engine_inside_the_pack(rel):
    for imp in imports(rel):
        for target in imp.targets:
            assert target[:1] in (["models"], ["walk_core"]), f"{where(rel, imp)} imports {'.'.join(target)}"


@pytest.mark.parametrize("rel", WALK_CORE_FILES, ids=str)
def test_walk_core_depends_on_stdlib_and_the_allowlist_only(rel):
    allowed = set(sys.stdlib_module_names) | ENGINE_THIRD_PARTY | {"__future__"}
    for imp in imports(rel):
        for top in imp.top_levels():
            optional = imp.in_function and str(rel.as_posix()).startswith(OPTIONAL_IN_FUNCTIONS.get(top, ("//",)))
            assert top in allowed or optional, (
                f"{where(rel, imp)} imports {top!r}; walk_core may use the stdlib and {sorted(ENGINE_THIRD_PARTY)}"
                f" (and, inside functions, {OPTIONAL_IN_FUNCTIONS})"
            )
        for target in imp.targets:
            assert target[:1] == ["walk_core"], f"{where(rel, imp)} reaches outside walk_core: {'.'.join(target)}"


def is_script(rel: Path) -> bool:
    """An entry point run as ``python path.py`` (a module-level ``if __name__ == "__main__"``)."""
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)


@pytest.mark.parametrize("rel", FILES, ids=str)
def test_intra_pack_imports_are_relative_and_resolve(rel):
    # a script cannot import relatively: it loads the pack under the fixed name ``rwalk`` (cli.py, bench/run.py)
    allowed_absolute = {"rwalk"} if is_script(rel) else set()
    for imp in imports(rel):
        for top in imp.top_levels():
            assert top not in PACK_TOP_LEVEL - allowed_absolute, (
                f"{where(rel, imp)} imports {top!r} absolutely; inside the pack use relative imports"
            )
        assert not imp.escapes, f"{where(rel, imp)}: relative import climbs above the pack root"
        for target in imp.targets:
            path = ROOT.joinpath(*target) if target else ROOT
            exists = path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
            if not exists and isinstance(imp.node, ast.ImportFrom) and imp.node.module is None:
                # ``from . import name`` may import a name defined in the package __init__
                exists = (path.parent / "__init__.py").is_file()
            assert exists, f"{where(rel, imp)}: relative import of {'.'.join(target)} does not resolve"


@pytest.mark.parametrize("rel", FILES, ids=str)
def test_comfyui_is_imported_only_inside_functions(rel):
    for imp in imports(rel):
        if imp.in_function:
            continue
        for top in imp.top_levels():
            assert top not in COMFY_MODULES, (
                f"{where(rel, imp)} imports {top!r} at module level; import ComfyUI lazily inside a function"
            )
