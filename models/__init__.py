"""Network definitions, safetensors loading/saving and training (the own-models issue fills this in).

May import walk_core; never nodes/ or ComfyUI.
"""
