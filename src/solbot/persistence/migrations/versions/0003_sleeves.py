"""sleeves: one bot may trade several symbols, each with its own slice of the capital (a
sleeve). Balances get a ``sleeve`` column (the symbol; primary key sleeve + asset) and the
per-symbol checkpoints in ``kv`` become ``<key>:<symbol>``. Orders, fills and positions
already carry their symbol; daily PnL and equity points stay the account's (the sum).

A database written by a single-symbol bot has one position row: its balances and
checkpoints are given to that symbol's sleeve, so the bot resumes where it stopped.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SLEEVE_KEYS = ("last_bar_ts", "last_bar", "initial_quote")


def _owner(conn: sa.Connection) -> str:
    symbols = [r[0] for r in conn.execute(sa.text("SELECT symbol FROM positions"))]
    return symbols[0] if len(symbols) == 1 else ""


def upgrade() -> None:
    conn = op.get_bind()
    owner = _owner(conn)
    op.create_table(
        "balances_v3",
        sa.Column("sleeve", sa.String(32), primary_key=True),
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("free", sa.String(64), nullable=False),
        sa.Column("locked", sa.String(64), nullable=False),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
    )
    conn.execute(
        sa.text(
            "INSERT INTO balances_v3 (sleeve, asset, free, locked, updated_ts) "
            "SELECT :owner, asset, free, locked, updated_ts FROM balances"
        ),
        {"owner": owner},
    )
    op.drop_table("balances")
    op.rename_table("balances_v3", "balances")
    if owner:
        for key in SLEEVE_KEYS:
            conn.execute(
                sa.text("UPDATE kv SET key = :new WHERE key = :old"),
                {"new": f"{key}:{owner}", "old": key},
            )


def downgrade() -> None:
    conn = op.get_bind()
    owner = _owner(conn)
    op.create_table(
        "balances_v2",
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("free", sa.String(64), nullable=False),
        sa.Column("locked", sa.String(64), nullable=False),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
    )
    conn.execute(
        sa.text(
            "INSERT INTO balances_v2 (asset, free, locked, updated_ts) "
            "SELECT asset, free, locked, updated_ts FROM balances WHERE sleeve = :owner"
        ),
        {"owner": owner},
    )
    op.drop_table("balances")
    op.rename_table("balances_v2", "balances")
    if owner:
        for key in SLEEVE_KEYS:
            conn.execute(
                sa.text("UPDATE kv SET key = :old WHERE key = :new"),
                {"new": f"{key}:{owner}", "old": key},
            )
