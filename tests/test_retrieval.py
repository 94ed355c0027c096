"""Retrieval: a question's words find the right page of the chat's documents, and the prompt carries them."""

import pytest

from chatcore import documents, retrieval, store, vectors
from chatcore.backends import FakeBackend
from chatcore.prompt import build_prompt
from tests.documents import make_pdf, sample
from tests.embedding import ConceptEmbedder
from tests.replies import LEASE, reply_to

LIMIT = 50 * 2**20
SAMPLE_FILES = ("google-doc-document.pdf", "multicolumn.pdf", "pdflatex-4-pages.pdf", "par-known-paragraphs.docx")


@pytest.fixture
def library_chat(engine) -> int:
    """A chat with sample documents of its own, and one in another chat that it must not see."""
    chat, other = store.create_chat(engine), store.create_chat(engine)
    for name in SAMPLE_FILES:
        documents.add_file(engine, chat.id, name, sample(name), LIMIT)
    documents.add_file(engine, other.id, "other.txt", b"Beautiful flowers in the other chat.", LIMIT)
    return chat.id


@pytest.mark.parametrize(
    ("dialect", "question", "query"),
    [
        ("sqlite", "What is better than ugly?", '"better" OR "than" OR "ugly"'),
        ("sqlite", 'NEAR("x" y) AND z* -w', '"near" OR "x" OR "y" OR "z" OR "w"'),
        ("sqlite", "What is it?", '"what" OR "is" OR "it"'),
        ("sqlite", "Ugly, ugly UGLY", '"ugly"'),
        ("postgresql", "What is better than ugly?", "better | than | ugly"),
        ("postgresql", "x & !y | z:* foo_bar", "x | y | z | foo | bar"),
        ("postgresql", "?! ...", ""),
    ],
)
def test_questions_become_safe_or_queries(dialect, question, query):
    assert retrieval.match_query(dialect, question) == query


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("What is better than ugly?", "[1] google-doc-document.pdf, page 1"),
        ("What is the capital of Finland?", "[1] multicolumn.pdf, page 3"),
        ("What does the blind text say about Huardest gefburn?", "[1] pdflatex-4-pages.pdf, page "),
        ("Which normal paragraph?", "[1] par-known-paragraphs.docx, section 1"),
    ],
)
def test_the_best_passage_is_on_the_right_page(engine, library_chat, question, label):
    best = retrieval.find_passages(engine, library_chat, question)[0]
    assert best.label(1).startswith(label)


def test_only_the_chat_s_own_and_attached_documents_are_searched(engine, library_chat):
    assert retrieval.find_passages(engine, library_chat, "flowers") == []
    shared = documents.add_file(engine, None, "garden.md", b"# Garden\n\nFlowers grow here.", LIMIT).document
    store.attach_document(engine, library_chat, shared.id)
    assert [passage.name for passage in retrieval.find_passages(engine, library_chat, "flowers")] == ["garden.md"]


def passage(number: int, length: int) -> retrieval.Passage:
    return retrieval.Passage(number, f"doc{number}.pdf", "pdf", number, "x" * length)


@pytest.mark.parametrize(("budget", "chosen"), [(0, []), (150, [1]), (400, [1, 3]), (1000, [1, 2, 3])])
def test_passages_are_taken_best_first_while_they_fit(budget, chosen):
    passages = (passage(1, 200), passage(2, 1200), passage(3, 400))
    fitted = retrieval.fit_found(retrieval.Found(passages=passages), budget)
    assert [p.chunk_id for p in fitted.passages] == chosen
    assert not chosen or fitted.tokens(4.0) <= budget


@pytest.mark.parametrize(
    ("budget", "pinned", "question", "room"), [(3000, 100, 50, 1000), (600, 100, 450, 50), (600, 500, 450, -350)]
)
def test_documents_get_a_third_of_the_budget_at_most_and_never_crowd_out_the_question(budget, pinned, question, room):
    assert retrieval.documents_budget(budget, pinned, question) == room


def ask(replies, chat_id: int, question: str, num_ctx: int = 4096) -> FakeBackend:
    """Send a question through the reply service with the fake backend; the backend keeps the request."""
    store.update_chat(replies.engine, chat_id, options={"num_ctx": num_ctx})
    backend = FakeBackend(replies=["It says so [1]."])
    reply_to(replies, backend, chat_id, question)
    return backend


def test_the_prompt_carries_the_passages_under_their_labels_and_the_reply_keeps_them(engine, replies, library_chat):
    backend = ask(replies, library_chat, "What is better than ugly?")
    system = backend.calls[0]["messages"][0]
    assert system["role"] == "system"
    assert "cite the numbers you used" in system["content"]
    assert "If they do not contain the answer, say so" in system["content"]
    assert "[1] google-doc-document.pdf, page 1\n" in system["content"]
    assert "Beautiful is better than ugly." in system["content"]
    reply = store.recent_messages(engine, library_chat, limit=1)[0]
    source, present = store.reply_sources(engine, [reply.id])[reply.id][0]
    assert (source.label, source.document_name, source.page, present) == (1, "google-doc-document.pdf", 1, True)
    assert "Beautiful is better than ugly." in source.text


@pytest.mark.parametrize(("num_ctx", "pinned"), [(256, False), (512, False), (2048, True), (8192, True)])
def test_passages_never_push_the_window_over_its_budget(engine, num_ctx, pinned):
    chat = store.create_chat(engine, options={"num_ctx": num_ctx}, system_prompt="Answer briefly.")
    pages = [" ".join(f"ugly word{index} page{page}" for index in range(300)) for page in range(5)]
    documents.add_file(engine, chat.id, "ugly.pdf", make_pdf(pages), LIMIT)
    store.add_exchange(engine, chat.id, "Is anything ugly here? " * 5, "fake:latest", LEASE)
    prompt = build_prompt(engine, FakeBackend(), store.get_chat(engine, chat.id), "fake:latest")
    assert not prompt.window.overflows
    assert bool(prompt.sources) == pinned
    assert retrieval.Found(passages=prompt.sources).tokens(4.0) <= prompt.window.budget // 3


def test_a_question_sent_with_passages_keeps_its_estimate(engine, replies, library_chat):
    ask(replies, library_chat, "What is better than ugly? " * 20)
    question, reply = store.recent_messages(engine, library_chat, limit=2)
    assert question.tokens is None and reply.tokens is not None


def test_without_documents_or_matches_nothing_is_pinned(engine, replies):
    chat = store.create_chat(engine)
    backend = ask(replies, chat.id, "What is better than ugly?")
    assert backend.calls[0]["messages"][0]["role"] == "user"


@pytest.mark.parametrize(
    ("rankings", "fused"),
    [
        ([[1, 2, 3], []], [1, 2, 3]),
        ([[], [5, 6]], [5, 6]),
        ([[1, 2], [2, 3]], [2, 1, 3]),  # in both lists beats first in one
        ([[1, 2, 3], [3, 2, 1]], [1, 3, 2]),  # 1/61 + 1/63 > 2/62; a tie keeps the first-seen order
        ([[7], [8]], [7, 8]),
    ],
)
def test_rankings_fuse_by_reciprocal_rank(rankings, fused):
    assert retrieval.fuse_rankings(rankings) == fused


@pytest.mark.parametrize(
    ("question", "summary"),
    [
        ("Summarise this document", True),
        ("Can you summarize the PDF?", True),
        ("Give me a summary of report.pdf", True),
        ("tl;dr?", True),
        ("What are the key points of the contract?", True),
        ("Summarise our conversation so far", False),
        ("Summarize this chat", False),
        ("What is better than ugly?", False),
        ("Who summoned the committee?", False),
    ],
)
def test_summary_requests_are_told_from_other_questions(question, summary):
    assert retrieval.asks_for_summary(question) == summary


CAR_NOTES = (
    b"# Garage\n\nThe automobile is parked in the garage and needs new tyres.\n\n"
    b"# Garden\n\nThe roses in the garden bloom in June."
)


@pytest.fixture
def car_chat(engine) -> int:
    """A chat with one Markdown file whose passage about a car never says "car", its vectors stored."""
    chat = store.create_chat(engine)
    added = documents.add_file(engine, chat.id, "notes.md", CAR_NOTES, LIMIT)
    vectors.embed_document(engine, ConceptEmbedder(), added.document.id)
    return chat.id


def test_passages_close_in_meaning_are_found_when_no_word_matches(engine, car_chat):
    assert retrieval.find_passages(engine, car_chat, "Where is my car?") == []
    found = retrieval.find_passages(engine, car_chat, "Where is my car?", embedder=ConceptEmbedder())
    assert [passage.text for passage in found] == [
        "# Garage\n\nThe automobile is parked in the garage and needs new tyres."
    ]


def test_fusion_keeps_keyword_matches_and_adds_the_closest_in_meaning(engine, car_chat):
    found = retrieval.find_passages(engine, car_chat, "Do the roses need a vehicle?", embedder=ConceptEmbedder())
    assert [passage.page for passage in found] == [2, 1]  # roses by its words, then the car by its meaning


def test_without_reachable_embeddings_the_words_alone_find_passages(engine, car_chat):
    unreachable = ConceptEmbedder(failing=True)
    question = f"Which roses? ({engine.dialect.name})"  # a question not asked before, so its vector is not kept
    found = retrieval.find_passages(engine, car_chat, question, embedder=unreachable)
    assert [passage.page for passage in found] == [2] and unreachable.calls == [[question]]


def test_vectors_of_another_model_are_not_used(engine, car_chat):
    assert retrieval.find_passages(engine, car_chat, "my car", embedder=ConceptEmbedder(model="other")) == []


def summarised_chat(engine) -> tuple[int, int, int]:
    """A chat with a summarised document (report.txt) and one not yet summarised (minutes.txt)."""
    chat = store.create_chat(engine)
    report = documents.add_file(engine, chat.id, "report.txt", b"Sales rose by a tenth in spring.", LIMIT).document
    minutes = documents.add_file(engine, chat.id, "minutes.txt", b"The board met on Monday.", LIMIT).document
    store.save_summary(engine, report.id, "A report on rising spring sales.", "llama3:8b")
    return chat.id, report.id, minutes.id


@pytest.mark.parametrize(
    ("question", "summaries", "openings"),
    [
        ("Summarise the documents", ["report.txt"], ["minutes.txt"]),
        ("Summarise the report", ["report.txt"], []),
        ("Give me an overview of the minutes", [], ["minutes.txt"]),
    ],
)
def test_a_summary_request_gets_summaries_or_else_the_opening_passages(engine, question, summaries, openings):
    chat_id, _, _ = summarised_chat(engine)
    found = retrieval.summary_material(engine, chat_id, question)
    assert [summary.name for summary in found.summaries] == summaries
    assert [passage.name for passage in found.passages] == openings


def test_summarise_this_document_sends_the_stored_summary(engine, replies):
    chat_id, _, _ = summarised_chat(engine)
    system = ask(replies, chat_id, "Please summarise this document.").calls[0]["messages"][0]["content"]
    assert "Summary of report.txt:\nA report on rising spring sales." in system
    assert "[1] minutes.txt, section 1\nThe board met on Monday." in system
    assert retrieval.SUMMARY_INSTRUCTIONS in system


def test_a_summary_is_written_once(engine):
    _, report_id, _ = summarised_chat(engine)
    store.save_summary(engine, report_id, "Another process's summary, written later.", "other")
    assert store.get_document(engine, report_id).summary == "A report on rising spring sales."


def test_a_summary_too_big_for_the_budget_is_left_out():
    big, small = retrieval.Summary("big.pdf", "word " * 2000), retrieval.Summary("small.pdf", "Short.")
    fitted = retrieval.fit_found(retrieval.Found(summaries=(big, small)), 500)
    assert fitted.summaries == (small,)
