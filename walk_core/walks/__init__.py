"""The walk registry: every walk has the shared signature (see base.py)."""
from .base import WALKS, WalkSpec, ancestral_step, register_walk, steps_for_nfe
from . import ode, stochastic, langevin, adams, er_sde, restart  # noqa: F401  (registration order = display order)

__all__ = ["WALKS", "WalkSpec", "ancestral_step", "register_walk", "steps_for_nfe"]
