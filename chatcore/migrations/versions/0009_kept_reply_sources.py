"""Reply sources keep the passage they were given: deleting a document no longer rewrites the replies that cited it.

Revision ID: 0009_kept_reply_sources
Revises: 0008_chat_uid_and_reply_time

A source pointed at its chunk and was deleted with the chunk's document. It now holds the document's
name, kind and content hash, the page and the passage's text, and links to the document by its hash:
a deleted document is one no longer stored, and adding the same file again links it back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_kept_reply_sources"
down_revision = "0008_chat_uid_and_reply_time"


def upgrade() -> None:
    """Rebuild reply_source holding each passage as given, copied from the chunks and documents it points at."""
    op.create_table(
        "reply_source_kept",
        sa.Column("message_id", sa.Integer, sa.ForeignKey("message.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("label", sa.Integer, primary_key=True),
        sa.Column("document_sha256", sa.String, nullable=False),
        sa.Column("document_name", sa.String, nullable=False),
        sa.Column("document_kind", sa.String, nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("text", sa.String, nullable=False),
    )
    op.execute(
        "INSERT INTO reply_source_kept (message_id, label, document_sha256, document_name, document_kind, page, text) "
        "SELECT reply_source.message_id, reply_source.label, document.sha256, document.name, document.kind, "
        "chunk.page, chunk.text FROM reply_source JOIN chunk ON chunk.id = reply_source.chunk_id "
        "JOIN document ON document.id = chunk.document_id"
    )
    op.drop_table("reply_source")
    op.rename_table("reply_source_kept", "reply_source")


def downgrade() -> None:
    """Point each source at its chunk again; the sources of deleted documents go, as they did before."""
    op.create_table(
        "reply_source_linked",
        sa.Column("message_id", sa.Integer, sa.ForeignKey("message.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("chunk.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("label", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO reply_source_linked (message_id, chunk_id, label) "
        "SELECT reply_source.message_id, MIN(chunk.id), reply_source.label FROM reply_source "
        "JOIN document ON document.sha256 = reply_source.document_sha256 "
        "JOIN chunk ON chunk.document_id = document.id AND chunk.page = reply_source.page "
        "AND chunk.text = reply_source.text GROUP BY reply_source.message_id, reply_source.label"
    )
    op.drop_table("reply_source")
    op.rename_table("reply_source_linked", "reply_source")
    op.create_index("ix_reply_source_chunk_id", "reply_source", ["chunk_id"])
