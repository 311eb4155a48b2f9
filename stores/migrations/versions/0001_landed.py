"""The schema of the landed main (commit 754b349), before schema versions existed.

A store that main wrote has some or all of these tables and no version table: this revision creates
only the tables it lacks, so such a store upgrades in place. Columns are spelled out here, not taken
from tables.py, because a revision must keep describing the schema as it was.

Revision ID: 0001_landed
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_landed"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)  # what stores.tables.UTCDateTime stores


def _tables() -> dict[str, tuple]:
    S, I, F, T = sa.String, sa.Integer, sa.Float, sa.Text
    return {
        "runs": (
            sa.Column("id", S(32), nullable=False), sa.Column("pipeline", S(), nullable=False),
            sa.Column("status", S(16), nullable=False), sa.Column("input", T(), nullable=False),
            sa.Column("output", T()), sa.Column("error", T()), sa.Column("trial", I()),
            sa.Column("started_at", _TIME, nullable=False), sa.Column("finished_at", _TIME),
            sa.PrimaryKeyConstraint("id", name="pk_runs"),
        ),
        "calls": (
            sa.Column("id", I(), autoincrement=True, nullable=False), sa.Column("run_id", S(32)),
            sa.Column("node_id", S()), sa.Column("backend", S(), nullable=False), sa.Column("model", S(), nullable=False),
            sa.Column("n", I(), nullable=False), sa.Column("prompt_tokens", I(), nullable=False),
            sa.Column("completion_tokens", I(), nullable=False), sa.Column("cost_usd", F()), sa.Column("saved_usd", F()),
            sa.Column("latency_ms", F(), nullable=False), sa.Column("status", S(16), nullable=False),
            sa.Column("error", T()), sa.Column("attempts", I(), nullable=False), sa.Column("cached", sa.Boolean(), nullable=False),
            sa.Column("trial", I()), sa.Column("created_at", _TIME, nullable=False),
            sa.Column("prompt_hash", S(64)), sa.Column("response_hash", S(64)),
            sa.PrimaryKeyConstraint("id", name="pk_calls"),
        ),
        "texts": (
            sa.Column("hash", S(64), nullable=False), sa.Column("body", T(), nullable=False),
            sa.PrimaryKeyConstraint("hash", name="pk_texts"),
        ),
        "cache": (
            sa.Column("key", S(64), nullable=False), sa.Column("sample", I(), nullable=False),
            sa.Column("backend", S(), nullable=False), sa.Column("model", S(), nullable=False),
            sa.Column("text", T(), nullable=False), sa.Column("logprobs", sa.JSON(none_as_null=True)),
            sa.Column("prompt_tokens", I(), nullable=False), sa.Column("completion_tokens", I(), nullable=False),
            sa.Column("cost_usd", F()), sa.Column("created_at", _TIME, nullable=False),
            sa.PrimaryKeyConstraint("key", "sample", name="pk_cache"),
        ),
        "evals": (
            sa.Column("id", S(64), nullable=False), sa.Column("pipeline", S(), nullable=False),
            sa.Column("benchmark", S(), nullable=False), sa.Column("settings", sa.JSON(), nullable=False),
            sa.Column("trial", I()), sa.Column("created_at", _TIME, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_evals"),
        ),
        "eval_results": (
            sa.Column("eval_id", S(64), nullable=False), sa.Column("item_id", S(), nullable=False),
            sa.Column("run_id", S(32)), sa.Column("status", S(16), nullable=False), sa.Column("score", F()),
            sa.Column("raw", sa.JSON(none_as_null=True)), sa.Column("output", T()), sa.Column("error", T()),
            sa.Column("latency_ms", F(), nullable=False), sa.Column("prompt_tokens", I(), nullable=False),
            sa.Column("completion_tokens", I(), nullable=False), sa.Column("cost_usd", F()),
            sa.Column("calls", I(), nullable=False), sa.Column("cached_calls", I(), nullable=False),
            sa.Column("created_at", _TIME, nullable=False),
            sa.PrimaryKeyConstraint("eval_id", "item_id", name="pk_eval_results"),
        ),
    }


_INDEXES = {"runs": ("ix_runs_started_at", ["started_at"]), "calls": ("ix_calls_run_id", ["run_id"])}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, parts in _tables().items():
        if name in existing:
            continue
        op.create_table(name, *parts)
        if name in _INDEXES:
            op.create_index(_INDEXES[name][0], name, _INDEXES[name][1])


def downgrade() -> None:
    for name in reversed(list(_tables())):
        op.drop_table(name)
