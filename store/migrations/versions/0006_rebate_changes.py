"""rebate changes (R8: a rep's rebate inputs' version, written by triggers on contracts, payments, bonus freezes
and customers, so every writer is seen)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 17:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The reps a changed row concerns: SQL over the row (NEW / OLD; SQLite, per row) or over the statement's
# transition table (PostgreSQL, per statement).
# Each yields (the rep, the contract concerned): a reader holding a rep's contracts re-reads just those.
SQLITE_OWNERS = {
    "contracts": "SELECT {row}.owner_id, {row}.id",
    "payments": "SELECT owner_id, id FROM contracts WHERE id = {row}.contract_id",
    "bonus_freezes": "SELECT {row}.user_id, {row}.contract_id",
    "customers": "SELECT owner_id, id FROM contracts WHERE customer_id = {row}.id",
}
PG_OWNERS = {
    "contracts": "SELECT owner_id, id FROM {rows}",
    "payments": "SELECT c.owner_id, c.id FROM {rows} r JOIN contracts c ON c.id = r.contract_id",
    "bonus_freezes": "SELECT user_id, contract_id FROM {rows}",
    "customers": "SELECT c.owner_id, c.id FROM {rows} r JOIN contracts c ON c.customer_id = r.id",
}


def upgrade() -> None:
    op.create_table('rebate_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('contract_id', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rebate_changes'))
    )
    op.create_index('ix_rebate_changes_user_id_id', 'rebate_changes', ['user_id', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _pg_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table, owners in SQLITE_OWNERS.items():
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("NEW", "OLD")), ("DELETE", ("OLD",))):
            body = " ".join(f"INSERT INTO rebate_changes (user_id, contract_id) SELECT * FROM "
                            f"({owners.format(row=row)}) WHERE 1;" for row in rows)
            op.execute(f"CREATE TRIGGER trg_{table}_{event.lower()}_rebate AFTER {event} ON {table} "
                       f"FOR EACH ROW BEGIN {body} END")


def _pg_triggers() -> None:
    # Statement-level, with transition tables: one insert per statement, however many rows it touched.
    for table, owners in PG_OWNERS.items():
        for event, tables in (("INSERT", ("new_rows",)), ("UPDATE", ("new_rows", "old_rows")),
                              ("DELETE", ("old_rows",))):
            name = f"trg_{table}_{event.lower()}_rebate"
            union = " UNION ".join(owners.format(rows=t) for t in tables)
            op.execute(f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO rebate_changes (user_id, contract_id)
                    SELECT DISTINCT o.owner, o.contract FROM ({union}) AS o(owner, contract)
                    WHERE o.owner IS NOT NULL;
                    RETURN NULL;
                END $$""")
            referencing = " ".join(
                f"{'NEW' if t == 'new_rows' else 'OLD'} TABLE AS {t}" for t in tables)
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    for table in SQLITE_OWNERS:
        for event in ("insert", "update", "delete"):
            name = f"trg_{table}_{event}_rebate"
            op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if op.get_bind().dialect.name ==
                                                            "postgresql" else ""))
            if op.get_bind().dialect.name == "postgresql":
                op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index('ix_rebate_changes_user_id_id', table_name='rebate_changes')
    op.drop_table('rebate_changes')
