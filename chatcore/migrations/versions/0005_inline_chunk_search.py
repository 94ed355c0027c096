"""On PostgreSQL, each chunk's tsvector is kept in its row rather than in the TOAST table.

Revision ID: 0005_inline_chunk_search
Revises: 0004_documents

Ranking reads every matching chunk's tsvector. Stored out of line (the default for values of a
kilobyte or more), each read is a TOAST lookup: 57 ms over 20,000 chunks of text-like words in
bench/ingest.py, against 25 ms inline. Rewriting the column's value moves existing rows. SQLite is unchanged.
"""

from alembic import op

revision = "0005_inline_chunk_search"
down_revision = "0004_documents"


def upgrade() -> None:
    """Keep chunk.text_fts inline, and move the existing values there."""
    set_storage("MAIN")


def downgrade() -> None:
    """Let chunk.text_fts move out of line again."""
    set_storage("EXTENDED")


def set_storage(storage: str) -> None:
    """Set text_fts's storage and rewrite the rows so that they follow it (a generated column is recomputed)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE chunk ALTER COLUMN text_fts SET STORAGE {storage}")
    op.execute("UPDATE chunk SET text = text")
