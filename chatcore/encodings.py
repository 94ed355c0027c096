"""Encodings: text marked with a byte order mark, as editors save it (Windows Notepad: UTF-8, UTF-16)."""

import codecs

BYTE_ORDER_MARKS = (  # UTF-32's first, since UTF-32-LE's mark begins with UTF-16-LE's
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


class MismarkedTextError(ValueError):
    """Bytes marked as text of an encoding (its name, `label`) that are not."""

    def __init__(self, label: str):
        super().__init__(f"marked as {label} text but is not")
        self.label = label


def decode_marked(data: bytes) -> str | None:
    """The text of bytes that start with a byte order mark, without it; None if they start with none."""
    for mark, encoding, label in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise MismarkedTextError(label) from None
    return None
