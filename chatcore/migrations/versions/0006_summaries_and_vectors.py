"""Each document's summary, and the chunks' embedding vectors from an Ollama embedding model.

Revision ID: 0006_summaries_and_vectors
Revises: 0005_inline_chunk_search

Both are written in the background after a document is added, so existing documents start without
them and get them the same way.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_summaries_and_vectors"
down_revision = "0005_inline_chunk_search"
DOCUMENT_COLUMNS = ("summary", "summary_model", "vectors_model")


def upgrade() -> None:
    """Add the summary and vector columns to document, and the chunk_vector table."""
    with op.batch_alter_table("document") as batch:
        for name in DOCUMENT_COLUMNS:
            batch.add_column(sa.Column(name, sa.String, nullable=False, server_default=""))
    op.create_table(
        "chunk_vector",
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("chunk.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    """Drop the chunk_vector table and the document columns."""
    op.drop_table("chunk_vector")
    with op.batch_alter_table("document") as batch:
        for name in DOCUMENT_COLUMNS:
            batch.drop_column(name)
