"""Replies owned in the database: the app instance writing each reply, its lease, and a stop asked for by any instance.

Revision ID: 0007_reply_owner
Revises: 0006_summaries_and_vectors

A reply left `streaming` by an older version has no lease: it counts as one whose owner died, and is
marked interrupted by the first instance that starts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_reply_owner"
down_revision = "0006_summaries_and_vectors"
STREAMING_ONLY = "status = 'streaming'"


def upgrade() -> None:
    """Add the owner, lease and stop columns to message, and an index of the replies being written."""
    # Added in place, not by a batch: rebuilding the table on SQLite would drop its full-text index's triggers.
    op.add_column("message", sa.Column("owner", sa.String, nullable=False, server_default=""))
    op.add_column("message", sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.add_column("message", sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index(
        "ix_message_streaming",
        "message",
        ["chat_id"],
        sqlite_where=sa.text(STREAMING_ONLY),
        postgresql_where=sa.text(STREAMING_ONLY),
    )


def downgrade() -> None:
    """Drop the index and the columns."""
    op.drop_index("ix_message_streaming", "message")
    with op.batch_alter_table("message") as batch:
        for name in ("stop_requested", "lease_until", "owner"):
            batch.drop_column(name)
