"""What a team view covers (R20): the viewer's own reach, or the region, team or person they name — only if
within reach (bot/rules/access.py). One level down is named for the drill-down: a region by team, a team by
rep."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.rules.access import View, Viewer
from store.repos.org import OrgRepo, Unit

ALL = "全公司"
MINE = "我的团队"


@dataclass(frozen=True)
class Scope:
    title: str
    owners: frozenset[int] | None  # None: everyone (sales ops with no target)
    level: str | None  # the breakdown: "team", "rep" or None (one person)
    regions: frozenset[int] | None = None  # R2: regions whose unassigned leads count too (None: all)
    teams: dict[int, str] = field(default_factory=dict, compare=False, hash=False)
    people: dict[int, str] = field(default_factory=dict, compare=False, hash=False)
    team_ids: dict[int, int] = field(default_factory=dict, compare=False, hash=False)  # person -> team

    def team_of(self, owner_id: int) -> int | None:
        return self.team_ids.get(owner_id)

    def team_name(self, team_id: int | None) -> str | None:
        return self.teams.get(team_id) if team_id is not None else None

    def group_of(self, owner_id: int, team_id: int | None) -> str | None:
        """The breakdown row an owner's numbers go to."""
        if self.level == "team":
            return self.team_name(team_id)
        if self.level == "rep":
            return self.people.get(owner_id)
        return None


async def resolve(org: OrgRepo, viewer: Viewer, target: str) -> Scope | None:
    """The scope of a team view for `target` ("" = the viewer's reach), or None when it names nothing the
    viewer may see (a refusal and "no such unit" read the same)."""
    units = await org.units()
    by_id = {u.id: u for u in units}
    if not target:
        if viewer.sees_everyone(View.TEAM):
            teams = [u for u in units if u.kind == "team"]
            return await _of_teams(org, ALL, teams, None, level="team", everyone=True)
        mine = [by_id[i] for i in sorted(viewer.units) if i in by_id]
        teams = [u for u in mine if u.kind == "team"]
        regions = frozenset(u.id for u in mine if u.kind == "region")
        return await _of_teams(org, MINE, teams, regions, level="team" if len(teams) > 1 else "rep")
    for unit in units:
        if unit.name == target and viewer.may_see_unit(View.TEAM, unit.id):
            if unit.kind == "region":
                teams = [u for u in units if u.parent_id == unit.id and u.kind == "team"]
                return await _of_teams(org, unit.name, teams, frozenset({unit.id}), level="team")
            return await _of_teams(org, unit.name, [unit], frozenset(), level="rep")
    for person in await org.by_name(target):
        if viewer.may_see_user(View.TEAM, person.id):
            return Scope(person.name, frozenset({person.id}), None, frozenset(), people={person.id: person.name})
    return None


async def _of_teams(org: OrgRepo, title: str, teams: list[Unit], regions: frozenset[int] | None, *,
                    level: str, everyone: bool = False) -> Scope:
    members = await org.members([t.id for t in teams])
    return Scope(title, None if everyone else frozenset(m.id for m in members), level, regions,
                 teams={t.id: t.name for t in teams}, people={m.id: m.name for m in members},
                 team_ids={m.id: m.team_id for m in members if m.team_id is not None})
