"""Guidance: an immutable chain of terms that wraps a denoiser (see chain.py) and the terms themselves."""
from .chain import STRENGTH_SCHEDULES, GuidanceChain, GuidanceContext, GuidanceRecord, GuidanceTerm
from .terms import CFG, TERMS, register_term

__all__ = ["CFG", "STRENGTH_SCHEDULES", "TERMS", "GuidanceChain", "GuidanceContext", "GuidanceRecord",
           "GuidanceTerm", "register_term"]
