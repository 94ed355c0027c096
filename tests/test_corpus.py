"""Odd real-world files: each is read and found by its words, or refused for the true reason, and nothing is kept.

The files are the shared corpus (its SOURCES.md says where each comes from); a few are made here.
"""

import codecs
import multiprocessing
import random

import pytest
from sqlalchemy import text

from chatcore import documents, retrieval, store
from chatcore.ingestion import DocumentError
from tests.documents import corpus_file, make_pdf

LIMIT = 50 * 2**20
PASSWORD = "is password protected: remove the password"
NO_PAGE = "is a damaged PDF and cannot be read: no page of it could be read"
SCAN = "no text found, only images: OCR is not supported"
DAMAGED_DOCX = "is a damaged DOCX file and cannot be read"
NOT_TEXT = "is not a text file, whatever its name says"

# file name, where its bytes come from, then ("read", a word that finds it) or ("refused", what the refusal says)
CORPUS = [
    ("hello_world_rotated.pdf", "corpus", "read", "hello"),  # 5 pages of "Hello world"
    ("issue17215.pdf", "corpus", "read", "dummy"),  # "Dummy PDF file"
    ("issue2840.pdf", "corpus", "read", "полиса"),  # a Cyrillic line
    ("bug1606566.pdf", "corpus", "read", "1606566"),  # no %PDF header
    ("issue-625-identity-cmap.pdf", "corpus", "read", "faktura"),  # the same page with a logo, twice
    ("zen_of_python_corrupted.pdf", "corpus", "read", "explicit"),  # a broken cross-reference table
    ("r4-aes-v2-no-key-length.pdf", "corpus", "read", "encryption"),  # AES-128, opens without a password
    ("r6-empty-password.pdf", "corpus", "read", "encryption"),  # AES-256, likewise
    ("r4-owner-password.pdf", "corpus", "read", "encryption"),  # an owner password only
    ("issue5202.pdf", "corpus", "read", "𩸽"),  # Japanese, no spaces
    ("issue13316_reduced.pdf", "corpus", "read", "通"),  # Chinese
    ("strict-format.docx", "corpus", "read", "test"),  # ISO Strict Open XML
    ("utf8-bom.docx", "corpus", "read", "mark"),  # its XML starts with a byte order mark
    ("documentProtection_readonly_no_password.docx", "corpus", "read", "readonly"),  # read-only, not encrypted
    ("EmptyDocumentWithHeaderFooter.docx", "corpus", "read", "blabla"),  # text in the header and footer only
    ("r4-aes-user-password.pdf", "corpus", "refused", PASSWORD),
    ("aes-256-r6.pdf", "corpus", "refused", PASSWORD),
    ("bug53475-password-is-pass.docx", "corpus", "refused", "is password protected: remove the password in Word"),
    ("protected_agile.docx", "corpus", "refused", "is password protected: remove the password in Word"),
    ("poppler-395-0-fuzzed.pdf", "corpus", "refused", NO_PAGE),  # a filter name pypdf no longer accepts
    ("operator-in-TJ-array.pdf", "corpus", "refused", NO_PAGE),
    ("bomb_giant.pdf", "corpus", "refused", NO_PAGE),  # a JBIG2 image pypdf has no decoder for
    ("issue15590.pdf", "corpus", "refused", "is a damaged PDF and cannot be read: it is cut short"),
    ("REDHAT-1531897-0.pdf", "corpus", "refused", "its table of contents is broken"),
    ("issue6069.pdf", "corpus", "refused", r"is a damaged PDF and cannot be read\.$"),
    ("imagemagick-lzw.pdf", "corpus", "refused", SCAN),
    ("imagemagick-CCITTFaxDecode.pdf", "corpus", "refused", SCAN),
    ("pdf-with-jbig2.pdf", "corpus", "refused", SCAN),
    ("Type3WordSpacing.pdf", "corpus", "refused", "no text found: its pages hold symbols but no words"),
    ("empty.pdf", "corpus", "refused", "no text found: its pages are blank"),
    ("ExternalEntityInText.docx", "corpus", "refused", DAMAGED_DOCX),  # an undefined XML entity
    ("truncated62886.docx", "corpus", "refused", DAMAGED_DOCX),
    ("clusterfuzz-testcase-minimized-POIXWPFFuzzer-5166796835258368.docx", "corpus", "refused", DAMAGED_DOCX),
    ("empty.docx", "corpus", "refused", r"empty\.docx: no text found\.$"),
    ("52117.docx", "52117.doc", "refused", r"is an older Word document \(\.doc\): save it in Word as \.docx"),
    ("utf16le.txt", codecs.BOM_UTF16_LE + "Grüße aus Köln".encode("utf-16-le"), "read", "köln"),
    ("utf16be.md", codecs.BOM_UTF16_BE + "# Titel\n\nGrüße".encode("utf-16-be"), "read", "grüße"),
    ("utf32.txt", "Text in thirty-two bits".encode("utf-32"), "read", "thirty"),
    ("random.txt", bytes(random.Random(14).choices(range(1, 256), k=4096)), "refused", NOT_TEXT),
    ("controls.txt", bytes([1, 2, 3, 7, 8, 27, 127]) * 100, "refused", NOT_TEXT),
    ("dashes.md", b"--- *** ---\n\n...\n", "refused", r"dashes\.md: no text found\.$"),
    ("half.txt", codecs.BOM_UTF16_LE + "odd".encode("utf-16-le") + b"!", "refused", "is marked as UTF-16 text but"),
]


def file_bytes(name: str, source) -> bytes:
    if isinstance(source, bytes):
        return source
    return corpus_file(name if source == "corpus" else source)


def count_rows(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()


@pytest.mark.parametrize(("name", "source", "outcome", "expected"), CORPUS, ids=[row[0] for row in CORPUS])
def test_each_file_is_read_and_found_or_refused_for_its_reason(engine, name, source, outcome, expected):
    chat = store.create_chat(engine)
    data = file_bytes(name, source)
    if outcome == "read":
        documents.add_file(engine, chat.id, name, data, LIMIT)
        assert [passage.name for passage in retrieval.find_passages(engine, chat.id, expected)][:1] == [name]
        return
    with pytest.raises(DocumentError, match=expected) as refused:
        documents.add_file(engine, chat.id, name, data, LIMIT)
    assert str(refused.value).startswith(name)
    assert count_rows(engine, "document") == count_rows(engine, "chunk") == 0


def test_a_file_that_takes_too_long_is_refused_and_its_reader_stopped(engine):
    chat = store.create_chat(engine)
    slow = make_pdf([f"Page {number} of a long report" for number in range(300)])
    with pytest.raises(DocumentError, match=r"^long\.pdf took longer than 0\.001 seconds to read, so it was left"):
        documents.add_file(engine, chat.id, "long.pdf", slow, LIMIT, seconds=0.001)
    assert multiprocessing.active_children() == []
    assert count_rows(engine, "document") == 0
    assert documents.add_file(engine, chat.id, "long.pdf", slow, LIMIT).document.pages == 300
