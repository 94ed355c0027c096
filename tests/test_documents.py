"""Adding documents: stored once in one transaction, per chat or in the library, on both databases."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chatcore import documents, store
from chatcore.chunking import Piece
from chatcore.ingestion import DocumentError
from tests.documents import make_pdf, sample

LIMIT = 50 * 2**20


def count_rows(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_a_pdf_is_stored_with_its_pages_and_chunks(engine):
    chat = store.create_chat(engine)
    added = documents.add_file(engine, chat.id, "pdflatex-4-pages.pdf", sample("pdflatex-4-pages.pdf"), LIMIT)
    document = added.document
    assert added.new and (document.kind, document.pages, document.chat_id) == ("pdf", 4, chat.id)
    assert document.chunk_count == count_rows(engine, "chunk") > 4
    assert store.list_documents(engine, chat.id) == [document]
    assert store.list_documents(engine, None) == []


def test_a_file_names_a_chat_without_messages_or_name_but_no_other(engine):
    empty, named, talking, asked = (store.create_chat(engine) for _ in range(4))
    store.update_chat(engine, named.id, title="My notes")
    store.add_message(engine, talking.id, "user", "Hello")
    for chat_id, name in ((empty.id, "a.md"), (named.id, "b.md"), (talking.id, "c.md"), (empty.id, "d.md")):
        documents.add_file(engine, chat_id, name, f"# {name}\n\nSome text.".encode(), LIMIT)
    documents.add_file(engine, asked.id, "e.md", b"# e\n\nSome text.", LIMIT, name_chat=False)  # sent with a message
    titles = [store.get_chat(engine, chat.id).title for chat in (empty, named, talking, asked)]
    assert titles == ["a.md", "My notes", store.DEFAULT_TITLE, store.DEFAULT_TITLE]


def test_the_same_file_is_stored_once_and_shared_through_the_library(engine):
    first, second = store.create_chat(engine), store.create_chat(engine)
    data = make_pdf(["Shared page text for two chats"])
    kept = documents.add_file(engine, first.id, "a.pdf", data, LIMIT).document
    again = documents.add_file(engine, second.id, "renamed.pdf", data, LIMIT)
    assert not again.new and again.document.id == kept.id
    assert [d.id for d in store.list_documents(engine, first.id)] == [kept.id]
    assert [d.id for d in store.list_documents(engine, second.id)] == [kept.id]
    assert [d.id for d in store.list_documents(engine, None)] == [kept.id]
    assert documents.add_file(engine, second.id, "a.pdf", data, LIMIT).document.id == kept.id
    assert count_rows(engine, "document") == 1


def test_a_chat_s_file_added_to_the_library_moves_there_and_stays_attached(engine):
    chat = store.create_chat(engine)
    data = b"Notes kept for every chat."
    kept = documents.add_file(engine, chat.id, "notes.txt", data, LIMIT).document
    assert not documents.add_file(engine, None, "notes.txt", data, LIMIT).new
    assert [d.id for d in store.list_documents(engine, None)] == [kept.id]
    assert [d.id for d in store.list_documents(engine, chat.id)] == [kept.id]


def test_attach_detach_and_delete_library_documents(engine):
    chat = store.create_chat(engine)
    document = documents.add_file(engine, None, "notes.md", b"# Notes\n\nSome notes.", LIMIT).document
    store.attach_document(engine, chat.id, document.id)
    store.attach_document(engine, chat.id, document.id)
    assert [d.id for d in store.list_documents(engine, chat.id)] == [document.id]
    store.detach_document(engine, chat.id, document.id)
    assert store.list_documents(engine, chat.id) == []
    store.attach_document(engine, chat.id, document.id)
    store.delete_document(engine, document.id)
    assert store.list_documents(engine, None) == store.list_documents(engine, chat.id) == []
    assert count_rows(engine, "chunk") == count_rows(engine, "document_attachment") == 0


def test_deleting_a_chat_deletes_its_own_documents(engine):
    chat = store.create_chat(engine)
    documents.add_file(engine, chat.id, "notes.txt", b"Just for this chat.", LIMIT)
    store.delete_chat(engine, chat.id)
    assert count_rows(engine, "document") == count_rows(engine, "chunk") == 0


@pytest.mark.parametrize(
    ("name", "data"),
    [("scan.pdf", make_pdf(["", ""])), ("fake.pdf", b"plain text"), ("empty.md", b"")],
)
def test_a_bad_file_writes_nothing(engine, name, data):
    with pytest.raises(DocumentError):
        documents.add_file(engine, None, name, data, LIMIT)
    assert count_rows(engine, "document") == count_rows(engine, "chunk") == 0


def test_a_failure_while_storing_leaves_nothing(engine, monkeypatch):
    refused = [Piece(0, 1, 0, 4, None)]  # the database refuses a chunk without text, after the document row
    monkeypatch.setattr(documents, "chunk_sections", lambda _sections: refused)
    with pytest.raises(IntegrityError):
        documents.add_file(engine, None, "a.pdf", make_pdf(["A page that will not be stored"]), LIMIT)
    assert count_rows(engine, "document") == count_rows(engine, "chunk") == 0
