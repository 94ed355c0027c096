"""The sample documents and the corpus of odd ones in the shared folder beside the repository, and generated PDFs."""

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "docs"
CORPUS = Path(os.environ.get("CHATCORE_TEST_CORPUS") or SHARED / "corpus")  # the variable: to try another folder


def sample(name: str) -> bytes:
    """The bytes of a shared sample document; without the shared folder the test is skipped (failed in CI)."""
    return shared_file(SAMPLES, name)


def corpus_file(name: str) -> bytes:
    """The bytes of a document of the shared corpus of odd real-world files; skipped without it (failed in CI)."""
    return shared_file(CORPUS, name)


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
    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(len(pages)))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        content = f"BT /F1 10 Tf 40 750 Td ({escaped}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * index} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")  # fmt: skip
        objects.append(f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream")
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
