"""Measured token counts, learned characters per token, and each chat's rolling memory.

Revision ID: 0002_context
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_context"
down_revision = "0001"


def upgrade() -> None:
    """Add the memory columns to chats and token counts to messages; count finished replies by eval_count."""
    with op.batch_alter_table("chat") as chat:
        chat.add_column(sa.Column("memory", sa.String, nullable=False, server_default=""))
        chat.add_column(sa.Column("memory_until", sa.Integer))
        chat.add_column(sa.Column("memory_enabled", sa.Boolean, nullable=False, server_default=sa.true()))
    with op.batch_alter_table("message") as message:
        message.add_column(sa.Column("tokens", sa.Integer))
    op.execute("UPDATE message SET tokens = reply_tokens WHERE role = 'assistant' AND status = 'complete'")
    op.create_table(
        "token_ratio",
        sa.Column("model", sa.String, primary_key=True),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop the token ratios, token counts and memory columns."""
    op.drop_table("token_ratio")
    with op.batch_alter_table("message") as message:
        message.drop_column("tokens")
    with op.batch_alter_table("chat") as chat:
        chat.drop_column("memory_enabled")
        chat.drop_column("memory_until")
        chat.drop_column("memory")
