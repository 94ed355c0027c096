"""Full-text search over message content: FTS5 on SQLite, a GIN expression index on PostgreSQL.

Revision ID: 0003_search
Revises: 0002_context

On SQLite the index is an external-content FTS5 table kept in step by triggers; a later batch
migration that rebuilds the message table must recreate those triggers.
"""

from alembic import op

revision = "0003_search"
down_revision = "0002_context"

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE message_fts USING fts5("
    "content, content='message', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO message_fts(rowid, content) SELECT id, content FROM message",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, content) VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF content ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, content) VALUES ('delete', old.id, old.content); "
    "INSERT INTO message_fts(rowid, content) VALUES (new.id, new.content); END",
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER message_fts_update",
    "DROP TRIGGER message_fts_delete",
    "DROP TRIGGER message_fts_insert",
    "DROP TABLE message_fts",
]
POSTGRES_UPGRADE = ["CREATE INDEX ix_message_content_fts ON message USING GIN (to_tsvector('simple', content))"]
POSTGRES_DOWNGRADE = ["DROP INDEX ix_message_content_fts"]


def upgrade() -> None:
    """Create the search index and fill it with the existing messages."""
    for statement in SQLITE_UPGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the search index."""
    for statement in SQLITE_DOWNGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWNGRADE:
        op.execute(statement)
