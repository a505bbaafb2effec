"""Guidance: an immutable chain of terms that wraps a denoiser (see chain.py) and the terms themselves."""
from .chain import STRENGTH_SCHEDULES, GuidanceChain, GuidanceContext, GuidanceRecord, GuidanceTerm
from .terms import CFG, TERMS, register_term
from .cfg_family import APG, Autoguidance, Rescale  # importing registers the terms
from .threshold import DynamicThreshold

__all__ = ["APG", "CFG", "STRENGTH_SCHEDULES", "TERMS", "Autoguidance", "DynamicThreshold", "GuidanceChain",
           "GuidanceContext", "GuidanceRecord", "GuidanceTerm", "Rescale", "register_term"]
from . import energy  # noqa: E402,F401  (registers the energy term)
from . import cads, cfgpp, interval, momentum, smc  # noqa: E402,F401  (register CADS, CFG++, ... )
from . import cfg_variants, frequency  # noqa: E402,F401  (register CFG-Zero*, TCFG, Mahiro, PerpNeg, FDG, FreSca)
from . import perturbed, sag, swg  # noqa: E402,F401  (register PAG, SEG, SLG, SAG, SWG: terms that perturb the model)
from . import attention_terms, cfg_norm  # noqa: E402,F401  (register TPG, NAG, PLADIS and CFGNorm)
