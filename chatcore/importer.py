"""Imports of chatcore JSON exports: the whole file is validated, then written in one transaction.

A chat already here, or earlier in the same file, is recognised by its uid (older files have none:
then by when it began and its first messages), never added twice. When the file has messages the
copy here lacks, only those are added; when the copy here has gone on since, or the two differ
since the export, the chat is left as it is, and the report says why.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from chatcore.archive import ChatRecord, MessageRecord, parse_archive
from chatcore.models import Chat, Message, ReplySource

MAX_LISTED_TITLES = 10

MessageKey = tuple[str, str, datetime]  # who said it, what, and when: a message in any database


@dataclass
class ImportReport:
    """What an import did: the chats it added, those it added messages to, and those it left as they were."""

    imported: list[str] = field(default_factory=list)
    extended: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    added_messages: int = 0

    def summary(self) -> str:
        """The outcome in a sentence or a few, naming the chats."""
        summary = describe_chats("Imported", self.imported)
        if self.extended:
            added = f"Added {self.added_messages} message{'' if self.added_messages == 1 else 's'} to"
            summary += " " + describe_chats(added, self.extended)
        if self.skipped:
            summary += " " + describe_chats("Skipped", self.skipped, " already here")
        if self.diverged:
            note = " changed both here and in the file since the export (left as they are here)"
            summary += " " + describe_chats("Skipped", self.diverged, note)
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
    """Add the chats and messages of an export file not already here; on any problem in the file, add nothing."""
    chats = parse_archive(data).chats
    report = ImportReport()
    with Session(engine) as session:
        for record in chats:
            if (stored := find_same_chat(session, record)) is None:
                add_chat(session, record)
                report.imported.append(record.title)
            else:
                extend_chat(session, stored, record, report)
        session.commit()
    return report


def message_key(message: Message | MessageRecord) -> MessageKey:
    """What recognises a message in any database."""
    return message.role, message.content, message.created_at


def stored_messages(session: Session, chat_id: int) -> list[Message]:
    """A chat's messages, oldest first."""
    return list(session.exec(select(Message).where(Message.chat_id == chat_id).order_by(Message.id)))


def find_same_chat(session: Session, record: ChatRecord) -> tuple[Chat, list[Message]] | None:
    """The stored chat this record is a copy of, with its messages; None when it is new here.

    Chats added earlier in this import are found too (the session writes them before it queries).
    """
    if record.uid is not None:
        chat = session.exec(select(Chat).where(Chat.uid == record.uid)).first()
        return None if chat is None else (chat, stored_messages(session, chat.id))
    keys = [message_key(message) for message in record.messages]
    for chat in session.exec(select(Chat).where(Chat.created_at == record.created_at).order_by(Chat.id)).all():
        messages = stored_messages(session, chat.id)
        shared = min(len(keys), len(messages))
        if [message_key(message) for message in messages[:shared]] == keys[:shared]:
            return chat, messages
    return None


def extend_chat(session: Session, stored: tuple[Chat, list[Message]], record: ChatRecord, report: ImportReport) -> None:
    """Add the messages the stored chat lacks, if it is the file's chat cut short; else leave it, saying why."""
    chat, messages = stored
    here = [message_key(message) for message in messages]
    there = [message_key(message) for message in record.messages]
    if there[: len(here)] != here:
        (report.skipped if here[: len(there)] == there else report.diverged).append(chat.title)
        return
    missing = record.messages[len(here) :]
    if not missing:
        report.skipped.append(chat.title)
        return
    add_messages(session, chat.id, missing)
    chat.updated_at = max(chat.updated_at, record.updated_at)
    session.add(chat)
    report.extended.append(chat.title)
    report.added_messages += len(missing)


def add_chat(session: Session, record: ChatRecord) -> None:
    """Stage a chat and its messages under new ids, every other field as exported."""
    fields = record.model_dump(exclude={"id", "uid", "messages", "memory_until", "documents"})
    chat = Chat(**fields, **({"uid": record.uid} if record.uid else {}))
    session.add(chat)
    session.flush()  # assigns the chat's id, which its messages refer to
    added = add_messages(session, chat.id, record.messages)
    if record.memory_until is not None:
        chat.memory_until = added[record.memory_until].id


def add_messages(session: Session, chat_id: int, records: list[MessageRecord]) -> dict[int, Message]:
    """Stage messages at the end of a chat, with the passages each was given; by their ids in the file."""
    added = {record.id: Message(chat_id=chat_id, **record.model_dump(exclude={"id", "sources"})) for record in records}
    session.add_all(added.values())
    session.flush()  # assigns the messages' ids, which their sources and a chat's memory refer to
    session.add_all(
        ReplySource(message_id=added[record.id].id, **source.model_dump())
        for record in records
        for source in record.sources
    )
    return added
