"""equity_points: the account's equity after each bar, for the dashboard's equity and
drawdown chart across restarts (the newest ~2,000 are kept)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "equity_points",
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("equity", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("equity_points")
