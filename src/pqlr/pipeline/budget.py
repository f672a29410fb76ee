"""The accuracy budget: every compressing stage is measured against its input on the validation
split, and when it loses more than `max_drop` points of the task's metric it backs off, by
measurement, through an ordered list of weaker settings (the stage's "ladder") until one is within
the budget. When none is, the best one measured is kept and the report says by how much the budget
was exceeded. A forced stage keeps the setting asked for, and the report says what it cost.

    budget = BudgetConfig(max_drop=0.5)            # points; None: no back-off anywhere
    chosen = choose(ctx, "quantized", base_val, [try_qat, try_ptq, ...])

The ladders live in pipeline/stages.py (what each stage can give back); this module only decides:
run the tries in order, stop at the first within budget, record every try.

Validation noise: one sample of an N-sample split moves the metric by 100/N points, so the budget
is never tighter than one sample (with 250 clips, 0.4 points)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import PqlrError

STAGES = ("pruned", "quantized", "low-rank", "distilled")


@dataclass(frozen=True)
class BudgetConfig:
    max_drop: float | None = 0.5        # points of the validation metric a stage may lose; None: off
    force: tuple[str, ...] = ()         # stages that keep the setting asked for, whatever it costs

    def __post_init__(self):
        if self.max_drop is not None and not 0.0 <= self.max_drop <= 100.0:
            raise PqlrError(f"--max-drop must be in [0, 100] points (or off), got {self.max_drop}")
        bad = sorted(set(self.force) - set(STAGES))
        if bad:
            raise PqlrError(f"--force: unknown stage(s) {', '.join(bad)} (stages: {', '.join(STAGES)})")
        object.__setattr__(self, "force", tuple(self.force))


@dataclass
class Attempt:
    """One setting a stage tried: its label, validation metric, and what the stage adopts if chosen."""
    label: str
    val: float | None
    state: object = None


Try = Callable[[], 'Attempt | None']


def tolerance(max_drop: float, n_val: int) -> float:
    """The budget as a fraction of the metric, never finer than one validation sample."""
    return max(max_drop / 100.0, 1.0 / n_val if n_val else 0.0)


def choose(budget: BudgetConfig, stage: str, base_val: float | None, tries: Iterable[Try], n_val: int,
           log: Callable[[str], None] = print) -> tuple[Attempt, dict]:
    """Run `tries` in order; keep the first whose validation metric is within the budget of
    `base_val` (or, when none is, the best). -> (chosen attempt, record for the report).
    The first try is the setting asked for; a forced stage or an unmeasurable budget stops there.
    A try may return None: it does not apply (it is neither run nor recorded)."""
    forced = stage in budget.force
    measurable = budget.max_drop is not None and base_val is not None and n_val > 0
    tol = tolerance(budget.max_drop, n_val) if measurable else None
    record = {"max_drop_points": budget.max_drop, "tolerance_points": None if tol is None else round(100 * tol, 3),
              "input_val": base_val, "forced": forced, "tries": []}
    done: list[Attempt] = []
    for make in tries:
        a = make()
        if a is None:                                    # a try that does not apply to this model
            continue
        done.append(a)
        drop = None if base_val is None or a.val is None else 100.0 * (base_val - a.val)
        record["tries"].append({"setting": a.label, "val": a.val, "drop_points": None if drop is None else round(drop, 2)})
        if not measurable or forced:
            break
        if drop <= 100.0 * tol + 1e-9:
            break
        log(f"[{stage}] {a.label}: validation {100 * a.val:.2f}% loses {drop:.2f} points "
            f"(budget {100 * tol:.2f}): backing off")
    best = done[-1]
    if measurable and not forced and 100.0 * (base_val - best.val) > 100.0 * tol + 1e-9:
        best = max(done, key=lambda a: a.val)            # nothing within budget: the best measured
    drop = None if base_val is None or best.val is None else 100.0 * (base_val - best.val)
    within = None if not measurable else drop <= 100.0 * tol + 1e-9
    record.update({"chosen": best.label, "val": best.val, "drop_points": None if drop is None else round(drop, 2),
                   "within": within})
    if not measurable and budget.max_drop is not None and not forced:
        record["note"] = "not measured: no validation split" if not n_val else "not measured"
    return best, record


def summary_lines(rows: list[dict]) -> list[str]:
    """One line per stage with a budget record: what it lost on validation and what it chose."""
    out = []
    for r in rows:
        b = (r.get("details") or {}).get("budget")
        if not b or b.get("drop_points") is None:
            continue
        tried = len(b["tries"])
        how = (f"{b['chosen']} (forced)" if b["forced"] else
               f"{b['chosen']}" + (f" after {tried - 1} back-off(s)" if tried > 1 else ""))
        verdict = ("" if b["within"] is None else " within budget" if b["within"] else
                   f" -- over the {b['tolerance_points']:.2f}-point budget: nothing tried kept it")
        if b["forced"] and b["within"] is False:
            verdict = f" -- over the {b['tolerance_points']:.2f}-point budget, as forced"
        out.append(f"{r['name']}: {0.0 - b['drop_points']:+.2f} points on validation, {how}{verdict}")
    return out
