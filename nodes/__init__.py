"""Thin ComfyUI node classes over walk_core; the mappings come from the one table in table.py."""
from .table import NODE_TABLE

NODE_CLASS_MAPPINGS = {node_id: cls for node_id, (cls, _) in NODE_TABLE.items()}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, (_, name) in NODE_TABLE.items()}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "NODE_TABLE"]
