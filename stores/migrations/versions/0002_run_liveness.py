"""Runs record where they run (host, pid) and when they were last known alive (heartbeat_at).

A run left 'running' by a process that died is marked 'interrupted' when a store next opens
(``Store.mark_interrupted``): on its own host when its process is gone, elsewhere when its heartbeat
is stale. Runs written before this revision have NULLs here and are judged by their start time.
The status index keeps that check, run at every open, off a scan of all runs.

Revision ID: 0002_run_liveness
Revises: 0001_landed
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_run_liveness"
down_revision = "0001_landed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns only: main's code can still write to an upgraded store while both run.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("host", sa.String()))
        batch.add_column(sa.Column("pid", sa.Integer()))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_runs_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status")
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid")
        batch.drop_column("host")
