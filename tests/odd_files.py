"""Odd documents made here, small, each with one oddity real-world files have: the table of tests/test_corpus.py."""

import codecs
import io
import re
import struct
import zipfile

from pypdf import PdfReader, PdfWriter

from tests.documents import make_pdf, page_text, pdf_file, stream

HELVETICA = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
TRANSITIONAL = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
PACKAGE_RELATIONSHIPS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SECTOR = 512
END_OF_CHAIN, FREE, FAT_SECTOR, NO_STREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def zipped(files: dict[str, str | bytes]) -> bytes:
    """A zip file holding these files, the same bytes in every run (test ids must match in each pytest-xdist worker)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def encrypted_pdf(text: str, user_password: str, algorithm: str = "RC4-128") -> bytes:
    """A one-page PDF encrypted by pypdf, with an owner password and the user password given ("" opens it freely)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([text]))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def unicode_pdf(pages: list[str]) -> bytes:
    """A PDF whose text is in a composite font, its glyphs mapped to Unicode by a ToUnicode map, as CJK PDFs do."""
    chars = sorted(set("".join(pages)))
    codes = {char: f"{number:04X}" for number, char in enumerate(chars, start=1)}
    contents = [f"BT /F1 12 Tf 40 750 Td <{''.join(codes[char] for char in text)}> Tj ET" for text in pages]
    pairs = [f"<{codes[char]}> <{char.encode('utf-16-be').hex().upper()}>\n" for char in chars]
    blocks = [pairs[start : start + 100] for start in range(0, len(pairs), 100)]  # at most 100 to a block
    mapping = "".join(f"{len(block)} beginbfchar\n{''.join(block)}endbfchar\n" for block in blocks)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Made-UCS def /CMapType 2 def\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        f"1 begincodespacerange <0000> <FFFF> endcodespacerange\n{mapping}"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    cid_font = (
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Made /CIDToGIDMap /Identity "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>"
    )
    first_extra = 4 + 2 * len(pages)
    font = (
        "<< /Type /Font /Subtype /Type0 /BaseFont /Made /Encoding /Identity-H "
        f"/DescendantFonts [{first_extra} 0 R] /ToUnicode {first_extra + 1} 0 R >>"
    )
    return pdf_file(contents, font, (cid_font, stream("", cmap)))


def headerless_pdf(pages: list[str]) -> bytes:
    """A PDF without its `%PDF` line, which readers accept."""
    return make_pdf(pages).removeprefix(b"%PDF-1.4\n")


def junk_before_header_pdf(pages: list[str]) -> bytes:
    """A PDF with some junk before its `%PDF` line, which readers accept within the first kilobyte."""
    return b"Some junk before the header\n\n" + make_pdf(pages)


def broken_xref_pdf(pages: list[str]) -> bytes:
    """A PDF whose cross-reference table points at the wrong places: pypdf finds its objects again."""
    return re.sub(rb"\d{10} 00000 n", b"0000000001 00000 n", make_pdf(pages))


def cut_short_pdf(pages: list[str]) -> bytes:
    """A PDF that lost its cross-reference table and the pointer to it, only its end marker left after its objects."""
    data = make_pdf(pages)
    return data[: data.index(b"xref")] + b"%%EOF\n"


def misdirected_xref_pdf(pages: list[str]) -> bytes:
    """A PDF whose pointer to its cross-reference table points at its catalog instead."""
    return re.sub(rb"startxref\n\d+", b"startxref\n9", make_pdf(pages))


def half_pdf(pages: list[str]) -> bytes:
    """The first half of a PDF, as an unfinished download leaves it: cut inside an object."""
    data = make_pdf(pages)
    return data[: len(data) // 2]


def filtered_pdf(filter_name: str, text: str) -> bytes:
    """A one-page PDF whose content is marked as encoded with the filter named, its data left plain."""
    return pdf_file([stream(f"/Filter {filter_name}", page_text(text))], HELVETICA)


def pdf_with_operator_in_text_array(text: str) -> bytes:
    """A PDF whose text-showing array holds an operator, which is not allowed there."""
    return pdf_file([f"BT /F1 10 Tf [({text}) 1 0 0 1 40 750 Tm ({text})] TJ ET"], HELVETICA)


def image_pdf(labels: list[str], filter_name: str = "/FlateDecode") -> bytes:
    """A PDF of pages that each show an image (encoded with the filter named), and the label given as text, if any."""
    draw = "q 612 0 0 792 0 0 cm /Im1 Do Q"
    contents = [f"{draw} {page_text(label)}" if label else draw for label in labels]
    image = stream(f"/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray "
                   f"/BitsPerComponent 8 /Filter {filter_name}", "x\x9cc\x00\x00\x00\x01\x00\x01")  # fmt: skip
    return pdf_file(contents, HELVETICA, (image,), f"/XObject << /Im1 {4 + 2 * len(labels)} 0 R >> ")


def word_xml(root: str, paragraphs: list[str], namespace: str = TRANSITIONAL, doctype: str = "") -> str:
    """A part of a Word file (`document` with a body, `hdr` or `ftr`) holding these paragraphs."""
    body = "".join(f"<w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p>" for paragraph in paragraphs)
    body = f"<w:body>{body}</w:body>" if root == "document" else body
    return f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<w:{root} xmlns:w="{namespace}">{body}</w:{root}>'


def make_docx(document: str | bytes, parts: dict[str, str] | None = None) -> bytes:
    """A Word file with this main document part, and the other parts given (by their names in the package)."""
    files = {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": PACKAGE_RELATIONSHIPS, "word/document.xml": document}
    return zipped(files | (parts or {}))


def docx_with_bad_central_directory(paragraphs: list[str]) -> bytes:
    """A Word file whose zip directory is damaged: its entries no longer start with their signature."""
    return make_docx(word_xml("document", paragraphs)).replace(b"PK\x01\x02", b"PK\x00\x00")


def ole_file(streams: list[str]) -> bytes:
    """A compound file (as Word 97-2003 writes, and Office writes encrypted files) holding these streams, empty.

    Version 3, 512-byte sectors: the header, one sector of the allocation table, one of the directory.
    """
    header = OLE_MAGIC + bytes(16) + struct.pack("<HHHHH6xIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, 0, 1, 1, 0, 4096,
                                                  END_OF_CHAIN, 0, END_OF_CHAIN, 0)  # fmt: skip
    header += struct.pack("<109I", 0, *[FREE] * 108)
    table = struct.pack(f"<{SECTOR // 4}I", FAT_SECTOR, END_OF_CHAIN, *[FREE] * (SECTOR // 4 - 2))
    entries = [directory_entry("Root Entry", 5, child=1 if streams else NO_STREAM)]
    for number, name in enumerate(streams, start=1):
        entries.append(directory_entry(name, 2, right=number + 1 if number < len(streams) else NO_STREAM))
    directory = b"".join(entries).ljust(SECTOR, b"\0")
    return header + table + directory


def directory_entry(name: str, kind: int, child: int = NO_STREAM, right: int = NO_STREAM) -> bytes:
    """A compound file's directory entry: the root (kind 5) or an empty stream (2), black, with its links."""
    encoded = name.encode("utf-16-le") + b"\0\0"
    return struct.pack("<64sHBBIII16sIQQIQ", encoded, len(encoded), kind, 1, NO_STREAM, right, child, bytes(16),
                       0, 0, 0, END_OF_CHAIN, 0)  # fmt: skip


def plain_docx(paragraphs: list[str]) -> bytes:
    """A Word file with these paragraphs."""
    return make_docx(word_xml("document", paragraphs))


def strict_docx(paragraphs: list[str]) -> bytes:
    """A Word file in ISO Strict Open XML, whose parts name the Strict namespace."""
    return make_docx(word_xml("document", paragraphs, STRICT))


def bom_docx(paragraphs: list[str]) -> bytes:
    """A Word file whose main part starts with a UTF-8 byte order mark."""
    return make_docx(codecs.BOM_UTF8 + word_xml("document", paragraphs).encode())


def read_only_docx(paragraphs: list[str]) -> bytes:
    """A Word file protected against editing, without a password: not encrypted."""
    settings = (
        f'<w:settings xmlns:w="{TRANSITIONAL}"><w:documentProtection w:edit="readOnly" w:enforcement="1"/></w:settings>'
    )
    return make_docx(word_xml("document", paragraphs), {"word/settings.xml": settings})


def header_footer_docx(header: str, footer: str) -> bytes:
    """A Word file whose body is empty, with text in its header and footer only."""
    parts = {"word/header1.xml": word_xml("hdr", [header]), "word/footer1.xml": word_xml("ftr", [footer])}
    return make_docx(word_xml("document", []), parts)


def undefined_entity_docx() -> bytes:
    """A Word file whose text refers to an external XML entity, which is not read (so undefined)."""
    doctype = '<!DOCTYPE document [<!ENTITY outside SYSTEM "outside.xml">]>'
    return make_docx(word_xml("document", ["&outside;"], doctype=doctype))
