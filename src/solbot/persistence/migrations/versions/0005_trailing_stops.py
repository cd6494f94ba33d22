"""orders.trailing_bps: a stop that trails the best price since it was placed by this many basis
points (Binance ``trailingDelta``, ``faqs/trailing-stop-faq.md``), recorded with its intent so
a restart re-protects a position with the same kind of stop. Rows before this revision have
none (fixed stops).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("trailing_bps", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("trailing_bps")
