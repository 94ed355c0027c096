"""Retrieval: a question's words find the right page of the chat's documents, and the prompt carries them."""

import pytest

from chatcore import documents, generation, retrieval, store
from chatcore.backends import FakeBackend
from chatcore.prompt import build_prompt
from tests.documents import make_pdf, sample

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
    passages = [passage(1, 200), passage(2, 1200), passage(3, 400)]
    fitted = retrieval.fit_passages(passages, budget)
    assert [p.chunk_id for p in fitted] == chosen
    assert not fitted or retrieval.passages_tokens(fitted, 4.0) <= budget


@pytest.mark.parametrize(
    ("budget", "pinned", "question", "room"), [(3000, 100, 50, 1000), (600, 100, 450, 50), (600, 500, 450, -350)]
)
def test_documents_get_a_third_of_the_budget_at_most_and_never_crowd_out_the_question(budget, pinned, question, room):
    assert retrieval.documents_budget(budget, pinned, question) == room


def ask(engine, chat_id: int, question: str, num_ctx: int = 4096) -> FakeBackend:
    """Send a question through a whole turn with the fake backend; the backend keeps the request."""
    store.update_chat(engine, chat_id, options={"num_ctx": num_ctx})
    backend = FakeBackend(replies=["It says so [1]."])
    list(generation.run_turn(engine, backend, chat_id, question, "fake:latest"))
    return backend


def test_the_prompt_carries_the_passages_under_their_labels_and_the_reply_keeps_them(engine, library_chat):
    backend = ask(engine, library_chat, "What is better than ugly?")
    system = backend.calls[0]["messages"][0]
    assert system["role"] == "system"
    assert "cite the numbers you used" in system["content"]
    assert "If they do not contain the answer, say so" in system["content"]
    assert "[1] google-doc-document.pdf, page 1\n" in system["content"]
    assert "Beautiful is better than ugly." in system["content"]
    reply = store.recent_messages(engine, library_chat, limit=1)[0]
    sources = store.reply_sources(engine, [reply.id])[reply.id]
    assert sources[0][0] == 1 and sources[0][1].name == "google-doc-document.pdf" and sources[0][2].page == 1


@pytest.mark.parametrize(("num_ctx", "pinned"), [(256, False), (512, False), (2048, True), (8192, True)])
def test_passages_never_push_the_window_over_its_budget(engine, num_ctx, pinned):
    chat = store.create_chat(engine, options={"num_ctx": num_ctx}, system_prompt="Answer briefly.")
    pages = [" ".join(f"ugly word{index} page{page}" for index in range(300)) for page in range(5)]
    documents.add_file(engine, chat.id, "ugly.pdf", make_pdf(pages), LIMIT)
    store.add_exchange(engine, chat.id, "Is anything ugly here? " * 5, "fake:latest")
    prompt = build_prompt(engine, FakeBackend(), store.get_chat(engine, chat.id), "fake:latest")
    assert not prompt.window.overflows
    assert bool(prompt.sources) == pinned
    assert retrieval.passages_tokens(list(prompt.sources), 4.0) <= prompt.window.budget // 3


def test_a_question_sent_with_passages_keeps_its_estimate(engine, library_chat):
    ask(engine, library_chat, "What is better than ugly? " * 20)
    question, reply = store.recent_messages(engine, library_chat, limit=2)
    assert question.tokens is None and reply.tokens is not None


def test_without_documents_or_matches_nothing_is_pinned(engine):
    chat = store.create_chat(engine)
    backend = ask(engine, chat.id, "What is better than ugly?")
    assert backend.calls[0]["messages"][0]["role"] == "user"
