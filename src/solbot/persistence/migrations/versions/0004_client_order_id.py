"""orders.client_order_id: the id the venue knows an order by, recorded with its intent.

Live client ids carry a salt new at every start (so a restored or reset database cannot meet
the exchange's records of orders an earlier run sent); an order restored from the database is
looked up and cancelled by the id it was sent with. Rows written before this revision have
none: they were sent as ``solbot-<order id>``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("client_order_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("client_order_id")
