"""Eval results carry a per-item ``detail``: what a run says about its answer beyond the score.

``{"abstained": true}`` when the output node answered nothing, ``{"selected": "passed"}`` when the
answer was picked as passing the visible tests or a verifier (so a wrong one is a false positive),
``{"samples": n}`` for the samples adaptive nodes drew. NULL in rows written before.

Revision ID: 0004_eval_detail
Revises: 0003_unknown_usage
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_eval_detail"
down_revision = "0003_unknown_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eval_results") as batch:
        batch.add_column(sa.Column("detail", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_results") as batch:
        batch.drop_column("detail")
