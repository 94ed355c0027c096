"""Reading uploaded documents: PDF per page, DOCX and Markdown per section, plain text; bad files refused clearly."""

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import docx2txt
from pypdf import PdfReader
from pypdf.errors import DependencyError, PdfReadError, PdfStreamError

KINDS = ("pdf", "docx", "txt", "md")
MAGIC = {"pdf": b"%PDF", "docx": b"PK"}
# Scanned PDFs often carry a stray word per page (an image's name, "Background"): that is no text layer.
MIN_PAGE_CHARS = 15
HEADING_CHARS = 80


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


def extract_document(name: str, data: bytes, max_bytes: int) -> Extracted:
    """A file's text by section; DocumentError says why a file cannot be used."""
    kind = document_kind(name)
    if not data:
        raise DocumentError(f"{name} is empty.")
    if len(data) > max_bytes:
        size, limit = len(data) / 2**20, max_bytes / 2**20
        raise DocumentError(f"{name} is {size:.1f} MB; files of at most {limit:.0f} MB can be added.")
    if kind in MAGIC and not data.startswith(MAGIC[kind]):
        raise DocumentError(f"{name} is not a {kind.upper()} file, whatever its name says.")
    extracted = EXTRACTORS[kind](name, data)
    if not extracted.sections:
        raise DocumentError(f"{name}: no text found.")
    return extracted


def normalise_whitespace(text: str) -> str:
    """Text with runs of spaces as one space, at most one blank line in a row, no space around lines."""
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def extract_pdf(name: str, data: bytes) -> Extracted:
    """A PDF's text, page by page; empty pages are skipped but keep their numbers."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{name} is password protected: remove the password and add it again.")
        texts = [normalise_whitespace(page.extract_text() or "") for page in reader.pages]
    except DocumentError:
        raise
    except DependencyError as error:
        raise DocumentError(f"{name} is encrypted in a way chatcore cannot read: {error}") from error
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError) as error:
        raise DocumentError(f"{name} is a damaged PDF and cannot be read ({error}).") from error
    if all(len(re.sub(r"\s", "", text)) < MIN_PAGE_CHARS for text in texts):
        raise DocumentError(f"{name}: no text found: OCR is not supported (is it a scan?).")
    sections = tuple(Section(number, text) for number, text in enumerate(texts, start=1) if text)
    return Extracted("pdf", sections, len(texts))


def extract_docx(name: str, data: bytes) -> Extracted:
    """A Word document's text, cut into sections at its headings."""
    try:
        text = docx2txt.process(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise DocumentError(f"{name} is a damaged DOCX file and cannot be read.") from error
    except KeyError as error:
        raise DocumentError(f"{name} is a zip file but not a Word document.") from error
    return sectioned("docx", text, looks_like_heading)


def extract_text(name: str, data: bytes) -> Extracted:
    """A plain-text file, as one section."""
    text, note = decode_text(name, data)
    return sectioned("txt", text, lambda _paragraph: False, note)


def extract_markdown(name: str, data: bytes) -> Extracted:
    """A Markdown file, cut into sections at its `#` headings."""
    text, note = decode_text(name, data)
    return sectioned("md", text, lambda paragraph: paragraph.startswith("#"), note)


def decode_text(name: str, data: bytes) -> tuple[str, str]:
    """The text of a file in UTF-8 (with or without BOM), else Windows-1252 or Latin-1, with a note saying so."""
    if b"\x00" in data:
        raise DocumentError(f"{name} is not a text file, whatever its name says.")
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), f"{name} is not UTF-8: it was read as Windows-1252."
    except UnicodeDecodeError:
        return data.decode("latin-1"), f"{name} is not UTF-8: it was read as Latin-1."


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
