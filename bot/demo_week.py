"""The second half of `salesbot demo`: the clock fast-forwards through a working week and the rule sweeps
(issue 4) fire — nudges, the stage-stall card and a manager pressing its button, the Monday stand-up and
its team table — every message still going through the fake WeCom API (R1–R5, R16, R18)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.clock import SHANGHAI, SettableClock
from bot.deps import Deps
from bot.devtools.fake_wecom import FakeWeCom, Message
from bot.devtools.wire import WeComWire

Post = Callable[[str], Awaitable[None]]  # send one inner message through the signed, encrypted callback
MAX_LINES = 9


@dataclass(frozen=True)
class Moment:
    at: datetime
    caption: str


WEEK: tuple[Moment, ...] = (
    Moment(datetime(2026, 11, 30, 14, 0, tzinfo=SHANGHAI), "周一 14:00 —— 例行巡检（每分钟一次，这里只看关键时刻）"),
    Moment(datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI), "周二 10:00"),
    Moment(datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI), "周三 10:00"),
    Moment(datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI), "周四 10:00"),
    Moment(datetime(2026, 12, 5, 22, 0, tzinfo=SHANGHAI), "周六 22:00 —— 非工作时间：提醒先存着，不打扰（R18）"),
    Moment(datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI),
           "下周一 09:00 —— 工作时间开始：存着的提醒一次送达，周会提问发出"),
)


async def play_week(deps: Deps, fake: FakeWeCom, wire: WeComWire, clock: SettableClock, names: dict[str, str],
                    post: Post, show: Callable[[datetime, str, str, bool], None]) -> None:
    """Run the sweeps at each moment and print what reached whom; press the first stall card's button."""
    from jobs.registry import registry

    jobs = registry()
    seen = {userid: fake.delivered_count(userid) for userid in names}
    pressed = False
    print("\n======== 快进一周：流程断了，salesbot 主动出手 ========\n")
    for moment in WEEK:
        clock.set(moment.at)
        print(f"—— {moment.caption}\n")
        await jobs["sweeps"](deps, clock.now())
        await _deliver(deps, clock)
        for userid, message in _new(fake, names, seen):
            show(clock.now(), names.get(userid, userid), _describe(message), True)
            if not pressed and message.msgtype == "template_card" and message.body.get("template_card", {}).get(
                    "task_id", "").startswith("r4"):
                pressed = True
                await _press(deps, fake, wire, clock, names, post, show, userid, message, seen)
    await _standup(deps, fake, wire, clock, names, post, show, seen)


async def _press(deps: Deps, fake: FakeWeCom, wire: WeComWire, clock: SettableClock, names: dict[str, str],
                 post: Post, show: Callable[[datetime, str, str, bool], None], userid: str, message: Message,
                 seen: dict[str, int]) -> None:
    card = message.body["template_card"]
    show(clock.now(), names.get(userid, userid), "[点击卡片按钮] 约陪访", False)
    code = fake.issue_response_code([userid])
    updates_before = len(fake.requests("message/update_template_card"))
    await post(wire.card_event(userid, card["task_id"], "r4:joint_visit", code))
    await _deliver(deps, clock)
    updated = len(fake.requests("message/update_template_card")) - updates_before
    print(f"    （企业微信收到 {updated} 次卡片更新：所有收到这张卡片的人看到的按钮都变成了处理结果）\n")
    for other, reply in _new(fake, names, seen):
        show(clock.now(), names.get(other, other), _describe(reply), True)


async def _standup(deps: Deps, fake: FakeWeCom, wire: WeComWire, clock: SettableClock, names: dict[str, str],
                   post: Post, show: Callable[[datetime, str, str, bool], None], seen: dict[str, int]) -> None:
    """R16: two reps answer the Monday prompt; the team table reaches the manager at 10:00."""
    from jobs.registry import registry

    answers = {
        "zhangsan": "1.鼎新卡在预算审批 2.需要周立新陪访 3.12月11日前解决",
        "lisi": "1.恒通零售卡在竞品比价 2.需要售前支持 3.下周五前解决",
    }
    for userid, text in answers.items():
        if userid not in names:
            continue
        clock.set(clock.now().replace(minute=clock.now().minute + 5))
        show(clock.now(), names[userid], text, False)
        await post(wire.text(userid, text))
        await _deliver(deps, clock)
        for other, reply in _new(fake, names, seen):
            show(clock.now(), names.get(other, other), _describe(reply), True)
    clock.set(datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI))
    print("—— 下周一 10:00 —— 周会汇总表发给主管（R16）\n")
    await registry()["sweeps"](deps, clock.now())
    await _deliver(deps, clock)
    for userid, message in _new(fake, names, seen):
        show(clock.now(), names.get(userid, userid), _describe(message), True)


async def _deliver(deps: Deps, clock: SettableClock) -> None:
    await deps.drain()
    assert deps.sender is not None
    while await deps.sender.run_once(clock.now()):
        pass


def _new(fake: FakeWeCom, names: dict[str, str], seen: dict[str, int]) -> list[tuple[str, Message]]:
    out: list[tuple[str, Message]] = []
    for userid in names:
        delivered = fake.delivered(userid)
        out += [(userid, m) for m in delivered[seen.get(userid, 0):]]
        seen[userid] = len(delivered)
    return out


def _describe(message: Message) -> str:
    if message.content is not None:
        lines = message.content.splitlines()
        return "\n".join(lines[:MAX_LINES] + (["……"] if len(lines) > MAX_LINES else []))
    card = message.body.get("template_card") or {}
    title = (card.get("main_title") or {}).get("title", "")
    desc = (card.get("main_title") or {}).get("desc", "")
    buttons = " / ".join(b.get("text", "") for b in card.get("button_list", []))
    return f"[卡片] {title}\n{desc}" + (f"\n按钮：{buttons}" if buttons else "")
