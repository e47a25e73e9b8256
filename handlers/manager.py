"""R20 manager views in chat: 漏斗 [区域/团队/人], 4小时率, 跃迁率 and 团队健康度 — markdown tables that read on a
phone, no staler than `[views] max_staleness_s` (the cache is cleared by every write, bot/views/cache.py).

Who sees what (bot/rules/access.py): a manager their own teams, sales ops everything, a rep a polite refusal;
asking about a unit or person out of reach answers exactly as for one that does not exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.channels.base import Markdown, Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.filters import Regex
from bot.dispatch.router import HelpEntry, Router
from bot.rules.access import View
from bot.rules.metrics import (
    Rate,
    Transitions,
    day_bounds,
    last_complete_week,
    local_day,
    responded,
    week_bounds,
    week_label,
)
from bot.views.scope import Scope, resolve
from bot.views.tables import money, percent, table
from handlers.common import END, SHORT, cached
from handlers.pipeline import pipeline_reply
from store.repos.org import OrgRepo
from store.repos.transitions import rep_transitions
from store.repos.views import Signed, StageCell, ViewRepo

REFUSED = "「{what}」是给主管和销售运营看的团队视图哦。你可以发「我的商机」「我的返点」看自己的情况。"
NOT_FOUND = "没有找到你可以查看的「{target}」。可以发区域、团队或销售的名字，例如「漏斗 华东」。"
FUNNEL_TITLE = "**漏斗 · {scope}**（进行中 {n} 个，{amount}）"
SILENT = "静默"
SIGNED = "本月新签（已签约且法务审批）：{n} 个，{amount}"
DRILL = "再发「漏斗 {example}」看下一层。"
GOLDEN_TITLE = "**{hours}小时响应率 · {scope}**（目标 {target}）"
BELOW = " ⚠️"
BY_TEAM = "**按团队（近 {days} 天）**"
BY_REP = "**按销售**"
BY_REP_DAYS = "**按销售（近 {days} 天）**"
BY_UNIT = "**按团队**"
NO_LEADS = "近 {days} 天没有新线索。"
TRANS_TITLE = "**阶段跃迁率 · {scope}**（目标 {target}；到期未推进的商机中，当周推进到下一阶段的比例）"
TRANS_NONE = "最近两周没有到期需要推进的商机。"
TRANS_WEEKS = 2
GOLDEN_DAYS = 7

router = Router(name="manager", help=(
    HelpEntry("主管：看团队漏斗（可按区域、团队、销售下钻）", "漏斗 华东"),
    HelpEntry("主管：看线索 4 小时响应率", "4小时率"),
    HelpEntry("主管：看各阶段跃迁成功率", "跃迁率"),
))

FUNNEL = SHORT + r"(?:看看?)?(?:销售)?漏斗(?:\s+(?P<target>\S.*?))?" + END
GOLDEN = SHORT + r"(?:黄金)?(?:4|四)\s*小时(?:响应)?率?(?:\s+(?P<target>\S.*?))?" + END
TRANSITIONS = SHORT + r"(?:阶段)?(?:跃迁|转化|推进)(?:成功)?率(?:\s+(?P<target>\S.*?))?" + END


async def team_scope(ctx: Context, what: str, target: str | None,
                     own: Callable[[Context], Awaitable[Reply]] | None = None) -> Scope | Reply:
    """The viewer's scope for a team view, or the refusal / not-found reply; `own`: what someone without a
    team view gets instead of the refusal when they name no target."""
    assert ctx.user is not None
    org = OrgRepo(ctx.session)
    viewer = await org.viewer(ctx.user, ctx.settings.org)
    if not viewer.may(View.TEAM):
        if own is not None and not target:
            return await own(ctx)
        ctx.read_only = True
        return Text(REFUSED.format(what=what))
    found = await resolve(org, viewer, (target or "").strip())
    if found is None:
        ctx.read_only = True
        return Text(NOT_FOUND.format(target=target))
    return found


def _key(scope: Scope) -> tuple[object, ...]:
    return (scope.title, scope.owners, scope.level)


@router.handle(Regex(FUNNEL))
async def funnel(ctx: Context, target: str | None = None) -> Reply:
    """R20: stage distribution (count and amount) of the scope, R10 signings this month, and one level down."""
    scope = await team_scope(ctx, "漏斗", target, own=pipeline_reply)  # a rep's bare "漏斗": their pipeline
    if not isinstance(scope, Scope):
        return scope

    async def build() -> str:
        cells = await ViewRepo(ctx.session).funnel(scope.owners)
        start, end = _month(ctx.now)
        signed = await ViewRepo(ctx.session).signed(scope.owners, start, end)
        return render_funnel(ctx.settings.funnel.stages, scope, cells, signed)

    return Markdown(await cached(ctx, ("funnel", *_key(scope)), build))


@dataclass
class _Tally:
    n: int = 0
    amount: Decimal = Decimal(0)

    def add(self, n: int, amount: Decimal) -> None:
        self.n += n
        self.amount += amount


def render_funnel(stages: Iterable[str], scope: Scope, cells: list[StageCell], signed: list[Signed]) -> str:
    by_stage = {stage: _Tally() for stage in stages}
    silent = _Tally()
    groups: defaultdict[str, _Tally] = defaultdict(_Tally)
    for c in cells:
        if c.status == "silent":
            silent.add(c.count, c.amount)
            continue
        by_stage.setdefault(c.stage, _Tally()).add(c.count, c.amount)
        if (name := scope.group_of(c.owner_id, c.team_id)) is not None:
            groups[name].add(c.count, c.amount)
    total = _Tally()
    for t in by_stage.values():
        total.add(t.n, t.amount)
    rows = [(stage, str(t.n), money(t.amount, compact=True)) for stage, t in by_stage.items() if t.n]
    if silent.n:
        rows.append((SILENT, str(silent.n), money(silent.amount, compact=True)))
    lines = [FUNNEL_TITLE.format(scope=scope.title, n=total.n, amount=money(total.amount, compact=True)),
             table(("阶段", "个数", "金额"), rows or [("—", "0", money(Decimal(0)))]),
             SIGNED.format(n=sum(s.count for s in signed),
                           amount=money(sum((s.amount for s in signed), Decimal(0)), compact=True))]
    if scope.level is not None and groups:
        ordered = sorted(groups.items(), key=lambda kv: (-kv[1].amount, kv[0]))
        lines.append(BY_UNIT if scope.level == "team" else BY_REP)
        lines.append(table(("团队" if scope.level == "team" else "销售", "个数", "金额"),
                           [(name, str(t.n), money(t.amount, compact=True)) for name, t in ordered]))
        lines.append(DRILL.format(example=ordered[0][0]))
    return "\n".join(lines)


def _month(now: datetime) -> tuple[datetime, datetime]:
    day = local_day(now).replace(day=1)
    start, _ = day_bounds(day)
    following = (day + timedelta(days=32)).replace(day=1)
    return start, day_bounds(following)[0]


@router.handle(Regex(GOLDEN))
async def golden(ctx: Context, target: str | None = None) -> Reply:
    """R2 / R20: the golden-4-hour rate of the scope per day (last 7 days) and per team or rep."""
    scope = await team_scope(ctx, "4小时率", target)
    if not isinstance(scope, Scope):
        return scope
    m = ctx.settings.metrics

    async def build() -> str:
        today = local_day(ctx.now)
        first = today - timedelta(days=GOLDEN_DAYS - 1)
        start, _ = day_bounds(first)
        _, end = day_bounds(today)
        leads = await ViewRepo(ctx.session).leads(start, end, assignees=scope.owners, regions=scope.regions)
        if not leads:
            return "\n".join([GOLDEN_TITLE.format(hours=f"{m.golden_hours:g}", scope=scope.title,
                                                  target=percent(m.golden_rate)), NO_LEADS.format(days=GOLDEN_DAYS)])
        days: dict[str, list[int]] = {(first + timedelta(days=i)).strftime("%m-%d"): [0, 0] for i in range(GOLDEN_DAYS)}
        groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for times, assignee, team in leads:
            hit = int(responded(times, m.golden_hours))
            cell = days[local_day(times.created_at).strftime("%m-%d")]
            cell[0], cell[1] = cell[0] + hit, cell[1] + 1
            name = scope.group_of(assignee, team) if assignee is not None else None
            if name is not None:
                groups[name][0] += hit
                groups[name][1] += 1
        rows = [(day, str(n), str(hits), _rate(Rate(hits, n), m.golden_rate)) for day, (hits, n) in days.items() if n]
        lines = [GOLDEN_TITLE.format(hours=f"{m.golden_hours:g}", scope=scope.title, target=percent(m.golden_rate)),
                 table(("日期", "新线索", "按时", "响应率"), rows)]
        if groups:
            lines.append((BY_TEAM if scope.level == "team" else BY_REP_DAYS).format(days=GOLDEN_DAYS))
            lines.append(table(("团队" if scope.level == "team" else "销售", "线索", "响应率"),
                               [(name, str(n), _rate(Rate(hits, n), m.golden_rate))
                                for name, (hits, n) in sorted(groups.items(), key=lambda kv: (kv[1][0] / kv[1][1],
                                                                                              kv[0]))]))
        return "\n".join(lines)

    return Markdown(await cached(ctx, ("golden", *_key(scope)), build))


def _rate(rate: Rate, target: float) -> str:
    return percent(rate.rate) + (BELOW if rate.below(target) else "")


@router.handle(Regex(TRANSITIONS))
async def transition_rates(ctx: Context, target: str | None = None) -> Reply:
    """R12 / R20: per stage, moved / due for the last two complete weeks, and the last week per team or rep."""
    scope = await team_scope(ctx, "跃迁率", target)
    if not isinstance(scope, Scope):
        return scope
    settings = ctx.settings
    target_rate = settings.metrics.transition_rate

    async def build() -> str:
        last = last_complete_week(ctx.now)
        mondays = [last - timedelta(days=7 * i) for i in range(TRANS_WEEKS)]  # the week just ended first
        per_rep = await rep_transitions(ctx.session, settings.funnel.stages, settings.rules.stage_limit,
                                        [week_bounds(d) for d in mondays], scope.owners)
        title = TRANS_TITLE.format(scope=scope.title, target=percent(target_rate))
        if not per_rep:
            return "\n".join([title, TRANS_NONE])
        weeks = [Transitions() for _ in mondays]
        groups: defaultdict[str, Transitions] = defaultdict(Transitions)
        for owner, counts in per_rep.items():
            for total, week in zip(weeks, counts, strict=True):
                total.merge(week)
            if (name := scope.group_of(owner, scope.team_of(owner))) is not None:
                groups[name].merge(counts[0])
        labels = [week_label(d)[-3:] for d in mondays]
        stages = [st for st in settings.funnel.stages if any(st in w.by_stage for w in weeks)]
        rows = [(st, *(_share(w.by_stage.get(st), target_rate) for w in weeks)) for st in stages]
        rows.append(("合计", *(_share(w.overall, target_rate) for w in weeks)))
        lines = [title, table(("阶段", *labels), rows)]
        if groups:
            lines.append(f"**{'按团队' if scope.level == 'team' else '按销售'}（{labels[0]}）**")
            ordered = sorted(groups.items(), key=lambda kv: ((kv[1].overall.rate or 0), kv[0]))
            lines.append(table(("团队" if scope.level == "team" else "销售", "跃迁率"),
                               [(name, _share(t.overall, target_rate)) for name, t in ordered]))
        return "\n".join(lines)

    return Markdown(await cached(ctx, ("transitions", *_key(scope)), build))


def _share(rate: Rate | None, target: float) -> str:
    if rate is None or not rate.total:
        return "—"
    return f"{_rate(rate, target)} {rate.hits}/{rate.total}"
