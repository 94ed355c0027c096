"""Documents, their chunks with a full-text index, library attachments, and the chunks each reply used.

Revision ID: 0004_documents
Revises: 0003_search

The chunk index is built like the message index of 0003_search: an external-content FTS5 table kept
in step by triggers on SQLite. On PostgreSQL to_tsvector('simple', text) is stored in a generated column
with a GIN index: ranking reads it instead of parsing every matching chunk again (3.5 s to 40 ms in
bench/ingest.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_documents"
down_revision = "0003_search"

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE chunk_fts USING fts5("
    "text, content='chunk', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chunk_fts_insert AFTER INSERT ON chunk BEGIN "
    "INSERT INTO chunk_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER chunk_fts_delete AFTER DELETE ON chunk BEGIN "
    "INSERT INTO chunk_fts(chunk_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER chunk_fts_update AFTER UPDATE OF text ON chunk BEGIN "
    "INSERT INTO chunk_fts(chunk_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO chunk_fts(rowid, text) VALUES (new.id, new.text); END",
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER chunk_fts_update",
    "DROP TRIGGER chunk_fts_delete",
    "DROP TRIGGER chunk_fts_insert",
    "DROP TABLE chunk_fts",
]
POSTGRES_UPGRADE = [
    "ALTER TABLE chunk ADD COLUMN text_fts tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED",
    "CREATE INDEX ix_chunk_text_fts ON chunk USING GIN (text_fts)",
]
POSTGRES_DOWNGRADE = ["DROP INDEX ix_chunk_text_fts", "ALTER TABLE chunk DROP COLUMN text_fts"]


def upgrade() -> None:
    """Create the document, chunk, attachment and reply source tables, and the chunk search index."""
    op.create_table(
        "document",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chat_id", sa.Integer, sa.ForeignKey("chat.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("sha256", sa.String, nullable=False, unique=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_document_chat_id", "document", ["chat_id"])
    op.create_table(
        "chunk",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("document.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("start", sa.Integer, nullable=False),
        sa.Column("end", sa.Integer, nullable=False),
        sa.Column("text", sa.String, nullable=False),
    )
    op.create_index("ix_chunk_document_id_ordinal", "chunk", ["document_id", "ordinal"])
    create_link_tables()
    for statement in SQLITE_UPGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_UPGRADE:
        op.execute(statement)


def create_link_tables() -> None:
    """The chat-to-library-document and reply-to-chunk tables."""
    op.create_table(
        "document_attachment",
        sa.Column("chat_id", sa.Integer, sa.ForeignKey("chat.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("document.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_document_attachment_document_id", "document_attachment", ["document_id"])
    op.create_table(
        "reply_source",
        sa.Column("message_id", sa.Integer, sa.ForeignKey("message.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("chunk.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("label", sa.Integer, nullable=False),
    )
    op.create_index("ix_reply_source_chunk_id", "reply_source", ["chunk_id"])


def downgrade() -> None:
    """Drop the search index and the four tables."""
    for statement in SQLITE_DOWNGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWNGRADE:
        op.execute(statement)
    for table in ("reply_source", "document_attachment", "chunk", "document"):
        op.drop_table(table)
