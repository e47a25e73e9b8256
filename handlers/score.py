"""我的过程分, 申请豁免 and 团队健康度 (R9, R11, R20): the weekly process health score explained — its three parts,
the trend, what would raise it most — the exemption a rep earns with three weeks above the threshold, and a
manager's team sorted worst first. Scores are stored per week by the daily `r9-scores` job."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from bot.channels.base import Markdown, Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.filters import Regex
from bot.dispatch.router import HelpEntry, Router
from bot.rules.metrics import last_complete_week, local_day, monday_of, week_label
from bot.rules.score import check_exemption_fields, what_to_fix
from bot.views.scope import Scope
from bot.views.tables import table
from handlers.common import END, SHORT, cached
from handlers.manager import team_scope
from store.models import WeeklyScore
from store.repos.scores import active_for, counts_of, eligible, for_user, grant, team_scores

MY_TITLE = "**我的过程分 · {week}**：**{score}** 分"
PART = "· {label} {share}（{hits}/{total}）× {weight}"
NONE_DUE = "· {label} 本周无到期项，按满分计"
TREND = "近几周：{trend}"
FIXES = "**提分建议**"
FIX = "{n}. {text}"
PERFECT = "本周没有可扣分的地方，保持住 👍"
NO_SCORE = "还没有你的过程分：每天早上统计一次，明早再来看看。"
THIS_WEEK = "本周进行中：{score} 分（截至今早）"
EXEMPT_NOW = "本周已豁免：{fields}"
EXEMPT_HINT = "已连续 {n} 周高于 {threshold} 分，可发「申请豁免 时长 地点」免填下周最多 {max} 项非核心字段。"
NOT_ELIGIBLE = "豁免需要连续 {n} 周过程分高于 {threshold} 分（最近：{recent}），继续加油！"
GRANTED = "✅ 已为你豁免下周（{week}）的：{fields}。客户和结论仍然必填。"
ASK_FIELDS = "想豁免哪些字段？可选：{known}（最多 {max} 项），例如「申请豁免 时长 地点」。"
TEAM_TITLE = "**团队健康度 · {scope} · {week}**（最低分在前）"
TEAM_NONE = "{week} 还没有过程分：每天早上统计一次。"
PART_LABELS = {"completion": "完成率", "timeliness": "及时率", "completeness": "完整率"}
# R11: what a rep types for each field (English ids in the config).
FIELD_WORDS = {"时长": "duration", "时间": "duration", "地点": "location", "位置": "location", "定位": "location",
               "联系人": "contact", "对接人": "contact", "关键词": "keywords", "标签": "keywords",
               "客户": "customer", "结论": "conclusion"}
FIELD_LABELS = {"duration": "时长", "location": "地点", "contact": "联系人", "keywords": "关键词",
                "customer": "客户", "conclusion": "结论"}
TREND_WEEKS = 6

router = Router(name="score", help=(
    HelpEntry("查看我的过程健康分和提分建议", "我的过程分"),
    HelpEntry("主管：看团队每个人的过程分", "团队健康度"),
))

MY = SHORT + r"(?:我的)?(?:过程(?:健康)?分|健康分|过程得分)(?:多少|怎么样)?" + END
EXEMPT = SHORT + r"申请(?:下周)?豁免(?P<fields>.*)$"
TEAM = SHORT + r"团队(?:过程分|健康度|健康分)(?:\s+(?P<target>\S.*?))?" + END


def _label(fields: list[str] | tuple[str, ...]) -> str:
    return "、".join(FIELD_LABELS.get(f, f) for f in fields)


@router.handle(Regex(MY))
async def my_score(ctx: Context) -> Reply:
    """R9: the last complete week's score with its parts, the trend, what to fix; this week so far; R11."""
    assert ctx.user is not None
    user_id = ctx.user.id

    async def build() -> str:
        settings = ctx.settings.score
        last = last_complete_week(ctx.now)
        rows = await for_user(ctx.session, user_id, TREND_WEEKS + 1, until=local_day(ctx.now))
        done = [r for r in rows if r.week_start <= last]
        if not done:
            return NO_SCORE
        row = done[-1]
        counts = counts_of(row)
        lines = [MY_TITLE.format(week=_week(row), score=row.score)]
        for part, label in PART_LABELS.items():
            hits, total = counts.ratio(part)
            lines.append(PART.format(label=label, share=f"{getattr(row, part):.0%}", hits=hits, total=total,
                                     weight=settings.weights.of(part)) if total else NONE_DUE.format(label=label))
        if len(done) > 1:
            lines.append(TREND.format(trend=" → ".join(f"{r.score}" for r in done[-TREND_WEEKS:])))
        fixes = what_to_fix(counts, settings)
        lines += [FIXES, *(FIX.format(n=i, text=f.text) for i, f in enumerate(fixes, 1))] if fixes else [PERFECT]
        current = [r for r in rows if r.week_start == monday_of(local_day(ctx.now))]
        if current:
            lines.append(THIS_WEEK.format(score=current[0].score))
        exemption = await active_for(ctx.session, user_id, ctx.now)
        if exemption is not None:
            lines.append(EXEMPT_NOW.format(fields=_label(exemption.fields)))
        if await eligible(ctx.session, user_id, ctx.now, settings):
            rule = settings.exemption
            lines.append(EXEMPT_HINT.format(n=rule.streak_weeks, threshold=rule.threshold, max=rule.max_fields))
        return "\n".join(lines)

    return Markdown(await cached(ctx, ("score", user_id), build))


def _week(row: WeeklyScore) -> str:
    end = row.week_start + timedelta(days=6)
    return f"{row.week_start:%m-%d}～{end:%m-%d}"


@router.handle(Regex(EXEMPT))
async def ask_exemption(ctx: Context, fields: str = "") -> Reply:
    """R11: three complete weeks above the threshold → next week's exemption from up to 3 non-core fields."""
    assert ctx.user is not None
    settings = ctx.settings.score
    rule = settings.exemption
    if not await eligible(ctx.session, ctx.user.id, ctx.now, settings):
        rows = await for_user(ctx.session, ctx.user.id, rule.streak_weeks, until=last_complete_week(ctx.now))
        return Text(NOT_ELIGIBLE.format(n=rule.streak_weeks, threshold=rule.threshold,
                                        recent=" → ".join(str(r.score) for r in rows) or "暂无"))
    words = [w for w in re.split(r"[\s,，、和及]+", fields) if w]
    known = _label(rule.exemptable_fields)
    if not words:
        return Text(ASK_FIELDS.format(known=known, max=rule.max_fields))
    try:
        chosen = check_exemption_fields([FIELD_WORDS.get(w, w) for w in words], settings)
    except ValueError as exc:  # the rule names fields by their config ids: say them as the rep does
        message = str(exc)
        for field_id, label in FIELD_LABELS.items():
            message = re.sub(rf"(?<![a-z_]){field_id}(?![a-z_])", label, message)
        return Text(message)
    week = monday_of(local_day(ctx.now)) + timedelta(days=7)
    await grant(ctx.session, ctx.user.id, week, chosen, ctx.now)
    return Text(GRANTED.format(week=week_label(week), fields=_label(chosen)))


@router.handle(Regex(TEAM))
async def team_health(ctx: Context, target: str | None = None) -> Reply:
    """R20: each of the scope's reps with score and parts for the last complete week, worst first."""
    scope = await team_scope(ctx, "团队健康度", target)
    if not isinstance(scope, Scope):
        return scope

    async def build() -> str:
        week = last_complete_week(ctx.now)
        people = scope.people
        scores = await team_scores(ctx.session, people, week)
        label = f"{week:%m-%d}～{week + timedelta(days=6):%m-%d}"
        if not scores:
            return TEAM_NONE.format(week=label)
        ordered = sorted(scores.values(), key=lambda r: (r.score, people.get(r.user_id, "")))
        rows = [(people.get(r.user_id, str(r.user_id)), str(r.score), _pct(r.completion), _pct(r.timeliness),
                 _pct(r.completeness)) for r in ordered]
        return "\n".join([TEAM_TITLE.format(scope=scope.title, week=label),
                          table(("销售", "总分", "完成", "及时", "完整"), rows)])

    return Markdown(await cached(ctx, ("health", scope.title, scope.owners, scope.level), build))


def _pct(value: Decimal) -> str:
    return f"{value:.0%}"

