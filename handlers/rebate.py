"""我的返点 / 返点明细 / 团队返点 / 冻结列表 / 解冻 (R8, R7, R10): a rep sees exactly where they stand, a
manager their team, finance every rep and the R7 freezes they alone release.

The numbers come from the pure engine (bot/rules/rebate) over the rep's contracts (store/repos/contracts.py),
served from the view cache (R20 freshness) and recomputed after any write.
"""

from __future__ import annotations

from decimal import Decimal

from bot.channels.base import Markdown, Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.filters import Regex
from bot.dispatch.router import HelpEntry, Router
from bot.rules.access import View, Viewer
from bot.rules.rebate import RepSummary, Template, progress_bar, summarize
from bot.views.tables import money, table
from handlers.common import END, SHORT, cached
from store.models import AuditLog, User
from store.repos.contracts import ContractRepo, Version
from store.repos.org import OrgRepo

TITLE = "**我的返点 · {template} · {period}**"
BAR = "{bar}"
TIER = "本期合格签约 {total}，下一档 {threshold}（{rate}）"
TOP_TIER = "本期合格签约 {total}，已在最高档（{rate}）"
EARNED = "✅ 已到账返点：本期 {period}，累计 {total}"
PENDING = "⏳ 待回款返点：{amount}（回款后到账）"
FROZEN = "🧊 冻结 {amount}（{month}）：{causes}"
RECEIVABLE = "📥 应收未回：{amount}"
PAYOUT = "📅 预计发放：{on} 发 {payable}"
PAYOUT_HELD = "（另有 {frozen} 冻结）"
BEST = "💡 优先催收「{label}」{receivable}：到账后多得 {gain}{rules}"
BEST_RULES = "（满足 {rules}）"
NOTHING = "你还没有计入返点的合同（合同需已签约且法务审批通过）。"
DETAIL_TITLE = "**返点明细 · {template}**（{n} 个合同）"
DETAIL_MORE = "……只列出金额最大的 {n} 个"
RULES_LINE = "{label}：{rules}"
TEAM_TITLE = "**团队返点 · {period}**（{n} 人）"
TEAM_EMPTY = "你管理的团队里还没有人。"
REFUSED = "这个查询只对主管、财务和销售运营开放哦。你可以发「我的返点」看自己的返点。"
FREEZES_TITLE = "**冻结中的超额奖金**（{n} 笔，R7）"
FREEZES_EMPTY = "现在没有冻结中的奖金。"
FREEZES_LINE = "#{id} {owner}｜{customer}｜{month}｜{reason}"
RELEASE_HINT = "发「解冻 #编号」或「解冻 客户名」释放。"
RELEASE_REFUSED = "解冻只能由财务操作。"
RELEASE_NOT_FOUND = "没有找到冻结中的「{target}」。发「冻结列表」看编号。"
RELEASED = "已解冻 {n} 笔：{names}。相关销售的超额奖金恢复发放。"
RELEASED_NOTICE = "🔓 财务已解冻你 {month} 的超额奖金（{customer}）。"
DETAIL_LIMIT = 20
TEAM_LIMIT = 30

router = Router(name="rebate", help=(
    HelpEntry("查看我的返点（进度、已到账、待回款、冻结）", "我的返点"),
    HelpEntry("逐个合同看返点怎么算的", "返点明细"),
))

MY = (SHORT + r"(?:(?:我的|我|查一?下|看看)?(?:返点|提成)(?:多少|有多少|是多少|进度|情况|怎么样了?|到哪了)?"
      r"|my\s+rebates?|rebate)" + END)
DETAIL = SHORT + r"(?:我的)?(?:返点|提成)(?:明细|详情|清单|怎么算的?)" + END
TEAM = SHORT + r"团队(?:返点|提成)" + END
FREEZES = SHORT + r"(?:冻结列表|冻结清单|查看冻结)" + END
RELEASE = SHORT + r"(?:解冻|释放冻结|释放)\s*(?P<target>.+)$"


async def _viewer(ctx: Context) -> Viewer:
    assert ctx.user is not None
    return await OrgRepo(ctx.session).viewer(ctx.user, ctx.settings.org)


async def _summary(ctx: Context, user_id: int) -> RepSummary:
    """R8 at ctx.now. The rep's contracts stay in memory per rebate version (the view cache's books); when the
    version moved, only the contracts named by the changes are read again (all of them when unsure)."""
    repo = ContractRepo(ctx.session)
    books = ctx.views.books if ctx.views is not None else None
    version = await repo.version(user_id)
    held = books.entry(user_id) if books is not None else None
    if held is not None and held[0] == version:
        book = held[1]
    else:  # read after the version: at least as new as the version says
        changed = await repo.changed_since(user_id, held[0], version) if held is not None and isinstance(
            held[0], Version) else None
        if held is None or changed is None:
            book = await repo.book(user_id)
        else:
            book = held[1].refreshed(changed, await repo.book(user_id, changed))
        if books is not None:
            books.put(user_id, version, book)
    return summarize(ctx.settings.rebate, user_id, book.contracts, book.payments, book.freezes, ctx.now)


@router.handle(Regex(MY))
async def my_rebate(ctx: Context) -> Reply:
    """R8: one message — progress bar, earned / pending / frozen, receivables, payout date, best move."""
    assert ctx.user is not None
    user_id = ctx.user.id

    async def build() -> str:
        return render_summary(await _summary(ctx, user_id), ctx.settings.rebate.template)

    return Markdown(await cached(ctx, ("rebate", user_id), build))


def render_summary(s: RepSummary, template: Template) -> str:
    if not (s.qualifying_total or s.earned_to_date or s.pending or s.receivables or s.frozen):
        return NOTHING
    lines = [TITLE.format(template=s.template, period=s.period.label)]
    rate = _pct(s.tier_rate)
    if s.next_threshold is None:
        lines.append(TOP_TIER.format(total=money(s.qualifying_total), rate=rate))
    else:
        lines.append(TIER.format(total=money(s.qualifying_total), threshold=money(s.next_threshold),
                                 rate=_pct(_next_rate(s, template))))
    lines.append(BAR.format(bar=progress_bar(s.progress)))
    lines.append(EARNED.format(period=money(s.earned_period), total=money(s.earned_to_date)))
    if s.pending:
        lines.append(PENDING.format(amount=money(s.pending)))
    for part in s.frozen:
        causes = "；".join(c.reason if c.label in c.reason else f"{c.label} {c.reason}" for c in part.causes)
        lines.append(FROZEN.format(amount=money(part.amount), month=part.month, causes=causes))
    if s.receivables:
        lines.append(RECEIVABLE.format(amount=money(s.receivables)))
    payout = s.next_payout
    if payout is not None:
        held = PAYOUT_HELD.format(frozen=money(payout.frozen)) if payout.frozen else ""
        lines.append(PAYOUT.format(on=payout.on.strftime("%m-%d"), payable=money(payout.payable)) + held)
    best = s.best_move
    if best is not None and best.total > 0:
        rules = BEST_RULES.format(rules="、".join(best.rules)) if best.rules else ""
        lines.append(BEST.format(label=best.label, receivable=money(best.receivable), gain=money(best.total),
                                 rules=rules))
    return "\n".join(lines)


def _next_rate(s: RepSummary, template: Template) -> Decimal:
    tiers = template.tiers
    return tiers[s.tier + 1].rate if s.tier + 1 < len(tiers) else s.tier_rate


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


@router.handle(Regex(DETAIL))
async def rebate_detail(ctx: Context) -> Reply:
    """R8: each contract with its rate and the rules that applied (largest first)."""
    assert ctx.user is not None
    user_id = ctx.user.id

    async def build() -> str:
        s = await _summary(ctx, user_id)
        return render_detail(s)

    return Markdown(await cached(ctx, ("rebate-detail", user_id), build))


def render_detail(s: RepSummary) -> str:
    lines_ = sorted(s.lines, key=lambda ln: (-ln.amount, ln.contract_id))
    if not lines_:
        return NOTHING
    shown = lines_[:DETAIL_LIMIT]
    rows = [(ln.label, money(ln.amount), f"{ln.paid_ratio:.0%}", _pct(ln.rate), money(ln.earned), money(ln.pending))
            for ln in shown]
    out = [DETAIL_TITLE.format(template=s.template, n=len(lines_)),
           table(("合同", "金额", "回款", "费率", "已得", "待得"), rows)]
    explained = [RULES_LINE.format(label=ln.label, rules=f"第{ln.tier + 1}档 {_pct(ln.tier_rate)} + "
                                   + "、".join(ln.rules)) for ln in shown if ln.rules]
    out += explained
    if len(lines_) > DETAIL_LIMIT:
        out.append(DETAIL_MORE.format(n=DETAIL_LIMIT))
    return "\n".join(out)


@router.handle(Regex(TEAM))
async def team_rebate(ctx: Context) -> Reply:
    """R8 for a manager's people (finance and sales ops: everyone); a rep is refused politely."""
    viewer = await _viewer(ctx)
    if not viewer.may(View.TEAM_REBATE):
        return Text(REFUSED)

    async def build() -> str:
        people = await _people(ctx, viewer)
        if not people:
            return TEAM_EMPTY
        summaries = [(u, await _summary(ctx, u.id)) for u in people]
        summaries.sort(key=lambda us: (-us[1].earned_period, us[0].name))
        period = summaries[0][1].period.label
        rows = [(u.name, money(s.earned_period), money(s.pending), money(s.frozen_total), progress_bar(s.progress, 5))
                for u, s in summaries[:TEAM_LIMIT]]
        return "\n".join([TEAM_TITLE.format(period=period, n=len(summaries)),
                          table(("销售", "本期已得", "待回款", "冻结", "进度"), rows)])

    return Markdown(await cached(ctx, ("team-rebate", viewer), build))


async def _people(ctx: Context, viewer: Viewer) -> list[User]:
    """Whose rebate the viewer may see: everyone active for finance and sales ops, else their teams."""
    org = OrgRepo(ctx.session)
    if viewer.sees_everyone(View.TEAM_REBATE):
        return await org.everyone()
    return [u for u in await org.members(viewer.units) if viewer.may_see_user(View.TEAM_REBATE, u.id)]


@router.handle(Regex(FREEZES))
async def freezes(ctx: Context) -> Reply:
    """R7: finance sees every freeze, a manager their people's, a rep their own."""
    viewer = await _viewer(ctx)
    repo = ContractRepo(ctx.session)
    if viewer.finance or viewer.sales_ops:
        rows = await repo.active_freezes()
    else:
        rows = [r for r in await repo.active_freezes() if viewer.may_see_user(View.TEAM_REBATE, r[0].user_id)]
    ctx.read_only = True
    if not rows:
        return Text(FREEZES_EMPTY)
    lines = [FREEZES_TITLE.format(n=len(rows))]
    lines += [FREEZES_LINE.format(id=f.id, owner=owner, customer=customer or f"合同#{f.contract_id}", month=f.month,
                                  reason=f.reason) for f, owner, customer in rows]
    if viewer.finance:
        lines.append(RELEASE_HINT)
    return Markdown("\n".join(lines))


@router.handle(Regex(RELEASE))
async def release(ctx: Context, target: str) -> Reply:
    """R7: finance releases a freeze by its number ("解冻 #12") or every freeze of a customer; audited, and
    the rep is told."""
    assert ctx.user is not None
    viewer = await _viewer(ctx)
    if not viewer.may(View.RELEASE):
        return Text(RELEASE_REFUSED)
    target = target.strip()
    repo = ContractRepo(ctx.session)
    active = await repo.active_freezes()
    number = target.lstrip("#＃")
    chosen = [f for f, _, _ in active if number.isdigit() and f.id == int(number)] or \
             [f for f, _, customer in active if customer and customer == target]
    if not chosen:
        return Text(RELEASE_NOT_FOUND.format(target=target))
    released = await repo.release([f.id for f in chosen], ctx.user.id, ctx.now)
    names = {f.id: (owner, customer) for f, owner, customer in active}
    for f in released:
        ctx.session.add(AuditLog(actor_id=ctx.user.id, action="release_bonus_freeze", subject_type="bonus_freeze",
                                 subject_id=f.id, detail={"contract_id": f.contract_id, "month": f.month},
                                 at=ctx.now))
        owner = await ctx.session.get(User, f.user_id)
        if owner is not None and owner.wecom_userid and owner.active:
            ctx.send(owner.wecom_userid, Text(RELEASED_NOTICE.format(month=f.month, customer=names[f.id][1])))
    return Text(RELEASED.format(n=len(released), names="、".join(f"#{f.id} {names[f.id][0]}" for f in released)))
