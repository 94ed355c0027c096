"""The sample documents in the shared folder beside the repository, the opt-in real-world corpus, and made PDFs."""

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "docs"
# The real-world corpus of odd files (bench/corpus-sources.md lists them), used only where this names its folder
CORPUS = Path(os.environ["CHATCORE_TEST_CORPUS"]) if os.environ.get("CHATCORE_TEST_CORPUS") else None


def sample(name: str) -> bytes:
    """The bytes of a shared sample document; without the shared folder the test is skipped (failed in CI)."""
    return shared_file(SAMPLES, name)


def shared_file(folder: Path, name: str) -> bytes:
    """The bytes of a file in a shared folder; without the folder the test is skipped (failed in CI)."""
    if not folder.is_dir():
        reason = f"the shared documents are missing: expected them in {folder}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return (folder / name).read_bytes()


def make_pdf(pages: list[str]) -> bytes:
    """A minimal PDF, written by hand, with one line of Helvetica text per page."""
    return pdf_file([page_text(text) for text in pages], "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")


def page_text(text: str) -> str:
    """A page's content: one line of text in the font F1, its characters escaped as a PDF string needs."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 10 Tf 40 750 Td ({escaped}) Tj ET"


def pdf_file(contents: list[str], font: str, extra: tuple[str, ...] = (), resources: str = "") -> bytes:
    """A PDF, written by hand: a page per content, each with the font F1 (object 3) and the other resources given,
    then the extra objects (numbered from 4 + twice the pages). A content that is a stream object is kept as it is."""
    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(len(contents)))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(contents)} >>",
        font,
    ]
    for index, content in enumerate(contents):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * index} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> {resources}>> >>")  # fmt: skip
        objects.append(content if content.startswith("<<") else stream("", content))
    return assemble_pdf([*objects, *extra])


def stream(entries: str, data: str) -> str:
    """A stream object: its dictionary's entries besides the length, and its data (Latin-1)."""
    dictionary = " ".join(filter(None, ["<<", entries, f"/Length {len(data.encode('latin-1'))}", ">>"]))
    return f"{dictionary}\nstream\n{data}\nendstream"


def assemble_pdf(objects: list[str]) -> bytes:
    """The objects numbered from 1 (the first the catalog), with a cross-reference table and a trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
