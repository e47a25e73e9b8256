"""Who may see whose numbers (R8 rebates, R9 scores, R20 manager views). Pure: `Viewer` is built from the
directory by store/repos/org.py, the handlers ask it before they read anything.

- Everyone sees their own rebate and score.
- A manager sees the people of the teams they manage (a region's manager: every team of the region).
- Finance sees every rebate (they pay them out) and alone releases an R7 freeze; no funnel or score views.
- Sales ops ([org] sales_ops, or the role) see everything.
A refusal never says whether the person or unit asked about exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class View(StrEnum):
    """What a command shows, for the access check."""

    OWN = "own"  # 我的返点, 返点明细, 我的过程分, 申请豁免
    TEAM_REBATE = "team_rebate"  # 团队返点
    TEAM = "team"  # 团队健康度, 漏斗, 4小时率, 跃迁率 (R20)
    RELEASE = "release"  # 释放冻结 (R7, finance only)


@dataclass(frozen=True)
class Viewer:
    """One person's reach: their id, their roles and the units and people they manage."""

    user_id: int
    sales_ops: bool = False
    finance: bool = False
    units: frozenset[int] = frozenset()  # teams and regions managed (a region brings its teams)
    people: frozenset[int] = frozenset()  # members of those teams

    @property
    def manager(self) -> bool:
        return bool(self.units)

    def may(self, view: View) -> bool:
        if view is View.OWN:
            return True
        if view is View.RELEASE:
            return self.finance
        if view is View.TEAM_REBATE:
            return self.sales_ops or self.finance or self.manager
        return self.sales_ops or self.manager

    def sees_everyone(self, view: View) -> bool:
        return self.sales_ops or (view is View.TEAM_REBATE and self.finance)

    def may_see_user(self, view: View, user_id: int) -> bool:
        """Whether a view of `view` may show `user_id`'s numbers."""
        if user_id == self.user_id:
            return True
        if not self.may(view) or view is View.OWN:
            return False
        return self.sees_everyone(view) or user_id in self.people

    def may_see_unit(self, view: View, unit_id: int) -> bool:
        return self.may(view) and view is not View.OWN and (self.sees_everyone(view) or unit_id in self.units)
