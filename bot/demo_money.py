"""The third part of `salesbot demo`: money and measures (issue 5) — 我的返点 before and after a payment arrives
through the JSON API, a bonus frozen by an overdue receivable (R7), 我的过程分 after the daily scoring job, and
a manager's 团队健康度 and 漏斗 华东 (R8, R9, R20). Every question still goes through the real callback wire."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bot.clock import SettableClock
from bot.demo_week import Post, _deliver, _new
from bot.deps import Deps
from bot.devtools.fake_wecom import FakeWeCom
from bot.devtools.wire import WeComWire

PutJson = Callable[[str, Any], Awaitable[int]]  # PUT /api/v1/<kind> with a JSON body -> HTTP status
Show = Callable[[datetime, str, str, bool], None]


async def play_money(deps: Deps, fake: FakeWeCom, wire: WeComWire, clock: SettableClock, names: dict[str, str],
                     post: Post, put_json: PutJson, show: Show) -> None:
    from jobs.registry import registry

    seen = {userid: fake.delivered_count(userid) for userid in names}

    async def say(userid: str, text: str) -> None:
        if userid not in names:
            return
        clock.advance(timedelta(minutes=2))
        show(clock.now(), names[userid], text, False)
        await post(wire.text(userid, text))
        await _deliver(deps, clock)
        for other, message in _new(fake, names, seen):
            show(clock.now(), names.get(other, other), message.content or f"[{message.msgtype}]", True)

    print("\n======== 钱和过程：返点实时算，过程分讲得清（R7–R11，R20） ========\n")
    print("—— 王五有一单 50 万的合同回了一半款，还有一单 9 月签的合同逾期未回款（R7 已冻结超额奖金）\n")
    await say("wangwu", "我的返点")
    clock.advance(timedelta(minutes=5))
    status = await put_json("payments", [{"external_id": "P-DEMO-1", "contract": "K001", "amount": "250000",
                                          "received_at": clock.now().isoformat()}])
    print(f"—— 财务系统通过 API 推送一笔回款：K001 尾款 ¥250,000（HTTP {status}）"
          "——签约 17 天回清，满足「大单快回款」\n")
    await say("wangwu", "我的返点")
    await say("wangwu", "返点明细")
    await say("zhengmin", "冻结列表")
    print("—— 每天早上统计过程健康分（R9）：关键动作完成率、及时率、附件完整率\n")
    await registry()["r9-scores"](deps, clock.now())
    await say("zhangsan", "我的过程分")
    await say("manager_hd", "团队健康度")
    await say("manager_hd", "漏斗 华东")
    await say("zhangsan", "漏斗 华东")
