"""Retrieval: what a question is sent from a chat's documents, within a share of the prompt.

The passages that match it best, by its words and, with an embedder, by meaning; or, for a request for a
summary, the documents' summaries.
"""

import re
from dataclasses import dataclass, replace

from sqlalchemy import Engine, text

from chatcore import store, vectors
from chatcore.backends import BackendError, Embedder
from chatcore.context import DOCUMENTS_HEADING, Pinned, make_part
from chatcore.models import Chunk, Document, ReplySource
from chatcore.tokens import Ratio, estimate_tokens
from chatcore.words import is_unspaced, query_words

CANDIDATES = 20
# In a few documents nearly every chunk has these: ranked with the rest, they drown a question's rare words.
STOP_WORDS = frozenset(
    query_words(
        "a an and are as at be by can do does did for from has have how i in is it me my of on or that the this "
        "to was were what when where which who why will with you your"
    )
)
DOCUMENTS_SHARE = 1 / 3  # of the prompt budget, at most: the conversation keeps the rest
INSTRUCTIONS = (
    "Passages from the user's documents follow, each under a number such as [1]. Where they are relevant, "
    "answer from them and cite the numbers you used, such as [1]. If they do not contain the answer, say so."
)
SUMMARY_INSTRUCTIONS = (
    "Summaries of whole documents come first, written when the documents were added: use them for "
    "questions about a document as a whole."
)
DELETED_NOTE = "document deleted"  # a passage kept after its document was deleted
RRF_K = 60  # the constant of reciprocal rank fusion, as proposed by Cormack et al. (2009)
SUMMARY_REQUEST = re.compile(r"\b(summar(y|ies|i[sz]e\w*)|tl;?dr|overview|gist|key points|main points)\b", re.I)
ABOUT_THE_CHAT = re.compile(r"\b(conversation|chat|discussion|discussed|so far)\b", re.I)
MIN_NAME_CHARS = 3  # a shorter file name (without extension) is too likely to appear in a question by chance
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

    @classmethod
    def of(cls, document: Document, chunk: Chunk) -> "Passage":
        """The passage of a stored chunk."""
        return cls(chunk.id, document.name, document.kind, chunk.page, chunk.text)

    def label(self, number: int) -> str:
        """How the prompt names it."""
        return source_label(number, self.name, self.kind, self.page)


@dataclass(frozen=True)
class Summary:
    """A document's summary, for questions about the document as a whole."""

    name: str
    text: str


@dataclass(frozen=True)
class Found:
    """What a question is sent from the chat's documents: summaries, then numbered passages."""

    summaries: tuple[Summary, ...] = ()
    passages: tuple[Passage, ...] = ()

    def text(self) -> str:
        """The instructions, each summary, then each passage under its numbered label; empty when nothing was found."""
        if not self.summaries and not self.passages:
            return ""
        instructions = [INSTRUCTIONS, SUMMARY_INSTRUCTIONS] if self.summaries else [INSTRUCTIONS]
        summaries = (f"Summary of {summary.name}:\n{summary.text}" for summary in self.summaries)
        numbered = enumerate(self.passages, start=1)
        return "\n\n".join([" ".join(instructions), *summaries, *(f"{p.label(n)}\n{p.text}" for n, p in numbered)])

    def tokens(self, chars_per_token: float) -> int:
        """What this adds to the pinned note, its separator and heading included."""
        return estimate_tokens("\n\n" + DOCUMENTS_HEADING + self.text(), chars_per_token)


def source_label(number: int, name: str, kind: str, page: int) -> str:
    """How the prompt and the Sources list name a passage: `[n] name, page p` (a section, outside PDFs)."""
    return f"[{number}] {name}, {'page' if kind == 'pdf' else 'section'} {page}"


def given_label(source: ReplySource, present: bool) -> str:
    """How the Sources list names a passage a reply was given, marked when its document has been deleted since."""
    label = source_label(source.label, source.document_name, source.document_kind, source.page)
    return label if present else f"{label} ({DELETED_NOTE})"


def match_query(dialect: str, question: str) -> str:
    """The question's words but stop words (all, if that is all it has) as a full-text OR-query, none an operator.

    A word of a script written without spaces matches as a prefix: the index holds its whole run of text.
    """
    words = query_words(question)
    words = [word for word in words if word not in STOP_WORDS] or words
    if dialect == "sqlite":
        return " OR ".join(f'"{word}"' + ("*" if is_unspaced(word) else "") for word in words)
    return " | ".join(word + (":*" if is_unspaced(word) else "") for word in words)


def asks_for_summary(question: str) -> bool:
    """Whether a question asks for a summary of documents (not of the conversation)."""
    return bool(SUMMARY_REQUEST.search(question)) and not ABOUT_THE_CHAT.search(question)


def keyword_passages(engine: Engine, chat_id: int, question: str, limit: int = CANDIDATES) -> list[Passage]:
    """The chunks of the chat's documents that best match the question's words, best first (BM25, ts_rank)."""
    query = match_query(engine.dialect.name, question)
    if not query:
        return []
    statement = SQLITE_PASSAGES if engine.dialect.name == "sqlite" else POSTGRES_PASSAGES
    with engine.connect() as connection:
        rows = connection.execute(statement, {"query": query, "chat_id": chat_id, "limit": limit})
        return [Passage(*row) for row in rows]


def find_passages(
    engine: Engine, chat_id: int, question: str, limit: int = CANDIDATES, embedder: Embedder | None = None
) -> list[Passage]:
    """The chat's best chunks for the question: by its words, fused with the closest in meaning given an embedder."""
    keyword = keyword_passages(engine, chat_id, question, limit)
    if embedder is None:
        return keyword
    try:
        nearest = vectors.nearest_chunks(engine, embedder, chat_id, question, limit)
    except BackendError:
        return keyword  # the embedding model is out of reach: the words alone still find passages
    found = {passage.chunk_id: passage for passage in keyword}
    order = fuse_rankings([list(found), nearest])[:limit]
    for chunk_id, (document, chunk) in store.find_chunks(engine, set(order) - set(found)).items():
        found[chunk_id] = Passage.of(document, chunk)
    return [found[chunk_id] for chunk_id in order]


def fuse_rankings(rankings: list[list[int]], k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion: items by the sum of 1 / (k + rank) over the rankings; ties in first-seen order."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1 / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])


def summary_material(engine: Engine, chat_id: int, question: str) -> Found:
    """For a summary request: the summaries of the documents it names (else all), the opening passages of the rest."""
    documents = store.list_documents(engine, chat_id)
    lowered = question.lower()
    named = [
        d for d in documents if len(stem := d.name.rsplit(".", 1)[0]) >= MIN_NAME_CHARS and stem.lower() in lowered
    ]
    chosen = named or documents
    summaries = tuple(Summary(document.name, document.summary) for document in chosen if document.summary)
    unsummarised = [document.id for document in chosen if not document.summary]
    openings = store.opening_chunks(engine, unsummarised, CANDIDATES) if unsummarised else []
    return Found(summaries, tuple(Passage.of(document, chunk) for document, chunk in openings))


def documents_budget(budget: int, pinned_tokens: int, question_tokens: int) -> int:
    """Tokens the passages may use: a share of the budget, never crowding out the pinned note and the question."""
    return min(int(budget * DOCUMENTS_SHARE), budget - pinned_tokens - question_tokens)


def pin_documents(
    engine: Engine,
    chat_id: int,
    pinned: Pinned,
    budget: int,
    chars_per_token: float,
    before: int | None = None,
    embedder: Embedder | None = None,
) -> Found:
    """What the chat's newest question (older than `before`) is sent from its documents, beside the pinned note.

    A request for a summary gets the documents' summaries; any other question the passages that match it best.
    """
    question = store.last_user_message(engine, chat_id, before) if store.has_documents(engine, chat_id) else None
    if question is None:
        return Found()
    note = pinned.text()
    pinned_tokens = estimate_tokens(note, chars_per_token) if note else 0
    room = documents_budget(budget, pinned_tokens, make_part(question, chars_per_token).tokens)
    if room <= 0:
        return Found()
    if asks_for_summary(question.content):
        return fit_found(summary_material(engine, chat_id, question.content), room, chars_per_token)
    passages = find_passages(engine, chat_id, question.content, embedder=embedder)
    return fit_found(Found(passages=tuple(passages)), room, chars_per_token)


def fit_found(found: Found, budget: int, chars_per_token: float = Ratio().value) -> Found:
    """The summaries, then the passages, in order, that fit in `budget` tokens; one too big is skipped."""
    chosen = Found()
    for summary in found.summaries:
        if (trial := replace(chosen, summaries=(*chosen.summaries, summary))).tokens(chars_per_token) <= budget:
            chosen = trial
    for passage in found.passages:
        if (trial := replace(chosen, passages=(*chosen.passages, passage))).tokens(chars_per_token) <= budget:
            chosen = trial
    return chosen
