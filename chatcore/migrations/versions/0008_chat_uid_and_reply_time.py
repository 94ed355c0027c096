"""Each chat's stable id, which exports carry so that an import recognises it; when each reply was finished.

Revision ID: 0008_chat_uid_and_reply_time
Revises: 0007_reply_owner

Existing chats get a fresh random id each. When their replies were finished was never recorded, so it
stays unknown (NULL) rather than guessed.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008_chat_uid_and_reply_time"
down_revision = "0007_reply_owner"


def upgrade() -> None:
    """Add chat.uid, filled in for every chat and then required and unique, and message.finished_at."""
    with op.batch_alter_table("chat") as chat:
        chat.add_column(sa.Column("uid", sa.String))
    connection = op.get_bind()
    chat_ids = connection.execute(sa.text("SELECT id FROM chat")).scalars().all()
    if chat_ids:
        fill = sa.text("UPDATE chat SET uid = :uid WHERE id = :id")
        connection.execute(fill, [{"id": chat_id, "uid": str(uuid.uuid4())} for chat_id in chat_ids])
    with op.batch_alter_table("chat") as chat:
        chat.alter_column("uid", existing_type=sa.String, nullable=False)
        chat.create_index("ix_chat_uid", ["uid"], unique=True)
    op.add_column("message", sa.Column("finished_at", sa.DateTime(timezone=True)))  # in place: see 0007


def downgrade() -> None:
    """Drop message.finished_at and chat.uid."""
    with op.batch_alter_table("message") as message:
        message.drop_column("finished_at")
    with op.batch_alter_table("chat") as chat:
        chat.drop_index("ix_chat_uid")
        chat.drop_column("uid")
