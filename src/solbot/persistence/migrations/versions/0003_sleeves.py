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


def _balances(owner: str, with_sleeve: bool) -> None:
    """Rebuild ``balances`` with or without the sleeve column (the primary key changes,
    which SQLite cannot alter in place): ``owner``'s rows are the ones kept going back."""
    conn = op.get_bind()
    keys = [sa.Column("sleeve", sa.String(32), primary_key=True)] if with_sleeve else []
    op.create_table(
        "balances_new",
        *keys,
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("free", sa.String(64), nullable=False),
        sa.Column("locked", sa.String(64), nullable=False),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
    )
    if with_sleeve:
        copy = (
            "INSERT INTO balances_new (sleeve, asset, free, locked, updated_ts) "
            "SELECT :owner, asset, free, locked, updated_ts FROM balances"
        )
    else:
        copy = (
            "INSERT INTO balances_new (asset, free, locked, updated_ts) "
            "SELECT asset, free, locked, updated_ts FROM balances WHERE sleeve = :owner"
        )
    conn.execute(sa.text(copy), {"owner": owner})
    op.drop_table("balances")
    op.rename_table("balances_new", "balances")


def _keys(owner: str, to_sleeve: bool) -> None:
    """``last_bar`` <-> ``last_bar:<owner>`` (and the other per-symbol checkpoints)."""
    if not owner:
        return
    for key in SLEEVE_KEYS:
        old, new = (key, f"{key}:{owner}") if to_sleeve else (f"{key}:{owner}", key)
        op.get_bind().execute(
            sa.text("UPDATE kv SET key = :new WHERE key = :old"), {"new": new, "old": old}
        )


def upgrade() -> None:
    owner = _owner(op.get_bind())
    _balances(owner, with_sleeve=True)
    _keys(owner, to_sleeve=True)


def downgrade() -> None:
    owner = _owner(op.get_bind())
    _balances(owner, with_sleeve=False)
    _keys(owner, to_sleeve=False)
