"""The line under each reply, the line above the input, the divider."""

from datetime import UTC, datetime

import pytest

from chatcore.captions import (
    ICONS,
    chat_labels,
    context_caption,
    document_caption,
    documents_note,
    file_size,
    no_model_note,
    outside_note,
    reply_caption,
)
from chatcore.context import Part, Window
from chatcore.models import Chat, Document, Message, Status, utc_now


@pytest.mark.parametrize(
    ("fields", "caption"),
    [
        ({"model": "llama3:8b", "reply_tokens": 50, "reply_ms": 2000.0}, "llama3:8b · 50 tokens · 25.0 tokens/s"),
        ({"model": "llama3:8b"}, "llama3:8b"),
        ({"model": "m", "reply_tokens": 3, "reply_ms": 0.0}, "m · 3 tokens"),
        ({"model": "m", "status": Status.PARTIAL}, "m · ⚠️ interrupted: the reply stopped here"),
        ({"model": "m", "status": Status.STOPPED}, "m · ⏹ stopped"),
        ({"status": Status.STREAMING}, "✍️ still being written"),
        ({"model": "m", "status": Status.CUT}, "m · ✂️ cut off at the length limit: ask it to go on"),
        ({"status": Status.ERROR}, ""),
        ({}, ""),
    ],
)
def test_reply_caption(fields, caption):
    assert reply_caption(Message(chat_id=1, role="assistant", **fields)) == caption


def test_the_page_marks_a_reply_with_an_icon_its_font_draws():
    message = Message(chat_id=1, role="assistant", model="m", status=Status.STOPPED)
    assert reply_caption(message, ICONS) == "m · :material/stop_circle: stopped"


SENT = Window(
    (Part("system", "Be brief.", 7), Part("user", "hi", 5, True, 8), Part("assistant", "", 0, False, 9)), 3072, False
)


@pytest.mark.parametrize(
    ("window", "total", "memory_enabled", "caption"),
    [
        (SENT, 40, True, "context: 2 of 40 messages · 12 / 3,072 tokens · memory on"),
        (SENT, 2, False, "context: 2 of 2 messages · 12 / 3,072 tokens · memory off"),
        (Window((), 98304, True), 0, True, "context: 0 of 0 messages · 0 / 98,304 tokens · memory on"),
    ],
)
def test_context_caption(window, total, memory_enabled, caption):
    assert context_caption(window, total, memory_enabled) == caption


def test_context_caption_names_the_work_still_done_after_the_reply():
    caption = context_caption(SENT, 2, True, {"writing a title", "updating the memory"})
    assert caption.endswith("· memory on · updating the memory… · writing a title…")


@pytest.mark.parametrize(
    ("summarised", "note"),
    [(True, "earlier messages are summarised"), (False, "earlier messages are not sent to the model")],
)
def test_outside_note(summarised, note):
    assert outside_note(summarised) == note


@pytest.mark.parametrize(
    ("names", "note"),
    [
        (["menu.md"], "Ask about menu.md, or anything else."),
        (["menu.md", "report.pdf"], "Ask about menu.md and report.pdf, or anything else."),
        (["a.md", "b.md", "c.md"], "Ask about a.md, b.md and c.md, or anything else."),
        (["a.md", "b.md", "c.md", "d.md", "e.md"], "Ask about a.md, b.md, c.md and 2 more, or anything else."),
    ],
)
def test_documents_note(names, note):
    assert documents_note(names) == note


def test_without_a_model_the_input_says_to_pick_one_when_there_is_one_to_pick():
    assert no_model_note(offered=True) == "Choose a model in the sidebar to go on"
    assert no_model_note(offered=False) == "No model to answer: see the sidebar"


@pytest.mark.parametrize(
    ("kind", "pages", "size", "chunks", "caption"),
    [
        ("pdf", 4, 24_607, 9, "PDF · 4 pages · 24.6KB · 9 passages"),
        ("pdf", 1, 300, 1, "PDF · 1 page · 300.0B · 1 passage"),
        ("docx", 3, 3 * 2**20, 120, "DOCX · 3 sections · 3.1MB · 120 passages"),
    ],
)
def test_document_caption(kind, pages, size, chunks, caption):
    document = Document(name="x", kind=kind, sha256="", size=size, pages=pages, chunk_count=chunks)
    assert document_caption(document) == caption


# What Streamlit's file uploader shows for these sizes (its getSizeDisplay, outside Windows), checked in node.
@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0.0B"),
        (500, "500.0B"),
        (501, "0.5KB"),
        (1_150, "1.1KB"),  # 1.15 is 1.1499… in floating point
        (1_250, "1.3KB"),  # an exact half rounds up
        (80_123, "80.1KB"),
        (999_999, "1.0MB"),
        (52_428_800, "52.4MB"),
        (3_000_000_000, "3.0GB"),
    ],
)
def test_sizes_are_shown_as_the_file_uploader_shows_them(size, shown):
    assert file_size(size) == shown


def test_chats_of_the_same_title_and_start_get_labels_of_their_own_numbered_in_the_order_they_were_made():
    started, later = datetime(2025, 11, 29, 14, 5, 33, tzinfo=UTC), datetime(2025, 11, 29, 16, 30, tzinfo=UTC)
    chats = [
        Chat(id=3, title="New chat", created_at=started),
        Chat(id=4, title="Recipes", created_at=started),
        Chat(id=1, title="New chat", created_at=started),
        Chat(id=2, title="New\n chat", created_at=later),
    ]
    assert chat_labels(chats) == {
        3: "New chat · 29 Nov 2025 14:05 (2)",
        4: "Recipes · 29 Nov 2025 14:05",
        1: "New chat · 29 Nov 2025 14:05",
        2: "New chat · 29 Nov 2025 16:30",
    }


def test_a_chat_label_has_the_year_only_when_it_is_not_this_one_and_cuts_a_long_title():
    title = "Why is the sky blue on a clear afternoon, and red at sunset?"
    now = utc_now().replace(month=3, day=1, hour=9, minute=7)
    assert chat_labels([Chat(id=1, title=title, created_at=now)]) == {
        1: "Why is the sky blue on a clear afternoon, and red… · 1 Mar 09:07"
    }
