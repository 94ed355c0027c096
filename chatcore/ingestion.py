"""Reading uploaded documents: PDF per page, DOCX and Markdown per section, plain text; bad files refused clearly.

Every failure of a parser on a user's file becomes a DocumentError naming the file and the reason in words:
password protected, damaged, no text (scanned images, or empty), not that kind of file, too large, too slow.
`read_document` reads a file in a worker process, within a time budget, so that a slow file neither blocks the
app nor runs on without end.
"""

import io
import logging
import multiprocessing
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

import docx2txt
from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, DeprecationError, LimitReachedError, PyPdfError

from chatcore.config import DEFAULT_READ_SECONDS
from chatcore.encodings import MismarkedTextError, decode_marked
from chatcore.markdown_sections import split_markdown
from chatcore.words import clean_text, has_words

KINDS = ("pdf", "docx", "txt", "md")
PDF_HEADER_WINDOW = 1024  # readers accept a PDF whose header comes after some junk, within its first kilobyte
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word 97-2003 files, and Word files encrypted with a password
OLE_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")
STRICT_NAMESPACE = b"http://purl.oclc.org/ooxml/wordprocessingml/main"
TRANSITIONAL_NAMESPACE = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX_TEXT_PARTS = re.compile(r"word/(document|header\d*|footer\d*)\.xml")
UNPACKED_PER_PACKED = 100  # a Word file unpacking to more than this many times its size is a zip bomb
MAX_CONTROL_SHARE = 0.1  # text has almost none; bytes that are not text, read as Latin-1, about a quarter
# A file's text is one string, searched by regexes that are each one character class or start with a literal:
# Python's regex engine finds those quickest (a class of characters or an alternation costs it more at every one).
# Unicode's control characters (Cc, a set fixed for good) that are not whitespace.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
ODD_SPACE = re.compile(r"[^\S \n]")  # whitespace within a line but a plain space
SPACE_RUNS = re.compile(r"  +")
BLANK_LINE_RUNS = re.compile(r"\n\n\n+")
HEADING_CHARS = 80
# What pypdf raises on a damaged file: its own errors (two of which are not PyPdfErrors), and Python's.
PDF_ERRORS = (PyPdfError, DependencyError, DeprecationError, ValueError, KeyError, TypeError, AttributeError,
              IndexError, ZeroDivisionError, OSError)  # fmt: skip


class DocumentError(ValueError):
    """A file that cannot be read as a document, with what is wrong in words."""


@dataclass(frozen=True)
class Section:
    """A page of a PDF, or a section of another document, with its normalised text."""

    number: int
    text: str


@dataclass(frozen=True)
class Extracted:
    """A document's text by section, how many pages or sections it has, and a note about how it was read."""

    kind: str
    sections: tuple[Section, ...]
    pages: int
    note: str = ""


def document_kind(name: str) -> str:
    """The kind of a file by its name's extension; unknown kinds are refused."""
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind not in KINDS:
        raise DocumentError(f"{name}: only PDF, DOCX, TXT and Markdown files can be added.")
    return kind


def check_size(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse an empty file, or one over the size limit."""
    if not data:
        raise DocumentError(f"{name} is empty.")
    if len(data) > max_bytes:
        size, limit = len(data) / 2**20, max_bytes / 2**20
        raise DocumentError(f"{name} is {size:.1f} MB; files of at most {limit:.0f} MB can be added.")


def extract_document(name: str, data: bytes, max_bytes: int) -> Extracted:
    """A file's text by section, read here; DocumentError says why a file cannot be used."""
    kind = document_kind(name)
    check_size(name, data, max_bytes)
    try:
        extracted = EXTRACTORS[kind](name, data)
    except (MemoryError, LimitReachedError) as error:
        raise DocumentError(f"{name} holds more than chatcore can unpack: split it into smaller files.") from error
    except RecursionError as error:
        raise DocumentError(f"{name} is damaged: its parts refer to each other without end.") from error
    if not any(has_words(section.text) for section in extracted.sections):
        raise DocumentError(f"{name}: no text found.")
    return extracted


def read_document(name: str, data: bytes, max_bytes: int, seconds: float = DEFAULT_READ_SECONDS) -> Extracted:
    """`extract_document` in a worker process, given at most `seconds`; a file that takes longer is refused."""
    document_kind(name)
    check_size(name, data, max_bytes)
    receiver, sender = WORKERS.Pipe(duplex=False)
    worker = WORKERS.Process(target=extract_for, args=(sender, name, data, max_bytes), daemon=True)
    worker.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise DocumentError(
                f"{name} took longer than {seconds:g} seconds to read, so it was left out. "
                "If it is very large, split it into smaller files; if it is a complex PDF, print it to a new PDF."
            )
        outcome = receiver.recv()
    except EOFError as error:  # the worker died: out of memory, or a crash in a parser's native code
        raise DocumentError(f"{name} could not be read: reading it stopped the reader. It may be damaged.") from error
    finally:
        worker.kill()
        worker.join()
        receiver.close()
    if isinstance(outcome, DocumentError):
        raise outcome
    return outcome


def extract_for(sender, name: str, data: bytes, max_bytes: int) -> None:
    """In a worker process: send back what `extract_document` gives, or its DocumentError."""
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # what it logs about damaged files is for developers
    try:
        outcome: Extracted | DocumentError = extract_document(name, data, max_bytes)
    except DocumentError as error:
        outcome = error
    except Exception:  # a parser's unforeseen failure on a user's file is a refusal too, never a traceback
        outcome = DocumentError(f"{name} is damaged or in a form chatcore cannot read.")
    sender.send(outcome)
    sender.close()


def normalise_whitespace(text: str) -> str:
    """Text with runs of spaces as one space, at most one blank line in a row, no space around lines."""
    spaced = SPACE_RUNS.sub(" ", ODD_SPACE.sub(" ", text.replace("\r\n", "\n")))
    lines = spaced.replace(" \n", "\n").replace("\n ", "\n")
    return BLANK_LINE_RUNS.sub("\n\n", lines).strip()


def extract_pdf(name: str, data: bytes) -> Extracted:
    """A PDF's text, page by page; empty pages are skipped but keep their numbers."""
    headed = b"%PDF" in data[:PDF_HEADER_WINDOW]
    try:
        reader = PdfReader(io.BytesIO(data))
        open_pdf(name, reader)
        pages = list(reader.pages)
    except DocumentError:
        raise
    except PDF_ERRORS as error:
        if not headed:
            raise DocumentError(f"{name} is not a PDF file, whatever its name says.") from error
        raise DocumentError(f"{name} is a damaged PDF and cannot be read{damage(error)}.") from error
    texts, unread = read_pages(pages)
    if not any(has_words(text) for text in texts):
        if unread:
            raise DocumentError(f"{name} is a damaged PDF and cannot be read: no page of it could be read.")
        raise DocumentError(no_text_message(name, pages, texts))
    if is_labelled_scan(pages, texts):
        raise DocumentError(no_text_message(name, pages, texts))
    sections = tuple(Section(number, text) for number, text in enumerate(texts, start=1) if text)
    return Extracted("pdf", sections, len(texts), unread_note(name, unread))


def open_pdf(name: str, reader: PdfReader) -> None:
    """Open an encrypted PDF with the empty password, as viewers do; one that needs a password is refused."""
    if not reader.is_encrypted:
        return
    try:
        opened = reader.decrypt("")
    except DependencyError as error:
        raise DocumentError(f"{name} is encrypted in a way chatcore cannot read: remove the encryption.") from error
    if opened == PasswordType.NOT_DECRYPTED:
        raise DocumentError(f"{name} is password protected: remove the password and add it again.")


def read_pages(pages: list[PageObject]) -> tuple[list[str], list[int]]:
    """Each page's text ("" for a page that cannot be read), and the numbers of the pages that could not be."""
    texts, unread = [], []
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(normalise_whitespace(clean_text(page.extract_text() or "")))
        except PDF_ERRORS:
            texts.append("")
            unread.append(number)
    return texts, unread


def damage(error: Exception) -> str:
    """What a parser's error tells a user about a damaged PDF, as a clause; "" when nothing useful."""
    message = str(error).lower()
    if "eof" in message or "startxref" in message or "truncat" in message:
        return ": it is cut short, perhaps by an unfinished download or copy"
    if "xref" in message or "trailer" in message:
        return ": its table of contents is broken"
    return ""


def unread_note(name: str, unread: list[int]) -> str:
    """A note naming the pages that could not be read, if any."""
    if not unread:
        return ""
    listed = ", ".join(map(str, unread[:10])) + (" and more" if len(unread) > 10 else "")
    return f"{name} is partly damaged: page{'s' if len(unread) > 1 else ''} {listed} could not be read."


def no_text_message(name: str, pages: list[PageObject], texts: list[str]) -> str:
    """Why a PDF has no text: its pages are images (a scan), symbols without words, or blank."""
    if any(has_images(page) for page in pages):
        return f"{name}: no text found, only images: OCR is not supported (is it a scan?)."
    if any(texts):
        return f"{name}: no text found: its pages hold symbols but no words."
    return f"{name}: no text found: its pages are blank."


def is_labelled_scan(pages: list[PageObject], texts: list[str]) -> bool:
    """Pages of images whose only text is one word repeated, a label (as ImageMagick writes): no text layer."""
    labels = {text for text in texts if text}
    repeated = len(labels) == 1 and sum(map(bool, texts)) > 1 and len(next(iter(labels)).split()) == 1
    return repeated and all(has_images(page) for page in pages)


def has_images(page: PageObject) -> bool:
    """Whether a page shows an image: an image object among its resources, or an inline image."""
    try:
        objects = page.get("/Resources", {}).get_object().get("/XObject", {}).get_object()
        if any(objects[key].get_object().get("/Subtype") == "/Image" for key in objects):
            return True
        return b"BI" in page.get_contents().get_data() if page.get_contents() else False
    except PDF_ERRORS:
        return False


def extract_docx(name: str, data: bytes) -> Extracted:
    """A Word document's text, cut into sections at its headings; Strict Open XML read as well."""
    if data.startswith(OLE_MAGIC):
        if OLE_ENCRYPTION_STREAM in data:
            raise DocumentError(f"{name} is password protected: remove the password in Word and add it again.")
        raise DocumentError(f"{name} is an older Word document (.doc): save it in Word as .docx and add that.")
    if not data.startswith(b"PK"):
        raise DocumentError(f"{name} is not a DOCX file, whatever its name says.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(entry.file_size for entry in archive.infolist()) > UNPACKED_PER_PACKED * len(data):
                raise DocumentError(f"{name} unpacks to far more than its size, and was not opened.")
            names = archive.namelist()
            if "word/document.xml" not in names:
                raise DocumentError(f"{name} is a zip file but not a Word document.")
            text = docx2txt.process(io.BytesIO(transitional(archive)))
    except DocumentError:
        raise
    except (zipfile.BadZipFile, ParseError, EOFError, OSError, KeyError, ValueError, NotImplementedError) as error:
        raise DocumentError(f"{name} is a damaged DOCX file and cannot be read.") from error
    extracted = sectioned("docx", clean_text(text), looks_like_heading)
    if not any(has_words(section.text) for section in extracted.sections):
        images = any(part.startswith("word/media/") for part in names)
        raise DocumentError(f"{name}: no text found" + (", only images: OCR is not supported." if images else "."))
    return extracted


def transitional(archive: zipfile.ZipFile) -> bytes:
    """The Word file again, its text parts in the Transitional namespace docx2txt reads (Strict names another)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as copy:
        for entry in archive.infolist():
            if DOCX_TEXT_PARTS.fullmatch(entry.filename):
                copy.writestr(entry.filename, archive.read(entry).replace(STRICT_NAMESPACE, TRANSITIONAL_NAMESPACE))
    return buffer.getvalue()


def extract_text(name: str, data: bytes) -> Extracted:
    """A plain-text file, as one section."""
    text, note = decode_text(name, data)
    return sectioned("txt", text, lambda _paragraph: False, note)


def extract_markdown(name: str, data: bytes) -> Extracted:
    """A Markdown file, cut into sections at its headings; a heading's marks in code are code."""
    text, note = decode_text(name, data)
    parts = filter(None, (normalise_whitespace(part) for part in split_markdown(text)))
    sections = tuple(Section(number, part) for number, part in enumerate(parts, start=1))
    return Extracted("md", sections, len(sections), note)


def decode_text(name: str, data: bytes) -> tuple[str, str]:
    """The text of a file: by its byte order mark (UTF-8, -16, -32), else UTF-8, Windows-1252 or Latin-1, noted."""
    try:
        marked = decode_marked(data)
    except MismarkedTextError as error:
        raise DocumentError(f"{name} is {error}: it is damaged.") from error
    if marked is not None:
        return checked_text(name, marked), ""
    if b"\x00" in data:
        raise DocumentError(f"{name} is not a text file, whatever its name says.")
    try:
        return checked_text(name, data.decode("utf-8")), ""
    except UnicodeDecodeError:
        pass
    try:
        return checked_text(name, data.decode("cp1252")), f"{name} is not UTF-8: it was read as Windows-1252."
    except UnicodeDecodeError:
        return checked_text(name, data.decode("latin-1")), f"{name} is not UTF-8: it was read as Latin-1."


def checked_text(name: str, text: str) -> str:
    """The text, unless control characters make up so much of it that it is not text at all."""
    controls = len(CONTROL_CHARS.findall(text))
    if controls > MAX_CONTROL_SHARE * len(text):
        raise DocumentError(f"{name} is not a text file, whatever its name says.")
    return clean_text(text)


def looks_like_heading(paragraph: str) -> bool:
    """A one-line paragraph, short and without closing punctuation: docx2txt keeps no styles to tell better."""
    short = "\n" not in paragraph and len(paragraph) <= HEADING_CHARS
    return short and not paragraph.endswith((".", ",", ";", ":", "!", "?"))


def sectioned(kind: str, text: str, is_heading: Callable[[str], bool], note: str = "") -> Extracted:
    """Text cut into sections, each starting at a heading paragraph."""
    groups: list[list[str]] = []
    for paragraph in filter(None, normalise_whitespace(text).split("\n\n")):
        if not groups or (is_heading(paragraph) and not is_heading(groups[-1][-1])):
            groups.append([])
        groups[-1].append(paragraph)
    sections = tuple(Section(number, "\n\n".join(group)) for number, group in enumerate(groups, start=1))
    return Extracted(kind, sections, len(sections), note)


EXTRACTORS: dict[str, Callable[[str, bytes], Extracted]] = {
    "pdf": extract_pdf,
    "docx": extract_docx,
    "txt": extract_text,
    "md": extract_markdown,
}
# A fresh worker per file, forked from this process: it starts at once with the parsers already imported. The
# child only parses and sends back its result, then exits without running any cleanup, so the app's connections
# and threads are left alone. (A forkserver would run the main module again in each worker on Python 3.11:
# Streamlit's command line, a second or more per file.)
WORKERS = multiprocessing.get_context("fork")
