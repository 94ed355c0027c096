"""Exports: Markdown and text transcripts, lossless JSON, zips, file names, speed."""

import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import event, insert
from sqlmodel import Session, select

from chatcore import documents, store
from chatcore.archive import parse_archive
from chatcore.export import ExportError, Format, plan_export, slugify
from chatcore.models import Chat, Chunk, Message
from tests.conftest import at

GOLDEN = Path(__file__).parent / "golden"
CHAT_FIELDS = {*Chat.model_fields, "messages", "documents"}
OWNERSHIP = {"owner", "lease_until", "stop_requested"}  # which instance writes a reply: nothing to keep
MESSAGE_FIELDS = (set(Message.model_fields) - {"chat_id"} - OWNERSHIP) | {"sources"}


def today() -> str:
    """The day an export made now is named after, in UTC."""
    return time.strftime("%Y-%m-%d", time.gmtime())


@pytest.mark.parametrize("fmt", [Format.MARKDOWN, Format.TEXT])
def test_transcripts_match_the_golden_files(engine, sample_chats, fmt):
    export = plan_export(engine, sample_chats[:1], fmt)
    assert export.build().decode() == (GOLDEN / f"trip.{fmt.value}").read_text()
    assert export.filename == f"trip-to-b-lisbon-b-{today()}.{fmt.value}"


def test_json_holds_every_field_of_chats_and_messages(engine, sample_chats):
    document = json.loads(plan_export(engine, None, Format.JSON).build())
    assert document["format_version"] == 2
    assert document["exported_at"].endswith("Z")
    trip, soup = document["chats"]
    assert set(trip) == CHAT_FIELDS and all(set(message) == MESSAGE_FIELDS for message in trip["messages"])
    assert trip["title"] == "Trip to <b>Lisbon</b>"
    assert (trip["options"], trip["created_at"]) == ({"num_ctx": 4096}, "2025-03-01T09:00:00Z")
    finished, interrupted, failed = trip["messages"][1], trip["messages"][3], trip["messages"][4]
    assert (finished["status"], finished["reply_tokens"], finished["total_ms"]) == ("complete", 40, 2150.5)
    assert (interrupted["status"], interrupted["content"]) == ("partial", "Half an ans")
    assert (failed["status"], failed["error"]) == ("error", "Cannot reach Ollama at http://127.0.0.1:11434.")
    assert [message["content"] for message in soup["messages"]] == ["Soup?", "Yes."]
    assert trip["documents"] == soup["documents"] == []


def test_json_describes_the_documents_each_chat_uses(engine, sample_chats):
    trip, soup = sample_chats
    own = documents.add_file(engine, trip, "menu.txt", b"Soup of the day.", 2**20).document
    store.save_summary(engine, own.id, "Today's soup.", "llama3:8b")
    shared = documents.add_file(engine, None, "map.md", b"# Map\n\nTrams.", 2**20).document
    store.attach_document(engine, soup, shared.id)
    data = plan_export(engine, None, Format.JSON).build()
    exported = json.loads(data)
    [menu], [map_] = (chat["documents"] for chat in exported["chats"])
    assert menu == {
        "name": "menu.txt", "kind": "txt", "sha256": own.sha256, "size": 16, "pages": 1, "chunk_count": 1,
        "library": False, "created_at": own.created_at.isoformat().replace("+00:00", "Z"),
        "summary": "Today's soup.", "summary_model": "llama3:8b",
    }  # fmt: skip
    assert (map_["name"], map_["library"]) == ("map.md", True)
    assert [chat.documents[0].name for chat in parse_archive(data).chats] == ["menu.txt", "map.md"]  # reads back


@pytest.mark.parametrize(
    ("fmt", "pick", "name", "mime"),
    [
        (Format.MARKDOWN, "one", "recipes-{day}.md", "text/markdown"),
        (Format.TEXT, "one", "recipes-{day}.txt", "text/plain"),
        (Format.JSON, "one", "recipes-{day}.json", "application/json"),
        (Format.MARKDOWN, "all", "chatcore-export-{day}.zip", "application/zip"),
        (Format.TEXT, "both", "chatcore-export-{day}.zip", "application/zip"),
        (Format.JSON, "all", "chatcore-export-{day}.json", "application/json"),
    ],
)
def test_one_chat_is_one_file_several_are_a_zip_or_one_json(engine, sample_chats, fmt, pick, name, mime):
    chosen = {"one": sample_chats[1:], "both": sample_chats, "all": None}[pick]
    export = plan_export(engine, chosen, fmt)
    assert (export.filename, export.mime) == (name.format(day=today()), mime)


@pytest.mark.parametrize("fmt", [Format.MARKDOWN, Format.TEXT])
def test_a_zip_holds_each_chat_as_its_own_file(engine, sample_chats, fmt):
    with zipfile.ZipFile(io.BytesIO(plan_export(engine, None, fmt).build())) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    singles = [plan_export(engine, [chat_id], fmt) for chat_id in sample_chats]
    assert contents == {single.filename: single.build() for single in singles}


@pytest.mark.parametrize(
    ("fmt", "heading"),
    [
        (Format.MARKDOWN, "### Assistant · 2025-03-01 09:00:30 UTC"),
        (Format.TEXT, "[Assistant · 2025-03-01 09:00:30 UTC]"),
    ],
)
def test_a_reply_is_dated_when_it_was_finished(engine, sample_chats, fmt, heading):
    reply = store.list_messages(engine, sample_chats[0])[1]
    store.update_message(engine, reply.id, finished_at=at(9, 0, 30))
    assert heading in plan_export(engine, sample_chats[:1], fmt).build().decode()
    assert (
        json.loads(plan_export(engine, sample_chats[:1], Format.JSON).build())["chats"][0]["messages"][1]["finished_at"]
        == "2025-03-01T09:00:30Z"
    )


def test_a_zip_names_chats_of_the_same_title_apart(engine, sample_chats):
    store.update_chat(engine, sample_chats[0], title="Recipes")
    with zipfile.ZipFile(io.BytesIO(plan_export(engine, None, Format.MARKDOWN).build())) as archive:
        assert archive.namelist() == [f"recipes-{today()}.md", f"recipes-{sample_chats[1]}-{today()}.md"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Holiday plans", "holiday-plans"),
        ("What does the document say about errors?", "what-does-the-document-say-about-errors"),
        ("What does __init__.py do?", "what-does-init-py-do"),
        ("../../etc/passwd", "etc-passwd"),
        ("C:\\Windows\\system32", "c-windows-system32"),
        ('a<b>c:"d"|e?f*g', "a-b-c-d-e-f-g"),
        ("line\nbreak\ttab\x00nul", "line-break-tab-nul"),
        ("   spaced    out   ", "spaced-out"),
        (".hidden", "hidden"),
        ("..", "chat"),
        ("", "chat"),
        ("///", "chat"),
        ("Résumé / 日本語", "résumé-日本語"),
        ("x" * 300, "x" * 100),
        ("日" * 40, "日" * 33),  # 33 characters of 3 bytes each fit in 100 bytes
    ],
)
def test_slugify(title, expected):
    assert slugify(title) == expected


@pytest.mark.parametrize(
    ("chosen", "message"),
    [([999], "No chat with id 999."), ([1, 998, 999], "No chat with id 998, 999.")],
)
def test_export_of_a_missing_chat_is_refused(engine, sample_chats, chosen, message):
    with pytest.raises(ExportError, match=message):
        plan_export(engine, chosen, Format.MARKDOWN)


def test_export_of_an_empty_database_is_refused(engine):
    with pytest.raises(ExportError, match="no chats to export"):
        plan_export(engine, None, Format.JSON)


@pytest.mark.parametrize("fmt", list(Format))
def test_a_chat_is_read_in_a_fixed_number_of_queries(engine, sample_chats, fmt):
    export = plan_export(engine, None, fmt)
    queries = []
    event.listen(engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    export.build()
    per_chat = 2  # the messages, and the passages the replies were given
    documents_of_all = 2 if fmt == Format.JSON else 0
    assert len(queries) == len(sample_chats) * per_chat + documents_of_all


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(Format))
def test_ten_thousand_messages_export_whole_and_in_order(engine, fmt):
    chat = store.create_chat(engine)
    message = Message(chat_id=chat.id, role="user").model_dump(exclude={"id"})
    roles = ["user", "assistant"]
    rows = [message | {"role": roles[i % 2], "content": f"message {i}."} for i in range(10_000)]
    with Session(engine) as session:  # in one statement: 10,000 Message objects take seconds to make and add
        session.execute(insert(Message), rows)
        session.commit()
    text = plan_export(engine, None, fmt).build().decode()
    assert [int(number) for number in re.findall(r"message (\d+)\.", text)] == list(range(10_000))


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        (Format.MARKDOWN, "*Sources: [1] menu.md, section 1; [2] trams.txt, section 1*"),
        (Format.TEXT, "(Sources: [1] menu.md, section 1; [2] trams.txt, section 1)"),
    ],
)
def test_transcripts_list_the_sources_each_reply_was_given(engine, sample_chats, fmt, line):
    trip = sample_chats[0]
    added = [
        documents.add_file(engine, trip, name, text, 2**20).document
        for name, text in (("menu.md", b"# Menu\n\nSoup of the day."), ("trams.txt", b"Tram 28 climbs the hills."))
    ]
    with Session(engine) as session:
        chunks = [session.exec(select(Chunk.id).where(Chunk.document_id == document.id)).first() for document in added]
    first_reply = store.list_messages(engine, trip)[1]
    store.save_reply_sources(engine, first_reply.id, chunks)
    transcript = plan_export(engine, [trip], fmt).build().decode()
    assert transcript.count("Sources: ") == 1 and line in transcript


def test_a_deleted_documents_passages_stay_in_the_replies_that_were_given_them(engine, sample_chats):
    trip = sample_chats[0]
    added = [
        documents.add_file(engine, trip, name, text, 2**20).document
        for name, text in (("menu.md", b"# Menu\n\nSoup of the day."), ("trams.txt", b"Tram 28 climbs the hills."))
    ]
    first_reply = store.list_messages(engine, trip)[1]
    store.save_reply_sources(engine, first_reply.id, [store.document_chunks(engine, d.id)[0].id for d in added])
    store.delete_document(engine, added[1].id)
    [(kept, kept_present), (gone, gone_present)] = store.reply_sources(engine, [first_reply.id])[first_reply.id]
    assert (kept.document_name, kept_present) == ("menu.md", True)
    assert (gone.document_name, gone.page, gone.text, gone_present) == (
        "trams.txt",
        1,
        "Tram 28 climbs the hills.",
        False,
    )
    transcript = plan_export(engine, [trip], Format.MARKDOWN).build().decode()
    assert "*Sources: [1] menu.md, section 1; [2] trams.txt, section 1 (document deleted)*" in transcript
    documents.add_file(engine, trip, "trams again.txt", b"Tram 28 climbs the hills.", 2**20)  # the same file
    assert all(present for _, present in store.reply_sources(engine, [first_reply.id])[first_reply.id])
