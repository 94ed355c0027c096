"""Searching chats: titles by substring, message content by full-text index."""

import re
from dataclasses import dataclass

from sqlalchemy import Engine, text

from chatcore.markdown import escape_markdown
from chatcore.words import query_words

RESULTS = 20
FOUND = "\x02", "\x03"  # around the words found in a snippet: characters nobody types, told apart from the text

SQLITE_MESSAGES = text(
    "SELECT m.chat_id, c.title, m.id, snippet(message_fts, 0, char(2), char(3), '…', 10) "
    "FROM message_fts JOIN message m ON m.id = message_fts.rowid JOIN chat c ON c.id = m.chat_id "
    "WHERE message_fts MATCH :query ORDER BY message_fts.rowid DESC LIMIT :limit"
)
POSTGRES_MESSAGES = text(
    "SELECT m.chat_id, c.title, m.id, ts_headline('simple', m.content, q, "
    "'StartSel=\x02, StopSel=\x03, MaxWords=14, MinWords=5, MaxFragments=1, FragmentDelimiter=…') "
    "FROM message m JOIN chat c ON c.id = m.chat_id, to_tsquery('simple', :query) q "
    "WHERE to_tsvector('simple', m.content) @@ q ORDER BY m.id DESC LIMIT :limit"
)
TITLES = text(
    "SELECT id, title FROM chat WHERE lower(title) LIKE :pattern ESCAPE '\\' ORDER BY updated_at DESC LIMIT :limit"
)


@dataclass(frozen=True)
class Hit:
    """A search result: a chat, and the matching message with a snippet (none for a title match)."""

    chat_id: int
    title: str
    message_id: int | None = None
    snippet: str = ""


def hit_label(hit: Hit) -> str:
    """Markdown naming a hit: its chat's title and the snippet as typed, the words found in bold."""
    label = hit.title if hit.message_id is None else f"{hit.title} · {hit.snippet}"
    return escape_markdown(label).replace(FOUND[0], "**").replace(FOUND[1], "**")


def search_chats(engine: Engine, query: str, limit: int = RESULTS) -> list[Hit]:
    """Chats whose title contains the query, then the newest messages with all its words (the last as a prefix)."""
    words = query_words(query)
    if not words:
        return []
    with engine.connect() as connection:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query.strip().lower()) + "%"
        titles = [Hit(row[0], row[1]) for row in connection.execute(TITLES, {"pattern": pattern, "limit": limit})]
        statement, full_text = _message_query(engine.dialect.name, words)
        rows = connection.execute(statement, {"query": full_text, "limit": limit})
        return titles + [Hit(*row) for row in rows]


def _message_query(dialect: str, words: list[str]):
    if dialect == "sqlite":
        return SQLITE_MESSAGES, " ".join(f'"{word}"' for word in words) + "*"
    return POSTGRES_MESSAGES, " & ".join(words) + ":*"
