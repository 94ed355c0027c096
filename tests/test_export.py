"""Exports: Markdown and text transcripts, lossless JSON, zips, file names, speed."""

import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from chatcore import documents, store
from chatcore.archive import parse_archive
from chatcore.export import ExportError, Format, plan_export, sanitize_filename
from chatcore.models import Chat, Chunk, Message

GOLDEN = Path(__file__).parent / "golden"
CHAT_FIELDS = {*Chat.model_fields, "messages", "documents"}
MESSAGE_FIELDS = set(Message.model_fields) - {"chat_id"}


@pytest.mark.parametrize("fmt", [Format.MARKDOWN, Format.TEXT])
def test_transcripts_match_the_golden_files(engine, sample_chats, fmt):
    export = plan_export(engine, sample_chats[:1], fmt)
    assert export.build().decode() == (GOLDEN / f"trip.{fmt.value}").read_text()
    assert export.filename == f"Trip to _b_Lisbon_b-{sample_chats[0]}.{fmt.value}"


def test_json_holds_every_field_of_chats_and_messages(engine, sample_chats):
    document = json.loads(plan_export(engine, None, Format.JSON).build())
    assert document["format_version"] == 1
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
        (Format.MARKDOWN, "one", "Recipes-{id}.md", "text/markdown"),
        (Format.TEXT, "one", "Recipes-{id}.txt", "text/plain"),
        (Format.JSON, "one", "Recipes-{id}.json", "application/json"),
        (Format.MARKDOWN, "all", "chatcore-export-{day}.zip", "application/zip"),
        (Format.TEXT, "both", "chatcore-export-{day}.zip", "application/zip"),
        (Format.JSON, "all", "chatcore-export-{day}.json", "application/json"),
    ],
)
def test_one_chat_is_one_file_several_are_a_zip_or_one_json(engine, sample_chats, fmt, pick, name, mime):
    chosen = {"one": sample_chats[1:], "both": sample_chats, "all": None}[pick]
    export = plan_export(engine, chosen, fmt)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert (export.filename, export.mime) == (name.format(id=sample_chats[1], day=day), mime)


@pytest.mark.parametrize("fmt", [Format.MARKDOWN, Format.TEXT])
def test_a_zip_holds_each_chat_as_its_own_file(engine, sample_chats, fmt):
    with zipfile.ZipFile(io.BytesIO(plan_export(engine, None, fmt).build())) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    singles = [plan_export(engine, [chat_id], fmt) for chat_id in sample_chats]
    assert contents == {single.filename: single.build() for single in singles}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Holiday plans", "Holiday plans"),
        ("../../etc/passwd", "etc_passwd"),
        ("C:\\Windows\\system32", "C_Windows_system32"),
        ('a<b>c:"d"|e?f*g', "a_b_c_d_e_f_g"),
        ("line\nbreak\ttab\x00nul", "line_break_tab_nul"),
        ("   spaced    out   ", "spaced out"),
        (".hidden", "hidden"),
        ("..", "chat"),
        ("", "chat"),
        ("///", "chat"),
        ("CON", "chat"),
        ("nul.txt", "chat"),
        ("Résumé / 日本語", "Résumé _ 日本語"),
        ("x" * 300, "x" * 100),
        ("日" * 40, "日" * 33),  # 33 characters of 3 bytes each fit in 100 bytes
    ],
)
def test_sanitize_filename(title, expected):
    assert sanitize_filename(title) == expected


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
    per_chat = 1 if fmt == Format.JSON else 2  # the messages; in transcripts, also the replies' sources
    documents_of_all = 2 if fmt == Format.JSON else 0
    assert len(queries) == len(sample_chats) * per_chat + documents_of_all


@pytest.mark.parametrize("fmt", list(Format))
def test_ten_thousand_messages_export_whole_and_in_order(engine, fmt):
    chat = store.create_chat(engine)
    with Session(engine) as session:
        roles = ["user", "assistant"]
        session.add_all(Message(chat_id=chat.id, role=roles[i % 2], content=f"message {i}.") for i in range(10_000))
        session.commit()
    text = plan_export(engine, None, fmt).build().decode()
    positions = [text.find(f"message {i}.") for i in range(10_000)]
    assert -1 not in positions and positions == sorted(positions)


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
