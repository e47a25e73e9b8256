"""Users import: directory people, their team, direct superior and the units they manage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import RowMapping

from store.importing import messages as m
from store.importing.base import KindImporter, Plan, Row, RowProblem, UserPending, chunked
from store.importing.orgs import OrgPending
from store.importing.spec import USERS
from store.importing.tables import table_of
from store.importing.values import shown
from store.models import OrgUnit, User

_UNIQUE = ("wecom_userid", "dingtalk_staff_id")
_PLAIN = ("name", "roles", "wecom_userid", "dingtalk_staff_id", "mobile", "email", "active")

Node = int | tuple[str, str]  # a stored user's id, or ("new", external_id) for a user this run creates


class UsersImporter(KindImporter):
    """Upsert users. A superior may be created by a later row of the same file (written first)."""

    spec = USERS
    table = table_of(User)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        t = self.table
        everyone = (
            await self.session.execute(
                select(t.c.id, t.c.external_id, t.c.wecom_userid, t.c.dingtalk_staff_id, t.c.superior_id)
            )
        ).mappings()
        self.by_ext: dict[str, int] = {}
        self.owner_of: dict[str, dict[str, RowMapping]] = {col: {} for col in _UNIQUE}
        self.superior_of: dict[int, int | None] = {}
        for u in everyone:
            if u["external_id"]:
                self.by_ext[u["external_id"]] = u["id"]
            for col in _UNIQUE:
                if u[col]:
                    self.owner_of[col][u[col]] = u
            self.superior_of[u["id"]] = u["superior_id"]
        # Users synced from WeCom carry no external_id yet: a row with their wecom_userid adopts them.
        wecom_ids = sorted({r.value("wecom_userid") for r in rows if r.value("wecom_userid")})
        self.adoptable: dict[str, RowMapping] = {}
        for part in chunked(wecom_ids, 500):
            found = await self.session.execute(select(t).where(t.c.wecom_userid.in_(part), t.c.external_id.is_(None)))
            self.adoptable.update({u["wecom_userid"]: u for u in found.mappings()})
        self.in_file = {r.ext for r in rows}
        self.claims: dict[str, dict[Any, int]] = {col: {} for col in (*_UNIQUE, "manages")}
        await self.orgs.load(self.session)
        paths = [r.value("team") for r in rows if r.value("team")]
        self.orgs.expect_regions([*paths, *(text for r in rows for text in r.value("manages") or ())])

    def plan(self, row: Row) -> Plan:
        existing = self.existing.get(row.ext)
        target: dict[str, Any] = {}
        if existing is None and row.value("wecom_userid") in self.adoptable:
            existing = self.adoptable.pop(row.value("wecom_userid"))
            target["external_id"] = row.ext
        for col in _PLAIN:
            if row.has(col):
                target[col] = row.value(col)
        self._check_unique(row, existing)
        if row.has("team"):
            target["team_id"] = self.org("team", row.value("team"))
        extra: dict[str, Any] = {}
        extra_changed = False
        if row.has("superior"):
            superior = self._superior(row)
            if isinstance(superior, UserPending):
                extra["superior"] = superior
                extra_changed = True
            else:
                target["superior_id"] = superior
        if row.has("manages"):
            units = [self.org("manages", text) for text in row.value("manages")]
            wanted = [u for u in units if u is not None]
            for unit in wanted:
                first = self.claims["manages"].get(unit)
                if first is not None:
                    label = self.orgs.label(unit) if isinstance(unit, int) else f"{unit.region}/{unit.team or ''}"
                    raise RowProblem("manages", m.MANAGES_TAKEN_IN_FILE.format(value=shown(label), first=first))
            extra["claimed"] = wanted
            current = self.orgs.managed_by(int(existing["id"])) if existing is not None else set()
            if any(isinstance(u, OrgPending) for u in wanted) or set(wanted) != current:
                extra_changed = True
                extra["manages"] = wanted
                extra["orgs"] = wanted
        plan = self.build(row, target, existing, extra=extra, extra_changed=extra_changed)
        for col in _UNIQUE:
            if row.value(col):
                self.claims[col][row.value(col)] = row.line
        for unit in extra.pop("claimed", ()):  # every unit the row names, changed or not
            self.claims["manages"][unit] = row.line
        return plan

    def _check_unique(self, row: Row, existing: RowMapping | None) -> None:
        for col in _UNIQUE:
            value = row.value(col)
            if not value:
                continue
            owner = self.owner_of[col].get(value)
            if owner is not None and (existing is None or owner["id"] != existing["id"]):
                other = owner["external_id"] or f"#{owner['id']}"
                raise RowProblem(col, m.ID_TAKEN.format(value=shown(value), other=shown(other)))
            first = self.claims[col].get(value)
            if first is not None:
                raise RowProblem(col, m.ID_TAKEN_IN_FILE.format(value=shown(value), first=first))

    def _superior(self, row: Row) -> int | UserPending | None:
        value = row.value("superior")
        if value is None:
            return None
        if value == row.ext:
            raise RowProblem("superior", m.SELF_SUPERIOR)
        if value in self.by_ext:
            return self.by_ext[value]
        if value in self.in_file:
            return UserPending(value)
        raise RowProblem("superior", m.UNKNOWN_USER.format(value=shown(value)))

    # ------------------------------------------------------------ superiors: no cycles, superiors first

    def order(self, plans: list[Plan], errors: list[tuple[Plan, RowProblem]]) -> list[Plan]:
        """Drop rows that would close a superior cycle; put new superiors before their reports."""
        parent: dict[Node, Node | None] = {k: v for k, v in self.superior_of.items()}
        node_of: dict[int, Node] = {}
        for p in plans:
            node: Node = p.row_id if p.row_id is not None else ("new", p.row.ext)
            node_of[id(p)] = node
            pending = p.extra.get("superior")
            if isinstance(pending, UserPending):
                parent[node] = ("new", pending.external_id)
            elif "superior_id" in p.values:
                parent[node] = p.values["superior_id"]
            elif p.row_id is None:
                parent[node] = None
        cyclic = _on_cycles(parent)
        by_ext = {p.row.ext: p for p in plans}
        ordered: list[Plan] = []
        state: dict[str, bool] = {}  # external_id -> placed (True) or failed (False)
        for p in plans:
            chain: list[Plan] = []
            cur: Plan | None = p
            while cur is not None and cur.row.ext not in state and cur not in chain:
                chain.append(cur)
                pending = cur.extra.get("superior")
                cur = by_ext.get(pending.external_id) if isinstance(pending, UserPending) else None
            for q in reversed(chain):
                pending = q.extra.get("superior")
                if node_of[id(q)] in cyclic:
                    errors.append((q, RowProblem("superior", m.SUPERIOR_CYCLE)))
                    state[q.row.ext] = False
                elif isinstance(pending, UserPending) and not state.get(pending.external_id, False):
                    failed = m.SUPERIOR_FAILED.format(value=shown(pending.external_id))
                    errors.append((q, RowProblem("superior", failed)))
                    state[q.row.ext] = False
                else:
                    ordered.append(q)
                    state[q.row.ext] = True
        return ordered

    # ------------------------------------------------------------ writing

    async def after_write(self, plans: Sequence[Plan], new_ids: dict[str, int]) -> None:
        superiors: list[dict[str, Any]] = []
        for p in plans:
            pending = p.extra.get("superior")
            if isinstance(pending, UserPending):
                sup = new_ids.get(pending.external_id, self.ids.get(pending.external_id))
                if sup is None:
                    raise RowProblem("superior", m.SUPERIOR_FAILED.format(value=shown(pending.external_id)))
                superiors.append({"b_id": p.row_id, "v_sup": sup})
        if superiors:
            t = self.table
            stmt = update(t).where(t.c.id == bindparam("b_id")).values(superior_id=bindparam("v_sup"))
            await self.session.execute(stmt, superiors)
        for p in plans:
            if "manages" in p.extra:
                await self._set_managed(int(p.row_id or 0), [self.orgs.id_of(u) for u in p.extra["manages"]])

    async def _set_managed(self, user_id: int, unit_ids: list[int]) -> None:
        """The listed units get this manager; units no longer listed lose them."""
        o = table_of(OrgUnit)
        if unit_ids:
            await self.session.execute(update(o).where(o.c.id.in_(unit_ids)).values(manager_id=user_id))
        await self.session.execute(
            update(o).where(o.c.manager_id == user_id, o.c.id.not_in(unit_ids)).values(manager_id=None)
        )


def _on_cycles(parent: dict[Node, Node | None]) -> set[Node]:
    """Nodes that lie on a cycle of the parent (superior) graph: each node has at most one parent."""
    done: set[Node] = set()
    cyclic: set[Node] = set()
    for start in parent:
        path: list[Node] = []
        index: dict[Node, int] = {}
        cur: Node | None = start
        while cur is not None and cur not in done and cur not in index:
            index[cur] = len(path)
            path.append(cur)
            cur = parent.get(cur)
        if cur is not None and cur in index:
            cyclic.update(path[index[cur] :])
        done.update(path)
    return cyclic
