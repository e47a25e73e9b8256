"""R4 stage stall (and what R5, jobs/sweeps/silent.py, shares with it): rules measured against a stage limit.

R4: an open opportunity longer than its stage limit (`[rules] stage_limits[stage]`, else
`stage_limit_hours`) in one stage → one button card (已跟进 / 约陪访 / 稍后提醒) to the owner's manager,
copied to the direct superior: one message/send to "manager|superior", so the one response_code of a
press updates the card for both (handlers/cards.py). Once per (R4, opportunity, stage entry); a card
snoozed with 稍后提醒 comes back once when the snooze ends if the deal is still stalled in that stage.

R5: no progress for more than `silent_factor` × the stage limit → status silent, owner and manager told,
once per (R5, opportunity, last progress). New activity revives it (handlers/common.py `after_activity`).

The limit differs per stage, so each sweep queries per group of stages sharing a limit, on the
(status, stage_entered_at) and (status, last_progress_at) indexes; a probe of the escalations' unique index
(R4) or the status flip itself (R5) keeps the work proportional to what is due, not to the table.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, String, and_, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import SHANGHAI
from bot.config import RulesSettings, Settings
from bot.deps import Deps
from bot.rules.gates import ActionState, missing_for_move, next_stage
from handlers.cards import R4_BUTTONS
from handlers.gating import action_states, missing_lines
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, Lines, after_key, write_batches
from store.models import Customer, Escalation, Opportunity, User
from store.repos.escalations import EscalationRepo, Firing
from store.repos.outbox import RECIPIENT_MAX
from store.repos.pipeline import PipelineRepo

log = logging.getLogger(__name__)

R4 = "R4"
SUBJECT = "opportunity"
# escalations.period is String(32): a stage tag + "@" + the UTC stage entry to the second (14 digits)
# + ":sN" for the Nth resend after a snooze. The entry time alone identifies the stage entry (every
# move restarts it); the tag only makes the row readable.
STAGE_TAG_CHARS = 12
MAX_RESENDS = 99
STAMP_FORMAT = "%Y%m%d%H%M%S"

SOURCE = "销售过程提醒 · 阶段停滞"
TITLE = "商机停滞：{customer}"
TITLE_AGAIN = "再次提醒 · 商机停滞：{customer}"
DESC = "「{stage}」已停留 {held}（上限 {limit}）"
ENTERED = "{held}（{entered} 进入）"
NEXT_MISSING = "进入「{stage}」还需：\n{lines}"
NEXT_READY = "进入「{stage}」的条件已齐，可以推进。"
LAST_STAGE = "已是最后阶段：请确认能否结束这个商机。"
COPY_TEXT = "📌 抄送：{owner} 的商机「{opp}」（{customer}）在「{stage}」已停留 {held}，停滞卡片已发给其主管。"


# ---------------------------------------------------------------- limits per stage


@dataclass(frozen=True)
class StageGroup:
    """Stages sharing one limit: the named ones, or (others=True) every stage without its own limit."""

    hours: float
    stages: tuple[str, ...]
    others: bool = False

    def condition(self) -> ColumnElement[bool]:
        if self.others:
            return Opportunity.stage.not_in(self.stages) if self.stages else true()
        return Opportunity.stage.in_(self.stages)


def stage_groups(rules: RulesSettings) -> list[StageGroup]:
    """One group per distinct limit, so a sweep runs one indexed query per limit, not per stage."""
    default = rules.stage_limit_hours
    special = {stage: hours for stage, hours in rules.stage_limits.items() if hours != default}
    by_hours: dict[float, list[str]] = defaultdict(list)
    for stage, hours in special.items():
        by_hours[hours].append(stage)
    groups = [StageGroup(default, tuple(special), others=True)]
    groups += [StageGroup(hours, tuple(stages)) for hours, stages in by_hours.items()]
    return groups


def limit_hours(rules: RulesSettings, stage: str) -> float:
    return rules.stage_limits.get(stage, rules.stage_limit_hours)


# ---------------------------------------------------------------- periods (Python and SQL agree)


def stage_period(stage: str, entered: datetime) -> str:
    """R4's period: the stage entry ("需求诊断@20261130020000", UTC)."""
    return f"{stage[:STAGE_TAG_CHARS]}@{entered.astimezone(UTC).strftime(STAMP_FORMAT)}"


def resend_period(period: str) -> str | None:
    """The period of the card sent again after `period`'s snooze: base:s1, base:s2, … (None past the cap)."""
    base, _, suffix = period.partition(":s")
    n = int(suffix) + 1 if suffix.isdigit() else 1
    return f"{base}:s{n}" if n <= MAX_RESENDS else None


def _stage_period_sql(dialect: str) -> ColumnElement[str]:
    """`stage_period` of the opportunity row, in SQL (for the anti-join on the escalations' unique index)."""
    col = Opportunity.stage_entered_at
    if dialect == "postgresql":
        stamp: ColumnElement[str] = func.to_char(func.timezone("UTC", col), "YYYYMMDDHH24MISS", type_=String)
    else:  # SQLite keeps naive UTC text ("2026-11-30 02:00:00.000000")
        stamp = func.strftime(STAMP_FORMAT, col, type_=String)
    tag: ColumnElement[str] = func.substr(Opportunity.stage, 1, STAGE_TAG_CHARS, type_=String)
    return tag + literal("@", String) + stamp


def _not_carded(period: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: this stage entry has no R4 escalation yet — as a correlated probe of the escalations' unique
    index per candidate, not `not_fired`'s NOT EXISTS: PostgreSQL turns that into an anti-join and, the
    period being an expression of the outer row, compares every candidate with every R4 escalation
    (measured: 10,000 stalled deals already carded, 4.3 s, even after ANALYZE; this form, 40 ms)."""
    fired = (
        select(func.count()).select_from(Escalation)
        .where(Escalation.rule == R4, Escalation.subject_type == SUBJECT, Escalation.subject_id == Opportunity.id,
               Escalation.period == period)
        .correlate(Opportunity).scalar_subquery()
    )
    return fired == 0


# ---------------------------------------------------------------- R4


class Deal(Protocol):
    """What an R4 card names: an opportunity's columns and its customer's and owner's names (`_deals`)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def stage_entered_at(self) -> datetime: ...
    @property
    def owner_id(self) -> int: ...
    @property
    def customer(self) -> str: ...
    @property
    def owner(self) -> str: ...


def deals_query() -> Select[int, str, str, datetime, int, str, str]:
    """The `Deal` columns, names joined in: plain rows, no ORM objects to build for thousands of deals."""
    return (
        select(Opportunity.id, Opportunity.name, Opportunity.stage, Opportunity.stage_entered_at, Opportunity.owner_id,
               func.coalesce(Customer.name, Opportunity.name).label("customer"),
               func.coalesce(User.name, "").label("owner"))
        .outerjoin(Customer, Customer.id == Opportunity.customer_id)
        .outerjoin(User, User.id == Opportunity.owner_id)
    )


async def run_stalls(deps: Deps, now: datetime) -> int:
    """R4: a card for each open opportunity newly past its stage limit, and the snoozed cards now due again."""
    settings = deps.settings
    fired = 0
    for group in stage_groups(settings.rules):
        fired += await _stalled(deps, now, group, resend=False)
        fired += await _stalled(deps, now, group, resend=True)
    return fired


async def _stalled(deps: Deps, now: datetime, group: StageGroup, *, resend: bool) -> int:
    """One group's stalled deals: not carded yet for this stage entry, or (resend) with a snooze now over."""
    settings = deps.settings
    cutoff = now - timedelta(hours=group.hours)
    period = _stage_period_sql(deps.db.engine.dialect.name)
    due = [Opportunity.status == "open", group.condition(), Opportunity.stage_entered_at <= cutoff]
    order = (Opportunity.stage_entered_at, Opportunity.id)
    if not resend:
        async def pages() -> AsyncIterator[Sequence[Deal]]:
            """Keyset pages of deals with no card for their stage entry (read only: the writes re-check)."""
            key: tuple[datetime, int] | None = None
            while True:
                async with deps.db.sessions() as s:
                    opps: Sequence[Deal] = (await s.execute(
                        deals_query()
                        .where(*due, after_key(key, Opportunity.stage_entered_at, Opportunity.id), _not_carded(period))
                        .order_by(*order).limit(BATCH)
                    )).all()
                if opps:
                    yield opps
                    key = (opps[-1].stage_entered_at, opps[-1].id)
                if len(opps) < BATCH:
                    return

        return await write_batches(deps.db, pages(), lambda s, opps: _send_cards(s, settings, now, opps, {}))
    fired = 0
    key = None
    while True:  # snoozed cards due again: few, and each closes its snoozed escalation in the same transaction
        async with deps.db.transaction() as s:
            rows = (await s.execute(
                deals_query().add_columns(Escalation)
                .join(Escalation, and_(
                    Escalation.rule == R4, Escalation.subject_type == SUBJECT,
                    Escalation.subject_id == Opportunity.id, Escalation.status == "snoozed",
                    Escalation.snoozed_until <= now,
                    or_(Escalation.period == period, Escalation.period.like(period + literal(":s%", String))),
                ))
                .where(*due, after_key(key, Opportunity.stage_entered_at, Opportunity.id)).order_by(*order).limit(BATCH)
            )).all()
            snoozed = {row.id: row.Escalation for row in rows}  # one snoozed card per stage entry at a time
            opps = list({row.id: row for row in rows}.values())
            if opps:
                key = (opps[-1].stage_entered_at, opps[-1].id)
                fired += await _send_cards(s, settings, now, opps, snoozed)
        if len(rows) < BATCH:
            return fired


async def _send_cards(s: AsyncSession, settings: Settings, now: datetime, opps: Sequence[Deal],
                      snoozed: dict[int, Escalation]) -> int:
    """Escalations + card notices for one batch (one transaction); a resend closes the snoozed escalation.

    The card itself is drawn when the notice is sent (`render_cards`, called by jobs/notices.py): one held
    for working hours shows the deal as it is at 09:00, and a burst of thousands of stalls writes a few
    hundred bytes per deal here, not the card twice (notice, then outbox)."""
    people = await People.load(s, settings, opps)
    firings: list[Firing] = []
    sends: dict[int, tuple[str, list[str], str]] = {}
    for opp in opps:
        base = stage_period(opp.stage, opp.stage_entered_at)
        previous = snoozed.get(opp.id)
        period = resend_period(previous.period) if previous is not None else base
        if previous is not None:
            previous.status = "reminded"  # comes back once per snooze (whoever fires the resend)
        if period is None:
            continue
        recipients = await people.stall(opp.owner_id)
        if not recipients:
            log.warning("R4: opportunity %s has no manager, superior or sales ops to tell", opp.id)
        card_to, copy_to = _split_card(recipients)
        task_id = f"r4-{opp.id}-{base.rpartition('@')[2]}-{secrets.token_hex(6)}"
        data = {"opportunity_id": opp.id, "stage": opp.stage, "stage_entered_at": opp.stage_entered_at.isoformat(),
                "card_to": card_to, "base_period": base}
        firings.append(Firing(opp.id, period, recipients, data, task_id))
        sends[opp.id] = ("|".join(card_to), copy_to, _copy_text(opp, now) if copy_to else "")
    repo = EscalationRepo(s)
    new = await repo.fire_many(R4, SUBJECT, firings, now)
    notices: list[dict[str, Any]] = []
    for subject_id, esc_id in new.items():
        card_to_joined, copy_to, copy_text = sends[subject_id]
        if card_to_joined:
            notices.append({"escalation_id": esc_id, "recipient": card_to_joined, "kind": "card"})
        notices += [{"escalation_id": esc_id, "recipient": who, "text": copy_text} for who in copy_to]
    await repo.notify_many(notices, now=now, calendar=calendar_of(settings))
    return len(new)


async def render_cards(s: AsyncSession, settings: Settings, escalations: Sequence[Escalation],
                       now: datetime) -> dict[int, dict[str, Any] | None]:
    """R4 cards drawn at send time, for a batch of escalations: escalation id -> the card with the escalation's
    task_id (the press maps back to it), or None when the deal is gone (the notice is then withdrawn)."""
    ids = {e.subject_id for e in escalations}
    deals = {d.id: d for d in (await s.execute(deals_query().where(Opportunity.id.in_(ids)))).all()} if ids else {}
    actions = await PipelineRepo(s).key_actions(list(deals))
    gates: dict[tuple[str, tuple[tuple[str, ActionState], ...]], str] = {}
    out: dict[int, dict[str, Any] | None] = {}
    for esc in escalations:
        deal = deals.get(esc.subject_id)
        if deal is None or esc.task_id is None:
            out[esc.id] = None
            continue
        states = action_states(actions.get(deal.id, {}))
        gate_key = (deal.stage, tuple(sorted(states.items())))
        if gate_key not in gates:  # deals in one stage with the same key actions share the text
            gates[gate_key] = _next_gate(settings, deal.stage, states)
        out[esc.id] = _card(settings, deal, gates[gate_key], now, esc.task_id, again=":s" in esc.period)
    return out


def _split_card(recipients: list[str]) -> tuple[list[str], list[str]]:
    """Who gets the card in one send ("a|b": one response_code for all) and who a text copy: an outbox
    recipient holds 64 characters, so a superior whose id does not fit is copied by text."""
    card: list[str] = []
    for i, who in enumerate(recipients):
        if card and len("|".join([*card, who])) > RECIPIENT_MAX:
            return card, recipients[i:]
        card.append(who)
    return card, []


def _card(settings: Settings, opp: Deal, next_gate: str, now: datetime, task_id: str, *,
          again: bool) -> dict[str, Any]:
    """The R4 button_interaction card (WeCom's advised lengths: title 36, desc 44, values 30, text 160)."""
    customer = opp.customer
    limit = _hours_label(limit_hours(settings.rules, opp.stage))
    held = _held(now - opp.stage_entered_at)
    entered = opp.stage_entered_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")
    return {
        "card_type": "button_interaction",
        "source": {"desc": SOURCE, "desc_color": 2},
        "main_title": {
            "title": _cut((TITLE_AGAIN if again else TITLE).format(customer=customer), 36),
            "desc": _cut(DESC.format(stage=opp.stage, held=held, limit=limit), 44),
        },
        "horizontal_content_list": [
            {"keyname": "客户", "value": _cut(customer, 30)},
            {"keyname": "商机", "value": _cut(opp.name, 30)},
            {"keyname": "负责人", "value": _cut(opp.owner, 30)},
            {"keyname": "阶段", "value": _cut(opp.stage, 30)},
            {"keyname": "停留", "value": _cut(ENTERED.format(held=held, entered=entered), 30)},
        ],
        "sub_title_text": _cut(next_gate, 160),
        "task_id": task_id,
        "button_list": [{"text": label, "style": style, "key": key} for key, (_, label, style) in R4_BUTTONS.items()],
    }


def _next_gate(settings: Settings, stage: str, states: dict[str, ActionState]) -> str:
    """R6: what entering the next stage still needs (the same rule the stage flow enforces)."""
    funnel = settings.funnel
    target = next_stage(funnel.stages, stage)
    if target is None:
        return LAST_STAGE
    missing = missing_for_move(funnel.stages, funnel.gates, stage, target, states)
    if not missing:
        return NEXT_READY.format(stage=target)
    return NEXT_MISSING.format(stage=target, lines="\n".join(missing_lines(missing)))


def _copy_text(opp: Deal, now: datetime) -> str:
    return COPY_TEXT.format(owner=opp.owner, opp=opp.name, customer=opp.customer, stage=opp.stage,
                            held=_held(now - opp.stage_entered_at))


# ---------------------------------------------------------------- shared


class People:
    """Who hears of a batch's deals: the owners' lines loaded once for the batch (two queries)."""

    def __init__(self, s: AsyncSession, settings: Settings, lines: Lines) -> None:
        self._s, self._settings, self._lines = s, settings, lines
        self._ops: list[str] | None = None

    @classmethod
    async def load(cls, s: AsyncSession, settings: Settings, opps: Sequence[Deal]) -> People:
        return cls(s, settings, await Lines.load(s, {o.owner_id for o in opps}))

    async def stall(self, owner_id: int) -> list[str]:
        """R4: the owner's manager and direct superior (sales ops when the owner has neither)."""
        lines = self._lines
        found = lines.userids([lines.manager.get(owner_id), lines.superior.get(owner_id)])
        return found or await self._sales_ops()

    def silent(self, owner_id: int) -> tuple[list[str], list[str]]:
        """R5: the owner, and the manager (if another person)."""
        owner = self._lines.userids([owner_id])
        return owner, [u for u in self._lines.userids([self._lines.manager.get(owner_id)]) if u not in owner]

    async def _sales_ops(self) -> list[str]:
        if self._ops is None:
            ops = self._settings.org.sales_ops
            found = (await self._s.scalars(select(User.wecom_userid).where(
                User.wecom_userid.in_(ops), User.active.is_(True)))).all() if ops else []
            self._ops = [u for u in found if u]
        return self._ops


def _held(delta: timedelta) -> str:
    hours = max(0, int(delta.total_seconds() // 3600))
    days, rest = divmod(hours, 24)
    if days and rest:
        return f"{days}天{rest}小时"
    return f"{days}天" if days else f"{rest}小时"


def _hours_label(hours: float) -> str:
    return f"{hours:g} 小时"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
