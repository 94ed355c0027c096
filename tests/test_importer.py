"""Imports: a lossless round trip, no duplicates, and hostile files refused with nothing written."""

import codecs
import json

import pytest

from chatcore import archive, documents, importer, store
from chatcore.archive import MAX_CHATS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, ArchiveError
from chatcore.export import Format, plan_export
from chatcore.importer import ImportReport, import_archive
from tests.conftest import at


@pytest.fixture
def other_engine(tmp_path):
    """A second, empty database to import into."""
    engine = store.open_engine(f"sqlite:///{tmp_path / 'other.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def exported(engine, sample_chats) -> bytes:
    """The JSON export of the sample chats."""
    return plan_export(engine, None, Format.JSON).build()


def comparable(export: bytes) -> dict:
    """An export without what may differ between databases: ids and the export's own time."""
    document = json.loads(export)
    del document["exported_at"]
    for chat in document["chats"]:
        del chat["id"]
        for message in chat["messages"]:
            del message["id"]
    return document


def database_contents(engine) -> dict:
    """Everything stored, to check that a refused import wrote nothing."""
    chats = store.find_chats(engine, None)
    return {
        chat.model_dump_json(): [m.model_dump_json() for m in store.list_messages(engine, chat.id)] for chat in chats
    }


def edited(change):
    """A change of the export's bytes, made to its parsed document."""

    def apply(raw: bytes) -> bytes:
        document = json.loads(raw)
        change(document)
        return json.dumps(document).encode()

    return apply


def parent_and_key(document: dict, path: str) -> tuple:
    """The container of the field at a path such as chats.1.messages.0.role, and the field's key."""
    *parents, key = [int(part) if part.isdigit() else part for part in path.split(".")]
    for part in parents:
        document = document[part]
    return document, key


def set_field(path: str, value):
    """A change that sets one field."""

    def change(document: dict) -> None:
        parent, key = parent_and_key(document, path)
        parent[key] = value

    return edited(change)


def drop_field(path: str):
    """A change that removes one field."""

    def change(document: dict) -> None:
        parent, key = parent_and_key(document, path)
        del parent[key]

    return edited(change)


EXPORT_TO_IMPORT = "Export chats as JSON on chatcore's Export page to get a file to import."
NOT_JSON = f"This file is not a chatcore export: its contents are not JSON. {EXPORT_TO_IMPORT}"
NOT_AN_EXPORT = f"This file is not a chatcore export: it is JSON, but of another kind. {EXPORT_TO_IMPORT}"
EXPORT_AGAIN = "export the chats again as JSON on chatcore's Export page."
NOT_UTF8 = (
    "The file is not in UTF-8, the text encoding of chatcore's exports: an editor may have saved it in another one. "
    f"Save it as UTF-8 in your text editor (in Windows Notepad: Save As, Encoding: UTF-8), or {EXPORT_AGAIN}"
)
# How the validation library words problems, which must never reach the user.
LIBRARY_WORDING = ("Invalid JSON", "EOF while parsing", "Field required", "Input should", "Extra inputs", "should have",
                   "Value error", "chats[")  # fmt: skip


def bad_places(*places: str) -> str:
    """The message listing the places where an export breaks the format."""
    listed = "\n".join(f"- {place}" for place in places)
    header = "This chatcore export has problems, so nothing was imported:"
    return f"{header}\n{listed}\n\nCorrect these places in the file, or {EXPORT_AGAIN}"


def assert_in_the_users_words(message: str) -> None:
    assert not [words for words in LIBRARY_WORDING if words in message]


def test_round_trip_into_an_empty_database_gives_the_same_export(exported, other_engine):
    report = import_archive(other_engine, exported)
    assert report == ImportReport(imported=["Trip to <b>Lisbon</b>", "Recipes"], skipped=[])
    assert comparable(plan_export(other_engine, None, Format.JSON).build()) == comparable(exported)


def test_importing_twice_adds_nothing_the_second_time(exported, other_engine):
    import_archive(other_engine, exported)
    report = import_archive(other_engine, exported)
    assert report == ImportReport(imported=[], skipped=["Trip to <b>Lisbon</b>", "Recipes"])
    assert store.count_chats(other_engine) == 2


def test_chats_exported_from_this_database_are_recognised(engine, exported):
    before = database_contents(engine)
    assert import_archive(engine, exported).imported == []
    assert database_contents(engine) == before


def test_a_chat_twice_in_one_file_is_imported_once(exported, other_engine):
    document = json.loads(exported)
    document["chats"].append(document["chats"][0])
    report = import_archive(other_engine, json.dumps(document).encode())
    assert report.skipped == ["Trip to <b>Lisbon</b>"]
    assert store.count_chats(other_engine) == 2


def test_a_continued_chat_gets_only_the_messages_it_lacks(engine, sample_chats, other_engine):
    import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    store.add_message(engine, sample_chats[1], "user", "And bread?")
    report = import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    assert report == ImportReport(extended=["Recipes"], skipped=["Trip to <b>Lisbon</b>"], added_messages=1)
    assert store.count_chats(other_engine) == 2
    recipes = next(chat for chat in store.find_chats(other_engine, None) if chat.title == "Recipes")
    assert [m.content for m in store.list_messages(other_engine, recipes.id)] == ["Soup?", "Yes.", "And bread?"]
    assert comparable(plan_export(other_engine, None, Format.JSON).build()) == comparable(
        plan_export(engine, None, Format.JSON).build()
    )


def test_an_older_backup_imported_after_the_chat_went_on_adds_no_duplicate(engine, sample_chats):
    backup = plan_export(engine, None, Format.JSON).build()
    store.add_message(engine, sample_chats[1], "user", "And bread?")
    store.update_chat(engine, sample_chats[1], title="Soups and breads")
    report = import_archive(engine, backup)
    assert report == ImportReport(skipped=["Trip to <b>Lisbon</b>", "Soups and breads"])
    assert store.count_chats(engine) == 2
    assert store.count_messages(engine, sample_chats[1]) == 3


def test_a_chat_changed_on_both_sides_is_left_as_it_is_and_said_so(engine, sample_chats, other_engine):
    import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    store.add_message(engine, sample_chats[1], "user", "And bread?")
    [copy] = [chat for chat in store.find_chats(other_engine, None) if chat.title == "Recipes"]
    store.add_message(other_engine, copy.id, "user", "And salad?")
    report = import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    assert report.diverged == ["Recipes"] and "changed both here and in the file" in report.summary()
    assert [m.content for m in store.list_messages(other_engine, copy.id)] == ["Soup?", "Yes.", "And salad?"]
    assert store.count_chats(other_engine) == 2


def as_version_1(export: bytes) -> bytes:
    """An export as chatcore wrote it before chats had a uid and replies their sources and finishing time."""
    document = json.loads(export)
    document["format_version"] = 1
    for chat in document["chats"]:
        del chat["uid"]
        for message in chat["messages"]:
            del message["sources"], message["finished_at"]
    return json.dumps(document).encode()


def test_a_version_1_export_imports_and_is_recognised_after_the_chat_went_on(engine, sample_chats, other_engine):
    backup = as_version_1(plan_export(engine, None, Format.JSON).build())
    assert import_archive(other_engine, backup).imported == ["Trip to <b>Lisbon</b>", "Recipes"]
    [copy] = [chat for chat in store.find_chats(other_engine, None) if chat.title == "Recipes"]
    store.add_message(other_engine, copy.id, "user", "And bread?")
    assert import_archive(other_engine, backup) == ImportReport(skipped=["Trip to <b>Lisbon</b>", "Recipes"])
    assert store.count_chats(other_engine) == 2


def test_sources_and_finishing_times_round_trip(engine, sample_chats, other_engine):
    trip = sample_chats[0]
    added = documents.add_file(engine, trip, "menu.md", b"# Menu\n\nSoup of the day.", 2**20).document
    reply = store.list_messages(engine, trip)[1]
    store.save_reply_sources(engine, reply.id, [chunk.id for chunk in store.document_chunks(engine, added.id)])
    store.update_message(engine, reply.id, finished_at=at(9, 0, 9))
    exported = plan_export(engine, None, Format.JSON).build()
    import_archive(other_engine, exported)
    again = plan_export(other_engine, None, Format.JSON).build()
    without_documents = [comparable(export) for export in (exported, again)]
    for document in without_documents:  # described, not carried: the files are added again after an import
        for chat in document["chats"]:
            del chat["documents"]
    assert without_documents[0] == without_documents[1]
    message = json.loads(again)["chats"][0]["messages"][1]
    assert message["finished_at"] == "2025-03-01T09:00:09Z"
    assert message["sources"] == [
        {"label": 1, "document_sha256": added.sha256, "document_name": "menu.md", "document_kind": "md",
         "page": 1, "text": "# Menu\n\nSoup of the day."}
    ]  # fmt: skip


def saved_as(encoding: str, mark: bytes = b""):
    """A change of the export's bytes to the same text saved by an editor in another encoding, after this mark."""
    return lambda raw: mark + raw.decode().encode(encoding)


# Windows Notepad's "UTF-8 with BOM" (its "UTF-8" until 2019), "UTF-16 LE" and "UTF-16 BE" (once "Unicode" and
# "Unicode big endian"), and UTF-32, which the byte order marks also tell.
@pytest.mark.parametrize(
    "save",
    [
        pytest.param(saved_as("utf-8-sig"), id="UTF-8 with a byte order mark"),
        pytest.param(saved_as("utf-16-le", codecs.BOM_UTF16_LE), id="UTF-16 little-endian"),
        pytest.param(saved_as("utf-16-be", codecs.BOM_UTF16_BE), id="UTF-16 big-endian"),
        pytest.param(saved_as("utf-32-le", codecs.BOM_UTF32_LE), id="UTF-32 little-endian"),
        pytest.param(saved_as("utf-32-be", codecs.BOM_UTF32_BE), id="UTF-32 big-endian"),
    ],
)
def test_an_export_saved_again_in_another_unicode_encoding_imports_as_it_was(exported, other_engine, save):
    assert import_archive(other_engine, save(exported)).imported == ["Trip to <b>Lisbon</b>", "Recipes"]
    assert comparable(plan_export(other_engine, None, Format.JSON).build()) == comparable(exported)


def test_html_is_stored_as_text(exported, other_engine):
    import_archive(other_engine, exported)
    trip = store.find_chats(other_engine, None)[0]
    assert trip.title == "Trip to <b>Lisbon</b>"
    assert store.list_messages(other_engine, trip.id)[2].content == "And <script>alert(1)</script>?"


def test_times_with_an_offset_are_stored_in_utc(exported, other_engine):
    document = json.loads(exported)
    document["chats"][0]["created_at"] = "2025-03-01T10:00:00+01:00"
    import_archive(other_engine, json.dumps(document).encode())
    assert store.find_chats(other_engine, None)[0].created_at.isoformat() == "2025-03-01T09:00:00+00:00"


def test_a_failure_while_writing_leaves_nothing_behind(exported, other_engine, monkeypatch):
    add_chat = importer.add_chat
    added = []

    def fail_on_the_second_chat(session, record):
        if added:
            raise RuntimeError("disk full")
        add_chat(session, record)
        added.append(record)

    monkeypatch.setattr(importer, "add_chat", fail_on_the_second_chat)
    with pytest.raises(RuntimeError, match="disk full"):
        import_archive(other_engine, exported)
    assert store.count_chats(other_engine) == 0


def test_a_file_too_large_is_refused_before_parsing(exported, other_engine, monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 3 * 2**20)
    with pytest.raises(ArchiveError) as refused:
        import_archive(other_engine, exported + b" " * 3 * 2**20)
    assert str(refused.value) == (
        "The file is larger than 3 MB, the most chatcore imports at once. "
        "Export fewer chats per file on chatcore's Export page, then import each file."
    )


def test_problems_are_listed_briefly_however_long_the_names_in_the_file(exported, other_engine):
    hostile = edited(lambda document: document["chats"][0].update({f"<b>{index}</b>" * 1000: 1 for index in range(50)}))
    with pytest.raises(ArchiveError) as refused:
        import_archive(other_engine, hostile(exported))
    assert len(str(refused.value)) < 1000
    assert "\n- … and 45 more\n" in str(refused.value)
    assert_in_the_users_words(str(refused.value))


# The second chat is the broken one, so the first, valid, chat must not be written either.
MALFORMED = [
    pytest.param(lambda raw: b"", f"The file is empty. {EXPORT_TO_IMPORT}", id="empty"),
    pytest.param(lambda raw: b"hello", NOT_JSON, id="not JSON"),
    pytest.param(
        lambda raw: raw[: len(raw) // 2],
        f"The file is cut short: it ends before the export does. Import the whole file, or {EXPORT_AGAIN}",
        id="truncated",
    ),
    pytest.param(
        lambda raw: b'{\n  "format_version": 2,\n  "chats": [}\n',
        "The file is damaged: it stops being valid JSON at line 3, column 13. "
        f"Repair the file there, or {EXPORT_AGAIN}",
        id="damaged",
    ),
    pytest.param(
        lambda raw: codecs.BOM_UTF8 + b'{\n  "format_version": 2,\n  "chats": [}\n',
        "The file is damaged: it stops being valid JSON at line 3, column 13. "
        f"Repair the file there, or {EXPORT_AGAIN}",
        id="damaged, with a byte order mark",
    ),
    pytest.param(saved_as("cp1252"), NOT_UTF8, id="Windows-1252 (Notepad's ANSI)"),
    pytest.param(saved_as("utf-16-le"), NOT_UTF8, id="UTF-16 without a byte order mark"),
    pytest.param(
        lambda raw: saved_as("utf-16-le", codecs.BOM_UTF16_LE)(raw)[:-1],
        f"The file is marked as UTF-16 text but is not: it is damaged. Import an undamaged copy, or {EXPORT_AGAIN}",
        id="UTF-16 cut inside a character",
    ),
    pytest.param(lambda raw: b"[]", NOT_AN_EXPORT, id="not an object"),
    pytest.param(lambda raw: b'{"hello": "world"}', NOT_AN_EXPORT, id="other JSON"),
    pytest.param(drop_field("format_version"), NOT_AN_EXPORT, id="missing format_version"),
    pytest.param(set_field("format_version", "1"), NOT_AN_EXPORT, id="format_version as text"),
    pytest.param(set_field("format_version", 0), NOT_AN_EXPORT, id="format_version 0"),
    pytest.param(
        edited(lambda document: document.update(format_version=3, chats=[{"newer": True}])),
        "This export is from a newer chatcore (format version 3); this one reads format versions 1 and 2. "
        "Update chatcore, then import the file again.",
        id="newer format_version",
    ),
    pytest.param(
        set_field("chats.1.messages.0.role", "bot"),
        bad_places("Chat 2, message 1: `role` must be 'user', 'assistant' or 'system'"),
        id="unknown role",
    ),
    pytest.param(
        set_field("chats.1.messages.1.status", "done"),
        bad_places(
            "Chat 2, message 2: `status` must be "
            "'queued', 'streaming', 'complete', 'cut', 'stopped', 'partial' or 'error'"
        ),
        id="unknown status",
    ),
    pytest.param(
        set_field("chats.1.messages.1.reply_tokens", "12"),
        bad_places("Chat 2, message 2: `reply_tokens` must be a whole number"),
        id="tokens as text",
    ),
    pytest.param(
        set_field("chats.1.messages.1.reply_tokens", True),
        bad_places("Chat 2, message 2: `reply_tokens` must be a whole number"),
        id="tokens as bool",
    ),
    pytest.param(
        set_field("chats.1.messages.1.total_ms", -1.0),
        bad_places("Chat 2, message 2: `total_ms` must be 0 or more"),
        id="negative time",
    ),
    pytest.param(
        set_field("chats.1.messages.0.content", ["a"]),
        bad_places("Chat 2, message 1: `content` must be text, in quotes"),
        id="content as list",
    ),
    pytest.param(
        lambda raw: raw.replace(b"2150.5", b"NaN"),
        bad_places("Chat 1, message 2: `total_ms` must be a number, not NaN or infinity"),
        id="NaN",
    ),
    pytest.param(
        set_field("chats.1.created_at", "yesterday"),
        bad_places("Chat 2: `created_at` must be a date and time such as 2025-03-01T09:00:00Z"),
        id="bad time",
    ),
    pytest.param(
        set_field("chats.1.messages.0.content", "x" * (MAX_TEXT_CHARS + 1)),
        bad_places("Chat 2, message 1: `content` is longer than 2000000 characters"),
        id="huge content",
    ),
    pytest.param(
        set_field("chats.1.title", "t" * (MAX_TITLE_CHARS + 1)),
        bad_places("Chat 2: `title` is longer than 500 characters"),
        id="long title",
    ),
    pytest.param(
        set_field("chats.1.uid", "not-a-uid"),
        bad_places("Chat 2: `uid` is not in the form chatcore writes"),
        id="bad uid",
    ),
    pytest.param(
        drop_field("chats.1.messages.0.content"),
        bad_places("Chat 2, message 1: `content` is missing"),
        id="missing field",
    ),
    pytest.param(drop_field("chats"), bad_places("`chats` is missing"), id="missing chats"),
    pytest.param(
        set_field("chats.1.source", "elsewhere"),
        bad_places("Chat 2: `source` is not part of a chatcore export"),
        id="unknown field",
    ),
    pytest.param(
        set_field("chats.1.messages", ["hello"]),
        bad_places("Chat 2, message 1 must be a JSON object, in braces"),
        id="message not an object",
    ),
    pytest.param(
        set_field("chats.1.messages.1.sources", [{"label": 1, "page": -1}]),
        bad_places(
            "Chat 2, message 2, source 1: `document_sha256` is missing",
            "Chat 2, message 2, source 1: `document_name` is missing",
            "Chat 2, message 2, source 1: `document_kind` is missing",
            "Chat 2, message 2, source 1: `page` must be 0 or more",
            "Chat 2, message 2, source 1: `text` is missing",
        ),
        id="bad source",
    ),
    pytest.param(
        set_field("chats.1.documents", [{"kind": "exe", "library": "yes"}]),
        bad_places(
            "Chat 2, document 1: `name` is missing",
            "Chat 2, document 1: `kind` must be 'pdf', 'docx', 'txt' or 'md'",
            "Chat 2, document 1: `sha256` is missing",
            "Chat 2, document 1: `size` is missing",
            "Chat 2, document 1: `pages` is missing",
            "… and 3 more",
        ),
        id="bad document",
    ),
    pytest.param(
        set_field("chats.1.memory_until", 999_999),
        bad_places("Chat 2 has `memory_until` 999999, which is not the id of one of its messages"),
        id="memory outside the chat",
    ),
    pytest.param(
        edited(lambda document: document["chats"].extend(document["chats"][:1] * MAX_CHATS)),
        bad_places("`chats` has more than 10000 entries"),
        id="too many chats",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_malformed_files_are_refused_in_words_and_nothing_is_written(exported, other_engine, change, message):
    store.create_chat(other_engine)
    before = database_contents(other_engine)
    with pytest.raises(ArchiveError) as refused:
        import_archive(other_engine, change(exported))
    assert str(refused.value) == message
    assert_in_the_users_words(str(refused.value))
    assert database_contents(other_engine) == before


@pytest.mark.parametrize(
    ("report", "summary"),
    [
        (ImportReport(), "Imported 0 chats."),
        (ImportReport(imported=["Plans"]), "Imported 1 chat: “Plans”."),
        (
            ImportReport(imported=["A", "B"], skipped=["C"]),
            "Imported 2 chats: “A”, “B”. Skipped 1 chat already here: “C”.",
        ),
        (
            ImportReport(skipped=list("abcdefghijkl")),
            "Imported 0 chats. Skipped 12 chats already here: “a”, “b”, “c”, “d”, “e”, “f”, “g”, “h”, “i”, “j” "
            "and 2 more.",
        ),
        (
            ImportReport(extended=["A"], diverged=["B"], added_messages=2),
            "Imported 0 chats. Added 2 messages to 1 chat: “A”. Skipped 1 chat changed both here and in the file "
            "since the export (left as they are here): “B”.",
        ),
    ],
)
def test_report_summary(report, summary):
    assert report.summary() == summary


def test_a_chat_memory_survives_the_round_trip(engine, sample_chats, other_engine):
    trip_messages = store.list_messages(engine, sample_chats[0])
    store.save_memory(
        engine, sample_chats[0], expected_until=None, memory="They ate at the market.", until=trip_messages[1].id
    )
    import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    imported = next(chat for chat in store.find_chats(other_engine, None) if chat.memory)
    covered = next(
        message for message in store.list_messages(other_engine, imported.id) if message.id == imported.memory_until
    )
    assert (imported.memory, covered.content) == ("They ate at the market.", trip_messages[1].content)
