"""Retrieval: the passages of a chat's documents that best match a question, within a share of the prompt."""

import re
from dataclasses import dataclass

from sqlalchemy import Engine, text

from chatcore import store
from chatcore.context import DOCUMENTS_HEADING, Pinned, make_part
from chatcore.tokens import Ratio, estimate_tokens

WORD = re.compile(r"[^\W_]+")
CANDIDATES = 20
# In a few documents nearly every chunk has these: ranked with the rest, they drown a question's rare words.
STOP_WORDS = frozenset(
    WORD.findall(
        "a an and are as at be by can do does did for from has have how i in is it me my of on or that the this "
        "to was were what when where which who why will with you your"
    )
)
DOCUMENTS_SHARE = 1 / 3  # of the prompt budget, at most: the conversation keeps the rest
INSTRUCTIONS = (
    "Passages from the user's documents follow, each under a number such as [1]. Where they are relevant, "
    "answer from them and cite the numbers you used, such as [1]. If they do not contain the answer, say so."
)
CHAT_DOCUMENT_IDS = (
    "SELECT id FROM document WHERE chat_id = :chat_id UNION SELECT document_id FROM document_attachment "
    "WHERE chat_id = :chat_id"
)
# The best few chunk ids are ranked first, and only they are joined for their text. A score is lower for a
# better match on both databases.
BEST_PASSAGES = (
    "SELECT c.id, d.name, d.kind, c.page, c.text FROM ({ranked}) AS best JOIN chunk c ON c.id = best.id "
    "JOIN document d ON d.id = c.document_id ORDER BY best.score, c.id"
)
CHAT_CHUNK_IDS = f"SELECT id FROM chunk WHERE document_id IN ({CHAT_DOCUMENT_IDS})"
# `+rowid` keeps SQLite from probing the full-text index once per chunk of the chat (seconds, not milliseconds).
SQLITE_PASSAGES = text(
    BEST_PASSAGES.format(
        ranked="SELECT rowid AS id, bm25(chunk_fts) AS score FROM chunk_fts WHERE chunk_fts MATCH :query "
        f"AND +rowid IN ({CHAT_CHUNK_IDS}) ORDER BY score, rowid LIMIT :limit"
    )
)
POSTGRES_PASSAGES = text(
    BEST_PASSAGES.format(
        ranked="SELECT id, -ts_rank(text_fts, q) AS score FROM chunk, to_tsquery('simple', :query) q "
        f"WHERE text_fts @@ q AND document_id IN ({CHAT_DOCUMENT_IDS}) ORDER BY score, id LIMIT :limit"
    )
)


@dataclass(frozen=True)
class Passage:
    """A chunk found for a question, with the document it comes from."""

    chunk_id: int
    name: str
    kind: str
    page: int
    text: str

    def label(self, number: int) -> str:
        """How the prompt names it."""
        return source_label(number, self.name, self.kind, self.page)


def source_label(number: int, name: str, kind: str, page: int) -> str:
    """How the prompt and the Sources list name a passage: `[n] name, page p` (a section, outside PDFs)."""
    return f"[{number}] {name}, {'page' if kind == 'pdf' else 'section'} {page}"


def match_query(dialect: str, question: str) -> str:
    """The question's words but stop words (all, if that is all it has) as a full-text OR-query, none an operator."""
    words = list(dict.fromkeys(WORD.findall(question.lower())))
    words = [word for word in words if word not in STOP_WORDS] or words
    if dialect == "sqlite":
        return " OR ".join(f'"{word}"' for word in words)
    return " | ".join(words)


def find_passages(engine: Engine, chat_id: int, question: str, limit: int = CANDIDATES) -> list[Passage]:
    """The chunks of the chat's documents that best match the question's words, best first (BM25, ts_rank)."""
    query = match_query(engine.dialect.name, question)
    if not query:
        return []
    statement = SQLITE_PASSAGES if engine.dialect.name == "sqlite" else POSTGRES_PASSAGES
    with engine.connect() as connection:
        rows = connection.execute(statement, {"query": query, "chat_id": chat_id, "limit": limit})
        return [Passage(*row) for row in rows]


def documents_budget(budget: int, pinned_tokens: int, question_tokens: int) -> int:
    """Tokens the passages may use: a share of the budget, never crowding out the pinned note and the question."""
    return min(int(budget * DOCUMENTS_SHARE), budget - pinned_tokens - question_tokens)


def pin_passages(
    engine: Engine, chat_id: int, pinned: Pinned, budget: int, chars_per_token: float, before: int | None = None
) -> list[Passage]:
    """The passages for the chat's newest question (older than `before`) that fit beside the pinned note and it."""
    question = store.last_user_message(engine, chat_id, before) if store.has_documents(engine, chat_id) else None
    if question is None:
        return []
    note = pinned.text()
    pinned_tokens = estimate_tokens(note, chars_per_token) if note else 0
    room = documents_budget(budget, pinned_tokens, make_part(question, chars_per_token).tokens)
    return fit_passages(find_passages(engine, chat_id, question.content), room, chars_per_token) if room > 0 else []


def fit_passages(passages: list[Passage], budget: int, chars_per_token: float = Ratio().value) -> list[Passage]:
    """The best passages, in order, whose text fits in `budget` tokens; a passage too big is skipped."""
    chosen: list[Passage] = []
    for passage in passages:
        if passages_tokens([*chosen, passage], chars_per_token) <= budget:
            chosen.append(passage)
    return chosen


def passages_tokens(passages: list[Passage], chars_per_token: float) -> int:
    """What the passages add to the pinned note, its separator and heading included."""
    return estimate_tokens("\n\n" + DOCUMENTS_HEADING + format_passages(passages), chars_per_token)


def format_passages(passages: list[Passage]) -> str:
    """The instructions, then each passage under its numbered label; empty without passages."""
    if not passages:
        return ""
    quoted = (f"{passage.label(number)}\n{passage.text}" for number, passage in enumerate(passages, start=1))
    return "\n\n".join([INSTRUCTIONS, *quoted])
