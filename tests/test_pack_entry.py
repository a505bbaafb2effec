"""The pack loads the way ComfyUI loads it: its folder as a package under whatever name the folder has."""
import importlib.abc
import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMFY_MODULES = ("comfy", "comfy_extras", "folder_paths", "latent_preview", "server", "execution")


def unload(name):
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


@pytest.fixture
def load_pack():
    """Load the root package under a given module name; unloads everything it loaded afterwards."""
    loaded = []

    def load(name):
        spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        unload(name)


class ComfyWatcher(importlib.abc.MetaPathFinder):
    """Records (and refuses) every attempt to import a ComfyUI module, even inside try/except."""

    def __init__(self):
        self.attempts = []

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in COMFY_MODULES:
            self.attempts.append(fullname)
            raise ImportError(f"test: {fullname} is not available")
        return None


@pytest.mark.parametrize("name", ["comfyui-random-walk", "random_walk_pack", "ComfyUI-RandomWalk"])
def test_loads_under_any_folder_name(load_pack, name):
    module = load_pack(name)
    assert isinstance(module.NODE_CLASS_MAPPINGS, dict) and module.NODE_CLASS_MAPPINGS
    assert isinstance(module.NODE_DISPLAY_NAME_MAPPINGS, dict) and module.NODE_DISPLAY_NAME_MAPPINGS
    assert set(module.NODE_DISPLAY_NAME_MAPPINGS) == set(module.NODE_CLASS_MAPPINGS)
    # the submodules live under the pack's own name: they were reached relatively
    assert f"{name}.nodes" in sys.modules
    assert f"{name}.walk_core" in sys.modules
    for cls in module.NODE_CLASS_MAPPINGS.values():
        assert cls.__module__.startswith(name + "."), cls.__module__


def test_same_table_as_the_test_package(load_pack):
    from rwalk.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    module = load_pack("comfyui-random-walk")
    assert set(module.NODE_CLASS_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    assert module.NODE_DISPLAY_NAME_MAPPINGS == NODE_DISPLAY_NAME_MAPPINGS


def test_two_copies_load_side_by_side(load_pack):
    """ComfyUI may load a pack twice (a renamed copy); module-level registries must not collide."""
    a = load_pack("comfyui-random-walk")
    b = load_pack("comfyui-random-walk-copy")
    assert set(a.NODE_CLASS_MAPPINGS) == set(b.NODE_CLASS_MAPPINGS)


def test_loading_does_not_import_comfyui(load_pack, monkeypatch):
    watcher = ComfyWatcher()
    monkeypatch.setattr(sys, "meta_path", [watcher] + sys.meta_path)
    for name in COMFY_MODULES:  # a ComfyUI-less interpreter
        monkeypatch.delitem(sys.modules, name, raising=False)
    load_pack("comfyui-random-walk")
    assert watcher.attempts == []
    assert not [k for k in sys.modules if k.split(".")[0] in COMFY_MODULES]


def test_comfyui_own_nodes_and_models_modules_are_left_alone(load_pack, monkeypatch):
    """Inside ComfyUI, top-level ``nodes`` (its node table) and ``models`` already exist: the pack must not
    pick them up (absolute imports would) nor replace them."""
    fake_nodes = types.ModuleType("nodes")
    fake_nodes.NODE_CLASS_MAPPINGS = {"KSampler": object}
    fake_models = types.ModuleType("models")

    def trap(module_name):
        def __getattr__(attr):
            raise AssertionError(f"the pack reached ComfyUI's top-level {module_name!r} for {attr!r}")
        return __getattr__

    fake_nodes.__getattr__ = trap("nodes")
    fake_models.__getattr__ = trap("models")
    monkeypatch.setitem(sys.modules, "nodes", fake_nodes)
    monkeypatch.setitem(sys.modules, "models", fake_models)

    module = load_pack("comfyui-random-walk")
    assert module.NODE_CLASS_MAPPINGS and "KSampler" not in module.NODE_CLASS_MAPPINGS
    assert sys.modules["nodes"] is fake_nodes and sys.modules["models"] is fake_models
    assert fake_nodes.NODE_CLASS_MAPPINGS == {"KSampler": object}


def test_the_node_table_works_from_a_fresh_load(load_pack):
    """A node class from the ComfyUI-style load runs (the import graph is complete, not just importable)."""
    module = load_pack("comfyui-random-walk")
    target_cls = module.NODE_CLASS_MAPPINGS["TargetDistributionMixture"]
    defaults = {name: opts["default"] for name, (_, opts) in target_cls.INPUT_TYPES()["required"].items()}
    (target,) = getattr(target_cls(), target_cls.FUNCTION)(**defaults)
    assert tuple(target.shape)[0] == 3


def test_the_registry_import_leaves_what_nodes_run_unloaded(load_pack):
    """ComfyUI's start-up only reads NODE_CLASS_MAPPINGS: the trainer and the runner's execution, image IO and
    progress load on first use (bench/import_time.py measures the cost)."""
    module = load_pack("lazy-pack")
    loaded = {k[len("lazy-pack."):] for k in sys.modules if k.startswith("lazy-pack.")}
    eager = loaded & {"models", "walk_core.runner.execute", "walk_core.runner.io_nodes", "walk_core.runner.png",
                      "walk_core.runner.overrides", "walk_core.runner.terminal", "walk_core.runner.remote"}
    assert eager == set()
    module.NODE_CLASS_MAPPINGS["TrainWalkModel"].INPUT_TYPES()  # needs the trainer's crop modes: loads it
    assert "lazy-pack.models.data" in sys.modules
    runner = sys.modules["lazy-pack.walk_core.runner"]
    assert runner.run_workflow.__module__ == "lazy-pack.walk_core.runner.execute"


def test_every_lazy_runner_name_resolves():
    import rwalk.walk_core.runner as runner

    for name in runner.__all__:
        assert getattr(runner, name) is not None, name
    assert set(runner.__all__) <= set(dir(runner))
    with pytest.raises(AttributeError, match=r"has no attribute 'run_everything'"):
        runner.run_everything  # noqa: B018
