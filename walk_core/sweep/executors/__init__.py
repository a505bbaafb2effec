"""Where a sweep's jobs run: the :class:`~.base.Executor` protocol and the registry ``EXECUTORS`` (base.py);
``local`` (local.py), ``ray`` (ray_executor.py) and ``comfyui`` (comfyui_executor.py), each imported on use."""
from .base import EXECUTORS, Executor, make_executor

__all__ = ["EXECUTORS", "Executor", "make_executor"]
