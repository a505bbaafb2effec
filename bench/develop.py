"""Measure walks in development against issue 6's goals and the best peers, in about a minute.

From the repository root (the pack is imported as ``rwalk``, as the tests do)::

    from bench.run import register_pack; register_pack()
    from rwalk.bench.develop import evaluate, pack_sampler

    report = evaluate(["my_walk", pack_sampler("pc", snr=0.2)])  # names in WALKS, or pack_sampler(...) variants
    print(report.markdown())        # the goals table, then per target and budget every walk and peer side by side
    report.met                      # {"ring-10": True, ...}
    report.score("image", "my_walk", 10).values   # {"sw2": ..., "cov_err": ..., "detail": ...}

or ``.venv/bin/python bench/check_goals.py my_walk pc --peers best``. ``quick=True`` (default) uses the quick
sizes (ring 1000, image 300, classes 300 samples; floors over 10 exact sets) at NFE 10 and 20 on both schedules
(the guided target on karras, with every chain) and the overhead at NFE 20; ``quick=False`` the published
run's sizes. ``peers="best"`` runs :data:`GOAL_PEERS` (those installed), ``"all"`` every peer, ``"none"`` none,
or a list of peer names.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Union

from .accuracy import AccuracyConfig, Score
from .chains import CHAIN_NAMES
from .config import BenchConfig, default_config
from .goals import GoalResult, evaluate_goals, goals_table
from .overhead import OverheadConfig
from .pipeline import measure
from .report_accuracy import budget_table
from .result import BenchResult
from .samplers import Sampler, pack_sampler

log = logging.getLogger(__name__)

__all__ = ["GOAL_PEERS", "GoalReport", "evaluate", "goal_config", "pack_sampler"]

# The peers closest to the goals in the published run (docs/BENCHMARKS.md): the best per target and budget.
GOAL_PEERS = ("comfy:deis", "comfy:ipndm_v", "comfy:gradient_estimation", "comfy:er_sde", "comfy:sa_solver",
              "comfy:res_multistep", "kd:dpmpp_2m", "kd:lms", "kd:euler_ancestral", "kd:dpmpp_2m_sde")
BUDGETS = (10, 20)


@dataclass
class GoalReport:
    result: BenchResult
    goals: List[GoalResult]

    @property
    def met(self) -> Dict[str, bool]:
        return {g.key: g.met for g in self.goals}

    def score(self, target: str, row: str, budget: int, schedule: str = "karras") -> Optional[Score]:
        """The run of ``row`` (a sampler name, '+ chain' on the guided target) at ``budget`` on ``target``."""
        acc = self.result.target(target)
        return None if acc is None else acc.score(row, schedule, budget)

    def markdown(self) -> str:
        lines = ["## Goals", ""] + goals_table(self.goals) + [""]
        for acc in self.result.accuracy:
            for schedule in acc.schedules:
                for budget in acc.budgets:
                    lines += [f"### {acc.target.key}, {schedule}, budget {budget}", ""]
                    lines += budget_table(acc, schedule, budget) + [""]
        if self.result.overhead is not None:
            lines += ["### overhead", "", "| sampler | × bare Euler |", "|---|---|"]
            lines += [f"| `{w.walk}` | {w.ratio:.2f} |" for w in self.result.overhead.walks]
        return "\n".join(lines) + "\n"


def goal_config(quick: bool = True, peers: Union[str, Sequence[str], None] = "best", seed: int = 0,
                threads: int = 1) -> BenchConfig:
    """The benchmark configuration of :func:`evaluate`."""
    n = (1000, 300, 300) if quick else (2000, 1000, 1000)
    both = ("karras", "exponential")
    # --full: the published run's sizes, spreads (which set the further initial noises' seeds) and floor sets
    published = default_config()
    common = dict(nfes=BUDGETS, seed=seed, spread_seeds=0 if quick else published.ring.spread_seeds, plot_nfe=20)
    floors = (10, 10, 10) if quick else tuple(c.floor_repeats for c in (published.ring, published.image,
                                                                        published.classes))
    if peers is None or peers == "none":
        sources, names = (), None
    elif peers == "all":
        sources, names = ("kd", "comfy"), None
    elif peers == "best":
        sources, names = ("kd", "comfy"), GOAL_PEERS
    elif isinstance(peers, str):
        raise ValueError(f"goal_config: peers={peers!r} is not allowed; expected 'best', 'all', 'none' or a list "
                         "of peer names such as ['comfy:er_sde', 'kd:dpmpp_2m']")
    else:
        sources, names = ("kd", "comfy"), tuple(peers)
    return BenchConfig(
        name="goals" + (" (quick)" if quick else ""),
        threads=threads,
        overhead=OverheadConfig(nfe=20, repeats=5 if quick else 11, warmup=1, min_repeats=1, max_seconds=0.5),
        ring=AccuracyConfig(samples=n[0], schedules=both, floor_repeats=floors[0], repeat_seeds=4,
                            repeat_nfes=(10, 20), **common),
        image=AccuracyConfig(samples=n[1], schedules=both, floor_repeats=floors[1], **common),
        classes=AccuracyConfig(samples=n[2], schedules=("karras",), chains=("cfg",), pack_chains=CHAIN_NAMES,
                               floor_repeats=floors[2], **common),
        peers=sources,
        peer_names=names,
    )


def evaluate(walks: Optional[Sequence[Union[str, Sampler]]] = None, quick: bool = True,
             peers: Union[str, Sequence[str], None] = "best", overhead: bool = True, seed: int = 0, threads: int = 1,
             config: Optional[BenchConfig] = None) -> GoalReport:
    """Run ``walks`` (names in ``walk_core.WALKS`` or :func:`pack_sampler` variants; default: every registered
    walk) and ``peers`` on the goal targets and budgets; return the goals evaluated for the best of them.

    ``config`` replaces the configuration :func:`goal_config` would build (for tests and custom sizes)."""
    samplers = None
    if walks is not None:
        samplers = [w if isinstance(w, Sampler) else pack_sampler(w) for w in walks]
        if not samplers:
            raise ValueError("evaluate: walks=[] is not allowed; expected walk names, samplers, or None for all")
    config = config or goal_config(quick, peers, seed, threads)
    if walks is not None:
        config = replace(config, name=config.name + ": " + ", ".join(s.name for s in samplers))
    result = measure(config, samplers, overhead=overhead)
    goals = evaluate_goals(result)
    report = GoalReport(result, goals)
    log.info("goals (%s, %.0f s): %s", config.name, result.seconds.get("total", 0.0),
             ", ".join(f"{g.key} {'met' if g.met else 'not met'} ({g.best})" for g in goals))
    return report
