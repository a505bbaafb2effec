"""Guidance: an immutable chain of terms that wraps a denoiser (see chain.py) and the terms themselves."""
from .chain import STRENGTH_SCHEDULES, GuidanceChain, GuidanceContext, GuidanceRecord, GuidanceTerm
from .terms import CFG, TERMS, register_term
from .cfg_family import APG, Autoguidance, Rescale  # importing registers the terms
from .threshold import DynamicThreshold

__all__ = ["APG", "CFG", "STRENGTH_SCHEDULES", "TERMS", "Autoguidance", "DynamicThreshold", "GuidanceChain",
           "GuidanceContext", "GuidanceRecord", "GuidanceTerm", "Rescale", "register_term"]
from . import energy  # noqa: E402,F401  (registers the energy term)
