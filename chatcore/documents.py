"""Adding a file to a chat or the library: read it, chunk it, and store it once, whatever its name."""

import hashlib
from dataclasses import dataclass, replace

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from chatcore import generation, store
from chatcore.captions import document_caption
from chatcore.chunking import chunk_sections
from chatcore.config import DEFAULT_READ_SECONDS
from chatcore.ingestion import DocumentError, read_document
from chatcore.models import Chunk, Document


@dataclass(frozen=True)
class Added:
    """What adding a file did: the stored document, whether it was new, and a note about how it was read."""

    document: Document
    new: bool
    note: str = ""
    named: bool = False  # whether it named the chat it was added to

    def summary(self) -> str:
        """What happened, in a sentence or two."""
        if not self.new:
            return f"{self.document.name} was already added: it is stored once, and used here too."
        return " ".join(filter(None, [f"Added {self.document.name}: {document_caption(self.document)}.", self.note]))


def add_file(
    engine: Engine,
    chat_id: int | None,
    name: str,
    data: bytes,
    max_bytes: int,
    seconds: float = DEFAULT_READ_SECONDS,
    name_chat: bool = True,
) -> Added:
    """Read a file (within `seconds`) and store it for a chat (None: the library); DocumentError if it cannot be used.

    With `name_chat` (not when a message comes with the file: its words name the chat), a chat without messages or a
    name is named after the file, as a first message would name it.
    """
    added = store_file(engine, chat_id, name, data, max_bytes, seconds)
    if name_chat and chat_id is not None and generation.title_after_document(engine, chat_id, name):
        return replace(added, named=True)
    return added


def store_file(engine: Engine, chat_id: int | None, name: str, data: bytes, max_bytes: int, seconds: float) -> Added:
    """Read and store a file for a chat or the library.

    A file already stored (the same bytes) is not stored again: added to another chat or to the
    library, it moves to the library, attached to the chats it was added to.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    if (existing := store.find_document(engine, sha256)) is None:
        extracted = read_document(name, data, max_bytes, seconds)
        pieces = chunk_sections(extracted.sections)
        document = Document(chat_id=chat_id, name=name, kind=extracted.kind, sha256=sha256, size=len(data),
                            pages=extracted.pages, chunk_count=len(pieces))  # fmt: skip
        chunks = [Chunk(ordinal=p.ordinal, page=p.page, start=p.start, end=p.end, text=p.text) for p in pieces]
        try:
            return Added(store.save_document(engine, document, chunks), new=True, note=extracted.note)
        except IntegrityError:
            existing = store.find_document(engine, sha256)  # the same file, added at the same moment elsewhere
            if existing is None:
                raise
    if existing.chat_id != chat_id:
        store.share_document(engine, existing.id, chat_id)
    return Added(existing, new=False)


def add_file_and_say(
    engine: Engine,
    chat_id: int | None,
    name: str,
    data: bytes,
    max_bytes: int,
    seconds: float = DEFAULT_READ_SECONDS,
    name_chat: bool = True,
) -> tuple[Added | None, str]:
    """Add a file as `add_file` does; what it did (None if it failed), and what happened, in words for the user."""
    try:
        added = add_file(engine, chat_id, name, data, max_bytes, seconds, name_chat)
    except (DocumentError, store.StorageError) as error:
        return None, str(error)
    return added, added.summary()
