"""Access (R8, R9, R20): every actor of a 12-person company × every view command × every target. No reply
shows a name (person or customer) of someone the actor may not see; replies come through the real wire.

Who may see whom (bot/rules/access.py): everyone themselves; a manager the people of their team; finance
every rebate and freeze; sales ops everything. The oracle below is written from that rule, not from code."""

from __future__ import annotations

import os
from datetime import timedelta

from bot.clock import SettableClock
from store.db import Database
from tests.flows.org12 import FINANCE, OPS, ORG, TEAMS, seed_company
from tests.harness import running_bot

OWN = ("我的返点", "返点明细", "我的过程分")
REBATE_VIEWS = ("团队返点", "冻结列表")
TEAM_VIEWS = ("漏斗", "4小时率", "跃迁率", "团队健康度")  # each also takes a region, team or person
# The default run asks 漏斗 of every unit and person and the other team views of every unit and one rep per
# team (12 × 32 messages); SALESBOT_ACCESS_FULL=1 asks every team view of every target (12 × 61), as
# .ci/run does on SQLite.
FULL = os.environ.get("SALESBOT_ACCESS_FULL") == "1"


async def test_no_reply_leaks_anyone_the_actor_may_not_see(db_url: str, db: Database, clock: SettableClock) -> None:
    co = await seed_company(db, clock)
    everyone = list(co.ids)
    units = ["华东", *TEAMS]
    people = [co.names[u] for u in co.team_of]  # reps and managers
    one_per_team = [co.names[reps[0][0]] for _, (_, _, reps) in TEAMS.items()]
    others = (*units, *people) if FULL else (*units, *one_per_team)
    commands = [*OWN, *REBATE_VIEWS, *TEAM_VIEWS, *(f"漏斗 {target}" for target in (*units, *people)),
                *(f"{view} {target}" for view in TEAM_VIEWS[1:] if FULL or view != "跃迁率" for target in others)]

    def visible(actor: str, command: str) -> set[str]:
        """The userids whose names/customers `actor` may see in the reply to `command`."""
        mine = {actor}
        if command in OWN:
            return mine
        view_is_rebate = command in REBATE_VIEWS
        if actor == OPS[0] or (actor == FINANCE[0] and view_is_rebate):
            return set(co.team_of) | mine
        if actor in co.manager_of_team.values():
            team = co.team_of[actor]
            return mine | {u for u, t in co.team_of.items() if t == team}
        return mine

    def names_of(userid: str) -> set[str]:
        return {co.names[userid], *co.customers.get(userid, [])}

    async with running_bot(db_url, clock, run_sender=False, overrides=ORG) as bot:
        await bot.run_job("r9-scores")
        checked = 0
        for actor in everyone:
            for command in commands:
                bot.clock.advance(timedelta(seconds=3))  # WeCom takes 30 messages a minute per person
                before = len(bot.fake.delivered(actor))
                await bot.say(actor, command)
                await bot.settle()
                replies = bot.texts(actor)[before:]
                assert len(replies) == 1, (actor, command, replies)
                reply = replies[0]
                allowed = visible(actor, command)
                for other in co.team_of:
                    if other in allowed:
                        continue
                    for name in names_of(other) - {command.split(" ", 1)[-1]}:
                        assert name not in reply, f"{co.names[actor]} sent {command!r} and saw {name!r}:\n{reply}"
                shown = {other for other in allowed - {actor} if co.names[other] in reply}
                if command == "团队返点" and actor in co.manager_of_team.values():
                    assert shown == allowed - {actor}, (actor, reply)  # and it does show whom it may
                checked += 1
        assert checked == len(everyone) * len(commands) == 12 * (61 if FULL else 32)


