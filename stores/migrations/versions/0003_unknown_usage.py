"""Token counts may be unknown: a server that reports no usage leaves them NULL, never 0.

Calls, cached samples and eval results used to require their token counts; they now hold NULL
when the server did not say (and the cost is then unknown too). SQLite rebuilds the three tables
(batch mode); PostgreSQL drops the NOT NULL constraints in place.

Revision ID: 0003_unknown_usage
Revises: 0002_run_liveness
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_unknown_usage"
down_revision = "0002_run_liveness"
branch_labels = None
depends_on = None

_COLUMNS = {"calls": ("prompt_tokens", "completion_tokens"), "cache": ("prompt_tokens", "completion_tokens"),
            "eval_results": ("prompt_tokens", "completion_tokens")}


def upgrade() -> None:
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    for table, columns in _COLUMNS.items():
        for column in columns:  # unknown becomes 0 again: what the older schema could hold
            op.execute(sa.text(f"UPDATE {table} SET {column} = 0 WHERE {column} IS NULL"))
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer(), nullable=False)
