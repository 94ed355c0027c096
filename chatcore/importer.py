"""Imports of chatcore JSON exports: the whole file is validated, then written in one transaction.

A chat already present, here or earlier in the same file, is skipped: chats are recognised by
their fingerprint, a hash of when they began and what was said, so ids need not match.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from chatcore import store
from chatcore.archive import ChatRecord, parse_archive
from chatcore.export import load_chats
from chatcore.models import Chat, Message

MAX_LISTED_TITLES = 10


@dataclass
class ImportReport:
    """What an import did: the titles of the chats it added and of those already present."""

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The outcome in a sentence or two, naming the chats."""
        summary = describe_chats("Imported", self.imported)
        if self.skipped:
            summary += " " + describe_chats("Skipped", self.skipped, " already here")
        return summary


def describe_chats(verb: str, titles: list[str], note: str = "") -> str:
    """A sentence counting chats and naming the first few, e.g. Imported 2 chats: “Plans”, “Recipes”."""
    sentence = f"{verb} {len(titles)} chat{'' if len(titles) == 1 else 's'}{note}"
    if not titles:
        return sentence + "."
    listed = ", ".join(f"“{title}”" for title in titles[:MAX_LISTED_TITLES])
    more = f" and {len(titles) - MAX_LISTED_TITLES} more" if len(titles) > MAX_LISTED_TITLES else ""
    return f"{sentence}: {listed}{more}."


def import_archive(engine: Engine, data: bytes) -> ImportReport:
    """Add the chats of an export file not already present; on any problem in the file, add nothing."""
    chats = parse_archive(data).chats
    known = present_fingerprints(engine, chats)
    report = ImportReport()
    with Session(engine) as session:
        for chat in chats:
            fingerprint = chat.fingerprint()
            if fingerprint in known:
                report.skipped.append(chat.title)
                continue
            known.add(fingerprint)
            add_chat(session, chat)
            report.imported.append(chat.title)
        session.commit()
    return report


def present_fingerprints(engine: Engine, chats: Iterable[ChatRecord]) -> set[str]:
    """The fingerprints of stored chats that could match these: those begun at the same moments."""
    candidates = store.find_chats_created_at(engine, {chat.created_at for chat in chats})
    return {record.fingerprint() for record in load_chats(engine, candidates)}


def add_chat(session: Session, record: ChatRecord) -> None:
    """Stage a chat and its messages under new ids, every other field as exported."""
    chat = Chat(**record.model_dump(exclude={"id", "messages", "memory_until", "documents"}))
    session.add(chat)
    session.flush()  # assigns the chat's id, which its messages refer to
    messages = {
        message.id: Message(chat_id=chat.id, **message.model_dump(exclude={"id"})) for message in record.messages
    }
    session.add_all(messages.values())
    if record.memory_until is not None:
        session.flush()  # assigns the messages' ids, one of which the memory covers up to
        chat.memory_until = messages[record.memory_until].id
