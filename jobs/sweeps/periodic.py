"""What the measure sweeps share (R2 daily, R7, R12/R13 weekly): a per-period "done" mark, work-order cards
with one 已处理 button, and card recipients that fit the outbox.

A daily or weekly rule runs inside the every-minute `sweeps` job; its mark — a `sweep_periods` row unique per
(rule, period) — makes every later run of that period a single indexed look-up, so the measure is computed
once per period, not once a minute. Subjects still fire once each through their own escalations, so a crash
between the subjects and the mark only means the next run looks again.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.rules.calendar import WorkCalendar
from bot.rules.metrics import last_complete_week, week_label
from handlers.workorders import WORK_ORDER_BUTTONS
from store.db import Database
from store.models import Escalation, SweepPeriod
from store.repos.escalations import EscalationRepo
from store.repos.outbox import RECIPIENT_MAX

SOURCE = "销售助手"
DONE_KEY = "{rule}:done"  # the card's one button; handlers/workorders.py records the press


async def period_done(s: AsyncSession, rule: str, period: str) -> bool:
    """Whether this rule's sweep already finished `period`."""
    return bool(await s.scalar(select(exists().where(SweepPeriod.rule == rule, SweepPeriod.period == period))))


async def week_to_run(db: Database, rule: str, now: datetime) -> tuple[date, str] | None:
    """A weekly rule's week just ended (its Monday and label), or None when that week was already done."""
    week = last_complete_week(now)
    period = week_label(week)
    async with db.sessions() as s:
        if await period_done(s, rule, period):
            return None
    return week, period


async def mark_period_done(s: AsyncSession, rule: str, period: str, now: datetime) -> None:
    """Record that this rule's sweep finished `period` (idempotent: a second process's mark is a no-op)."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    await s.execute(insert(SweepPeriod).values(rule=rule, period=period, done_at=now)
                    .on_conflict_do_nothing(index_elements=["rule", "period"]))


def task_id(rule: str, subject_id: int, period: str) -> str:
    """A card's task_id: unique for ever in the WeCom app (42014 otherwise), so it carries a random part;
    WeCom allows letters, digits and _-@ up to 128 bytes."""
    clean = "".join(ch if ch.isalnum() or ch in "_-@" else "-" for ch in period)
    return f"{rule.lower()}-{subject_id}-{clean}-{secrets.token_hex(6)}"


def recipient_groups(userids: Sequence[str], max_len: int = RECIPIENT_MAX) -> list[str]:
    """Userids joined as "a|b|c" into groups that fit the outbox's recipient column, each going into the first
    group with room (so the first group — the one that gets the card — holds as many people as fit)."""
    groups: list[str] = []
    for userid in dict.fromkeys(userids):
        for i, group in enumerate(groups):
            if len(group) + 1 + len(userid) <= max_len:
                groups[i] = f"{group}|{userid}"
                break
        else:
            groups.append(userid)
    return groups


def send_card(repo: EscalationRepo, esc: Escalation, groups: Sequence[str], *, card: dict[str, Any],
              copy: str, now: datetime, calendar: WorkCalendar) -> None:
    """The card as one message to the first group ("a|b|c"); anyone who did not fit gets a text copy."""
    if groups:
        repo.notify(esc, groups[0], now=now, calendar=calendar, card=card)
    for group in groups[1:]:
        for userid in group.split("|"):
            repo.notify(esc, userid, now=now, calendar=calendar, text=copy)


def cut(text: str, limit: int) -> str:
    """Within WeCom's advised length for a card field."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(amount: Decimal) -> str:
    return f"¥{amount:,.2f}"


def work_card(*, rule: str, task: str, title: str, desc: str, rows: Sequence[tuple[str, str]],
              text: str) -> dict[str, Any]:
    """A button_interaction card with the rule's one button (已处理, 已复盘, …; handlers/workorders.py), in
    WeCom's advised lengths: title 36, desc 44, at most 6 rows of key ≤ 5 / value ≤ 30, text 160."""
    return {
        "card_type": "button_interaction",
        "source": {"desc": SOURCE, "desc_color": 2},
        "main_title": {"title": cut(title, 36), "desc": cut(desc, 44)},
        "horizontal_content_list": [{"keyname": cut(k, 5), "value": cut(v, 30)} for k, v in rows[:6]],
        "sub_title_text": cut(text, 160),
        "task_id": task,
        "button_list": [{"text": WORK_ORDER_BUTTONS[rule], "style": 1, "key": DONE_KEY.format(rule=rule.lower())}],
    }
