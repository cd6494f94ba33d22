"""initial schema: orders, fills, balances, positions, daily_pnl, audit_log, kv

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

D = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("quantity", D, nullable=False),
        sa.Column("quote_quantity", D),
        sa.Column("price", D),
        sa.Column("trigger_price", D),
        sa.Column("post_only", sa.Boolean, nullable=False),
        sa.Column("reduce_only", sa.Boolean, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("oco_group", sa.String(64)),
        sa.Column("status", sa.String(24), nullable=False, index=True),
        sa.Column("filled_qty", D, nullable=False),
        sa.Column("fees", D, nullable=False),
        sa.Column("venue_order_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fills",
        sa.Column("trade_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False, index=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", D, nullable=False),
        sa.Column("price", D, nullable=False),
        sa.Column("fee", D, nullable=False),
        sa.Column("fee_asset", sa.String(16), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("realised_pnl", D, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False, index=True),
    )
    op.create_table(
        "balances",
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("free", D, nullable=False),
        sa.Column("locked", D, nullable=False),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "positions",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("qty", D, nullable=False),
        sa.Column("avg_price", D, nullable=False),
        sa.Column("realised_pnl", D, nullable=False),
        sa.Column("fees", D, nullable=False),
    )
    op.create_table(
        "daily_pnl",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("start_equity", D, nullable=False),
        sa.Column("last_equity", D, nullable=False),
        sa.Column("halted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("order_id", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "kv",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ("kv", "audit_log", "daily_pnl", "positions", "balances", "fills", "orders"):
        op.drop_table(table)
