"""R12 coaching: a rep whose stage transition rate (bot/rules/metrics.py) is below `[metrics] transition_rate`
for `transition_weeks` consecutive ISO weeks → a 专项陪访 (coaching joint visit) task card for the rep's
manager, once per rep per week.

The weeks are Asia/Shanghai Monday–Sunday; the sweep runs inside the every-minute `sweeps` job and works once
per week (periodic.py's mark) from Monday 00:00 on, for the week just ended (the card waits for working hours).
A week with nothing due to move does not count as below.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.config import Settings
from bot.deps import Deps
from bot.rules.metrics import Rate, Transitions, week_bounds, week_label
from jobs.notices import calendar_of
from jobs.sweeps.base import manager_of, userids
from jobs.sweeps.periodic import mark_period_done, recipient_groups, send_card, task_id, week_to_run, work_card
from store.db import Database
from store.models import User
from store.repos.escalations import EscalationRepo
from store.repos.transitions import rep_transitions as transition_counts

RULE = "R12"
TITLE = "专项陪访：{rep} 阶段跃迁率连续 {n} 周低于 {target}"
DESC = "上周 {rate}：{moved}/{due} 个到期商机推进到下一阶段"
TEXT = "请本周安排一次专项陪访，和{rep}一起推进卡在「{stage}」的商机，并把陪访结论记下来。"

Window = tuple[datetime, datetime]


async def rep_transitions(db: Database, settings: Settings, weeks: Sequence[Window]) -> dict[int, list[Transitions]]:
    """R12 per rep (opportunity owner) for each week window, counted in the database by one aggregate
    (store/repos/transitions.py: the same definitions as bot/rules/metrics.py's stage_spans + transitions).
    Reps with nothing due in any window are left out: they cannot be below."""
    async with db.sessions() as s:
        return await transition_counts(s, settings.funnel.stages, settings.rules.stage_limit, weeks)


async def run(deps: Deps, now: datetime) -> int:
    """R12: coaching cards for the week just ended (nothing once that week was done)."""
    settings = deps.settings
    m = settings.metrics
    due = await week_to_run(deps.db, RULE, now)
    if due is None:
        return 0
    week, period = due
    mondays = [week - timedelta(days=7 * i) for i in range(m.transition_weeks)]  # the week just ended first
    per_rep = await rep_transitions(deps.db, settings, [week_bounds(d) for d in mondays])
    calendar = calendar_of(settings)
    fired = 0
    async with deps.db.transaction() as s:
        repo = EscalationRepo(s)
        for rep_id, weeks in sorted(per_rep.items()):
            if not all(t.overall.below(m.transition_rate) for t in weeks):
                continue
            rep = await s.get(User, rep_id)
            manager = await manager_of(s, rep_id)
            recipients = await userids(s, [manager])
            if rep is None or not rep.active or not recipients:
                continue
            last = weeks[0].overall
            task = task_id(RULE, rep_id, period)
            groups = recipient_groups(recipients)
            esc = await repo.fire(RULE, "user", rep_id, period, now, recipients=recipients, task_id=task,
                                  data={"card_to": groups[0].split("|"),
                                        "weeks": {week_label(d): [t.overall.hits, t.overall.total]
                                                  for d, t in zip(mondays, weeks, strict=True)}})
            if esc is None:
                continue
            title = TITLE.format(rep=rep.name, n=len(weeks), target=f"{m.transition_rate:.0%}")
            rows = [(week_label(d)[-3:], _share(t.overall)) for d, t in zip(mondays, weeks, strict=True)]
            stage, worst = _worst_stage(weeks[0])
            rows.append(("最卡阶段", f"{stage} {_share(worst)}"))
            card = work_card(rule=RULE, task=task, title=title,
                             desc=DESC.format(rate=f"{(last.rate or 0):.0%}", moved=last.hits, due=last.total),
                             rows=rows, text=TEXT.format(rep=rep.name, stage=stage))
            send_card(repo, esc, groups, card=card, copy=title, now=now, calendar=calendar)
            fired += 1
        await mark_period_done(s, RULE, period, now)
    return fired


def _share(rate: Rate) -> str:
    return f"{(rate.rate or 0):.0%}（{rate.hits}/{rate.total}）"


def _worst_stage(week: Transitions) -> tuple[str, Rate]:
    """The stage with the lowest rate (most due on a tie, then the earliest: by_stage is in funnel order) in a
    week."""
    measured = [(stage, r) for stage, r in week.by_stage.items() if r.total]
    return min(measured, key=lambda sr: ((sr[1].rate or 0), -sr[1].total))
