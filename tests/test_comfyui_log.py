"""The opt-in ComfyUI test looks only at the pack's own import lines of ComfyUI's log."""
from comfyui_log import pack_import_failures  # tests/ is on sys.path (conftest.py)

PACK = "comfyui-random-walk"
LOG = """\
Traceback (most recent call last):
ModuleNotFoundError: No module named 'torchaudio'
Cannot import /opt/ComfyUI/comfy_extras/nodes_audio.py module for custom nodes: No module named 'torchaudio'
WARNING: some comfy_extras/ nodes did not import correctly. This may be because they are missing some dependencies.
IMPORT FAILED: nodes_audio.py
Import times for custom nodes:
   0.0 seconds (IMPORT FAILED): /tmp/base/custom_nodes/comfyui-random-walk-old
   0.4 seconds: /tmp/base/custom_nodes/comfyui-random-walk
"""


def test_comfyuis_own_failed_nodes_and_other_packs_are_ignored():
    assert pack_import_failures(LOG, PACK) == []


def test_the_packs_own_failure_lines_are_found():
    failed = LOG.replace("0.4 seconds: /tmp/base/custom_nodes/comfyui-random-walk",
                         "0.4 seconds (IMPORT FAILED): /tmp/base/custom_nodes/comfyui-random-walk")
    failed += ("Cannot import /tmp/base/custom_nodes/comfyui-random-walk module for custom nodes: "
               "No module named 'safetensors'\n")
    assert len(pack_import_failures(failed, PACK)) == 2
    skipped = ("Skip C:\\ComfyUI\\custom_nodes\\comfyui-random-walk module for custom nodes due to the lack "
               "of NODE_CLASS_MAPPINGS")
    assert pack_import_failures(skipped, PACK) == [skipped]
