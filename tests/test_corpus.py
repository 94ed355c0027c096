"""Odd files: each is read and found by its words, or refused for the true reason, and nothing is kept.

The files are made here (tests/odd_files.py), each with an oddity found in real-world files. The real-world files
themselves (bench/corpus-sources.md lists them) are checked too where CHATCORE_TEST_CORPUS names their folder.
"""

import codecs
import multiprocessing
import random

import pytest
from sqlalchemy import text

from chatcore import documents, retrieval, store
from chatcore.ingestion import DocumentError
from tests import odd_files
from tests.documents import CORPUS, make_pdf

LIMIT = 50 * 2**20
PASSWORD = "is password protected: remove the password"
WORD_PASSWORD = "is password protected: remove the password in Word"
NO_PAGE = "is a damaged PDF and cannot be read: no page of it could be read"
CUT_SHORT = "is a damaged PDF and cannot be read: it is cut short"
BROKEN_CONTENTS = "its table of contents is broken"
SCAN = "no text found, only images: OCR is not supported"
SYMBOLS = "no text found: its pages hold symbols but no words"
BLANK = "no text found: its pages are blank"
DAMAGED_DOCX = "is a damaged DOCX file and cannot be read"
OLDER_WORD = r"is an older Word document \(\.doc\): save it in Word as \.docx"
NOT_TEXT = "is not a text file, whatever its name says"
TEXT = "Explicit is better than implicit"

# file name, its bytes, then ("read", a word that finds it) or ("refused", what the refusal says)
MADE = [
    ("hello_pages.pdf", make_pdf(["Hello world"] * 5), "read", "hello"),
    ("cyrillic.pdf", odd_files.unicode_pdf(["Номер полиса: 12345"]), "read", "полиса"),
    ("japanese.pdf", odd_files.unicode_pdf(["𩸽は魚の名前です"]), "read", "𩸽"),  # no spaces, a character past 16 bits
    ("chinese.pdf", odd_files.unicode_pdf(["开票通知单"]), "read", "开票"),  # found by the run's start (README)
    ("no_header.pdf", odd_files.headerless_pdf([TEXT]), "read", "explicit"),
    ("junk_first.pdf", odd_files.junk_before_header_pdf([TEXT]), "read", "explicit"),
    ("broken_xref.pdf", odd_files.broken_xref_pdf([TEXT]), "read", "explicit"),
    ("aes128.pdf", odd_files.encrypted_pdf("About encryption", "", "AES-128"), "read", "encryption"),
    ("aes256.pdf", odd_files.encrypted_pdf("About encryption", "", "AES-256"), "read", "encryption"),
    ("owner_only.pdf", odd_files.encrypted_pdf("About encryption", ""), "read", "encryption"),
    ("strict.docx", odd_files.strict_docx(["A test of the strict format"]), "read", "test"),
    ("bom.docx", odd_files.bom_docx(["Byte order mark first"]), "read", "mark"),
    ("readonly.docx", odd_files.read_only_docx(["This one is readonly"]), "read", "readonly"),
    ("header_footer.docx", odd_files.header_footer_docx("blabla on top", "and below"), "read", "blabla"),
    ("aes128_locked.pdf", odd_files.encrypted_pdf("Locked", "secret", "AES-128"), "refused", PASSWORD),
    ("aes256_locked.pdf", odd_files.encrypted_pdf("Locked", "secret", "AES-256"), "refused", PASSWORD),
    ("locked.docx", odd_files.ole_file(["EncryptionInfo", "EncryptedPackage"]), "refused", WORD_PASSWORD),
    ("older.docx", odd_files.ole_file(["WordDocument"]), "refused", OLDER_WORD),
    ("old_filter.pdf", odd_files.filtered_pdf("/A85", TEXT), "refused", NO_PAGE),  # a name pypdf no longer takes
    ("jbig2_text.pdf", odd_files.filtered_pdf("/JBIG2Decode", TEXT), "refused", NO_PAGE),  # no decoder for it
    ("operator_in_array.pdf", odd_files.pdf_with_operator_in_text_array("Grandes"), "refused", NO_PAGE),
    ("cut_short.pdf", odd_files.cut_short_pdf([TEXT]), "refused", CUT_SHORT),
    ("misdirected.pdf", odd_files.misdirected_xref_pdf([TEXT]), "refused", BROKEN_CONTENTS),
    ("half.pdf", odd_files.half_pdf([TEXT]), "refused", r"^half\.pdf is a damaged PDF and cannot be read\.$"),
    ("scan.pdf", odd_files.image_pdf(["", ""]), "refused", SCAN),
    ("labelled_scan.pdf", odd_files.image_pdf(["Scan", "Scan"]), "refused", SCAN),  # a label, no text layer
    ("jbig2_scan.pdf", odd_files.image_pdf([""], "/JBIG2Decode"), "refused", SCAN),
    ("symbols.pdf", make_pdf(["--- *** ...", "+ + +"]), "refused", SYMBOLS),
    ("blank.pdf", make_pdf(["", "", ""]), "refused", BLANK),
    ("entity.docx", odd_files.undefined_entity_docx(), "refused", DAMAGED_DOCX),
    ("truncated.docx", odd_files.plain_docx([TEXT * 20])[:300], "refused", DAMAGED_DOCX),
    ("bad_directory.docx", odd_files.docx_with_bad_central_directory([TEXT]), "refused", DAMAGED_DOCX),
    ("empty.docx", odd_files.plain_docx([]), "refused", r"^empty\.docx: no text found\.$"),
    ("utf16le.txt", codecs.BOM_UTF16_LE + "Grüße aus Köln".encode("utf-16-le"), "read", "köln"),
    ("utf16be.md", codecs.BOM_UTF16_BE + "# Titel\n\nGrüße".encode("utf-16-be"), "read", "grüße"),
    ("utf32.txt", "Text in thirty-two bits".encode("utf-32"), "read", "thirty"),
    ("random.txt", bytes(random.Random(14).choices(range(1, 256), k=4096)), "refused", NOT_TEXT),
    ("controls.txt", bytes([1, 2, 3, 7, 8, 27, 127]) * 100, "refused", NOT_TEXT),
    ("dashes.md", b"--- *** ---\n\n...\n", "refused", r"dashes\.md: no text found\.$"),
    ("half.txt", codecs.BOM_UTF16_LE + "odd".encode("utf-16-le") + b"!", "refused", "is marked as UTF-16 text but"),
]
# The real-world corpus: file name, then as above
REAL_WORLD = [
    ("hello_world_rotated.pdf", "read", "hello"),  # 5 pages of "Hello world"
    ("issue17215.pdf", "read", "dummy"),  # "Dummy PDF file"
    ("issue2840.pdf", "read", "полиса"),  # a Cyrillic line
    ("bug1606566.pdf", "read", "1606566"),  # no %PDF header
    ("issue-625-identity-cmap.pdf", "read", "faktura"),  # the same page with a logo, twice
    ("zen_of_python_corrupted.pdf", "read", "explicit"),  # a broken cross-reference table
    ("r4-aes-v2-no-key-length.pdf", "read", "encryption"),  # AES-128, opens without a password
    ("r6-empty-password.pdf", "read", "encryption"),  # AES-256, likewise
    ("r4-owner-password.pdf", "read", "encryption"),  # an owner password only
    ("issue5202.pdf", "read", "𩸽"),  # Japanese, no spaces
    ("issue13316_reduced.pdf", "read", "通"),  # Chinese
    ("strict-format.docx", "read", "test"),  # ISO Strict Open XML
    ("utf8-bom.docx", "read", "mark"),  # its XML starts with a byte order mark
    ("documentProtection_readonly_no_password.docx", "read", "readonly"),  # read-only, not encrypted
    ("EmptyDocumentWithHeaderFooter.docx", "read", "blabla"),  # text in the header and footer only
    ("r4-aes-user-password.pdf", "refused", PASSWORD),
    ("aes-256-r6.pdf", "refused", PASSWORD),
    ("bug53475-password-is-pass.docx", "refused", WORD_PASSWORD),
    ("protected_agile.docx", "refused", WORD_PASSWORD),
    ("poppler-395-0-fuzzed.pdf", "refused", NO_PAGE),  # a filter name pypdf no longer accepts
    ("operator-in-TJ-array.pdf", "refused", NO_PAGE),
    ("bomb_giant.pdf", "refused", NO_PAGE),  # a JBIG2 image pypdf has no decoder for
    ("issue15590.pdf", "refused", CUT_SHORT),
    ("REDHAT-1531897-0.pdf", "refused", BROKEN_CONTENTS),
    ("issue6069.pdf", "refused", r"is a damaged PDF and cannot be read\.$"),
    ("imagemagick-lzw.pdf", "refused", SCAN),
    ("imagemagick-CCITTFaxDecode.pdf", "refused", SCAN),
    ("pdf-with-jbig2.pdf", "refused", SCAN),
    ("Type3WordSpacing.pdf", "refused", SYMBOLS),
    ("empty.pdf", "refused", BLANK),
    ("ExternalEntityInText.docx", "refused", DAMAGED_DOCX),  # an undefined XML entity
    ("truncated62886.docx", "refused", DAMAGED_DOCX),
    ("clusterfuzz-testcase-minimized-POIXWPFFuzzer-5166796835258368.docx", "refused", DAMAGED_DOCX),
    ("empty.docx", "refused", r"empty\.docx: no text found\.$"),
    ("52117.docx", "refused", OLDER_WORD),  # 52117.doc, added under a .docx name
]
STORED_AS = {"52117.docx": "52117.doc"}


def count_rows(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def check_outcome(engine, name: str, data: bytes, outcome: str, expected: str) -> None:
    """Add the file to a new chat: read, and found by the word; or refused for the reason, with nothing kept."""
    chat = store.create_chat(engine)
    if outcome == "read":
        documents.add_file(engine, chat.id, name, data, LIMIT)
        assert [passage.name for passage in retrieval.find_passages(engine, chat.id, expected)][:1] == [name]
        return
    with pytest.raises(DocumentError, match=expected) as refused:
        documents.add_file(engine, chat.id, name, data, LIMIT)
    assert str(refused.value).startswith(name)
    assert count_rows(engine, "document") == count_rows(engine, "chunk") == 0


@pytest.mark.parametrize(("name", "data", "outcome", "expected"), MADE, ids=[row[0] for row in MADE])
def test_each_odd_file_is_read_and_found_or_refused_for_its_reason(engine, name, data, outcome, expected):
    check_outcome(engine, name, data, outcome, expected)


if CORPUS:  # opt-in: without the folder this test is not collected at all, so CI, where a skip fails, never skips it

    @pytest.mark.parametrize(("name", "outcome", "expected"), REAL_WORLD, ids=[row[0] for row in REAL_WORLD])
    def test_each_real_world_file_is_read_and_found_or_refused_for_its_reason(engine, name, outcome, expected):
        data = (CORPUS / STORED_AS.get(name, name)).read_bytes()
        check_outcome(engine, name, data, outcome, expected)


def test_a_file_that_takes_too_long_is_refused_and_its_reader_stopped(engine):
    chat = store.create_chat(engine)
    slow = make_pdf([f"Page {number} of a long report" for number in range(300)])
    with pytest.raises(DocumentError, match=r"^long\.pdf took longer than 0\.001 seconds to read, so it was left"):
        documents.add_file(engine, chat.id, "long.pdf", slow, LIMIT, seconds=0.001)
    assert multiprocessing.active_children() == []
    assert count_rows(engine, "document") == 0
    assert documents.add_file(engine, chat.id, "long.pdf", slow, LIMIT).document.pages == 300
