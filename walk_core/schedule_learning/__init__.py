"""Schedules learned for any target: fit a walk's few-step sigmas to a many-step teacher walk (LD3-style), save
them as files the schedule registry loads by name (``learned:<name>``)."""
from .learn import LearnedSchedule, LearnSpec, learn_schedule
from .parameters import sigmas_from_logits, warp_positions

__all__ = ["LearnSpec", "LearnedSchedule", "learn_schedule", "sigmas_from_logits", "warp_positions"]
