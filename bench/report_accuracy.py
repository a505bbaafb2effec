"""The accuracy part of the report: per target, the floors, one sampler's seed-to-seed spread, and per schedule
and budget one table with every walk and peer side by side (a row per sampler, a column per metric)."""
from __future__ import annotations

from typing import Dict, List, Optional

from .accuracy import Score, TargetAccuracy
from .chains import describe
from .markdown import details, fmt, table
from .scoring import METRICS, within

SDS = 2.0  # a value within this many sd of its floor is shown in bold


def _cell(result: TargetAccuracy, score: Optional[Score], key: str) -> str:
    if score is None:
        return "–"
    if score.status in ("diverged", "error"):
        return score.status
    value = score.get(key)
    text = fmt(value, METRICS[key].digits)
    if not score.ok:
        return f"{text}†"
    return f"**{text}**" if within(value, result.floors[key], SDS, METRICS[key].kind) else text


def budget_table(result: TargetAccuracy, schedule: str, budget: int) -> List[str]:
    keys = result.keys
    header = ["sampler", "group", "levels", "NFE"] + [METRICS[k].label for k in keys] + ["s"]
    rows = [["*exact (floor: mean ± sd)*", "", "", ""] + [str(result.floors[k]) for k in keys] + [""]]
    for row in result.rows():
        score = result.score(row, schedule, budget)
        if score is None:
            continue
        sampler = result.sampler_of(row)
        rows.append([f"`{row}`", sampler.group, str(score.steps), str(score.nfe)]
                    + [_cell(result, score, k) for k in keys] + [fmt(score.seconds, 2) if score.seconds else ""])
    return table(header, rows)


def _failures(result: TargetAccuracy) -> List[str]:
    failed = [s for s in result.scores if not s.ok]
    if not failed:
        return ["No run diverged, failed or went off the target.", ""]
    lines = [f"Runs that diverged, failed or went off the target (†) ({len(failed)}):", ""]
    seen: Dict[str, List[str]] = {}
    for s in failed:
        seen.setdefault(f"`{s.row}` — {s.status}: {s.message[:160]}", []).append(f"{s.schedule} {s.budget}")
    lines += [f"- {what} ({'; '.join(where)})" for what, where in seen.items()]
    return lines + [""]


def _spread_line(result: TargetAccuracy) -> List[str]:
    sp = result.spread
    if sp is None:
        return []
    values = ", ".join(f"{METRICS[k].label} {v}" for k, v in sp.values.items())
    return [f"Seed-to-seed spread of one sampler (`{sp.sampler}`, {sp.schedule}, budget {sp.nfe}, {sp.seeds} "
            f"independent noise seeds, mean ± sd): {values}. Differences between samplers smaller than these sds "
            "are sampler noise.", ""]


def accuracy_section(result: TargetAccuracy, figures: Dict[str, str]) -> List[str]:
    c, t = result.config, result.target
    lines = [f"### {t.key}: {t.title}", ""]
    guided = ""
    if t.guided:
        chains = ", ".join(f"`{n}` = {describe(n, c.scale, t.sigma_min, t.sigma_max)}" for n in c.pack_chains)
        guided = (f" Guidance: every sampler with `{c.chains[0]}`; the pack's walks also with each chain of the "
                  f"pack ({chains}). Metrics against the exact class-{t.label} conditional.")
    lines += [
        f"{c.samples} samples per run, σ {t.sigma_min:g}..{t.sigma_max:g}, the same initial noise for every sampler "
        f"(item i seeded {c.seed}+i), exact denoiser.{guided} Floors: independent exact sample sets of the same size, "
        f"mean ± sd over {c.floor_repeats}. **Bold**: within {SDS:g} sd of the floor (at the floor for errors; "
        "for ratios on either side). †: off the target — more than 1 % of the samples farther from every mode "
        "than the signal's RMS (listed below the tables); *diverged*: non-finite or huge samples. `levels`: noise "
        "levels the sampler got for the budget; `NFE`: evaluations it actually made; `s`: seconds of the run.",
        "",
    ]
    lines += _spread_line(result)
    if result.repeats:
        lines += [f"The tables show the runs from the initial noise above. Every sampler also ran at budgets "
                  f"{', '.join(str(b) for b in c.repeat_nfes)} from {c.repeat_seeds - 1} further initial noises; the "
                  f"goals judge those budgets by the mean over all {c.repeat_seeds} (against the sd of a mean of "
                  f"{c.repeat_seeds} exact sets), so one noise set's luck neither passes nor fails a walk.", ""]
    budgets, schedules = result.budgets, result.schedules
    for schedule in schedules:
        for budget in budgets:
            body = [f"**{schedule}, budget {budget}**", ""] + budget_table(result, schedule, budget) + [""]
            open_table = schedule == schedules[0] and budget in budgets[:2]
            lines += body if open_table else details(f"{t.key}: {schedule}, budget {budget}", body)
    lines += _failures(result)
    for caption, path in figures.items():
        lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return lines
