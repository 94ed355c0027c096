"""The chat page: history, what the model is sent, input, and the reply being written, followed live."""

from collections.abc import Iterator

import streamlit as st

import resources
import sidebar
from chatcore import documents, memory, store
from chatcore.captions import context_caption, outside_note, reply_caption
from chatcore.ingestion import KINDS
from chatcore.models import Message, Status
from chatcore.prompt import ContextOverflowError, Prompt, build_prompt
from chatcore.retrieval import source_label
from chatcore.workers import ChatBusyError, Job

HISTORY_STEP = 50


def render_message(message: Message, sources: list) -> None:
    """One stored message, with its caption or error, and the passages it was given."""
    with st.chat_message(message.role):
        if message.content:
            st.markdown(message.content)
        if message.status == Status.ERROR:
            st.error(message.error, icon=":material/error:")
        if message.role == "assistant" and (caption := reply_caption(message)):
            st.caption(caption)
        if sources:
            render_sources(sources)


def render_sources(sources: list) -> None:
    """The document passages a reply was given, under the numbers it cites."""
    with st.expander("Sources"):
        for number, document, chunk in sources:
            st.caption(source_label(number, document.name, document.kind, chunk.page))
            st.text(chunk.text)


def render_history(engine, chat_id: int, until: int | None, context: Prompt | None) -> list[Message]:
    """The latest messages up to `until` (the rest is being written), with a control to show earlier ones.

    A divider marks where the messages the model is sent begin.
    """
    limit = max(HISTORY_STEP, st.session_state.get("history_limit") or 0)
    earlier = store.count_messages(engine, chat_id) - limit
    if earlier > 0 and st.button(f"Show earlier messages ({earlier} more)", key="show-earlier"):
        st.session_state.history_limit = limit + HISTORY_STEP
        st.rerun()
    messages = [m for m in store.recent_messages(engine, chat_id, limit) if until is None or m.id <= until]
    boundary = None if context is None or context.window.complete else context.window.oldest_id
    sources = store.reply_sources(engine, [message.id for message in messages if message.role == "assistant"])
    for message in messages:
        if message.id == boundary:
            render_divider(engine, context)
        render_message(message, sources.get(message.id, []))
    return messages


def render_divider(engine, context: Prompt) -> None:
    """The faint line above the oldest message the model is sent; the memory, if it covers what is above."""
    chat = context.chat
    summarised = chat.memory_enabled and memory.is_up_to_date(engine, chat, context.window)
    st.caption(f"⋯ {outside_note(summarised)} ⋯", help=chat.memory if summarised else None)


def chat_context(engine, chat_id: int, model: str | None) -> Prompt | None:
    """The request the chat would send next (without a model, none)."""
    if not model:
        return None
    backend = resources.backend_choice().backend
    return build_prompt(engine, backend, store.get_chat(engine, chat_id), model, resources.settings().reply_reserve)


def render_context_caption(engine, context: Prompt) -> None:
    """How much of the chat the next request carries, just above the input."""
    window, chat = context.window, context.chat
    explained = (
        f"{context.model} is sent the system prompt and memory, then the newest whole turns that fit in "
        f"{window.budget:,} tokens: the context length {context.options['num_ctx']:,} less "
        f"{context.reply_reserve:.0%} kept for the reply. Token counts are as the model measured them, "
        "estimated for text it has not seen yet."
    )
    st.caption(context_caption(window, store.count_messages(engine, chat.id), chat.memory_enabled), help=explained)


def follow_reply(job: Job) -> None:
    """Show the reply being written as it streams; redraw from the database when it ends."""
    with st.chat_message("assistant"):
        if job.stop.is_set():
            st.caption("Stopping…")
        else:
            st.button(
                "Stop",
                key="stop",
                icon=":material/stop_circle:",
                on_click=resources.registry().stop,
                args=(job.chat_id,),
            )
        waiting = st.empty()
        if not job.pieces:
            waiting.caption("Waiting for the model's first words (it may be loading)…")
        st.write_stream(clear_when_text_arrives(job.follow(), waiting))
    st.rerun()


def clear_when_text_arrives(pieces: Iterator[str], notice) -> Iterator[str]:
    """Pass the pieces on, removing the waiting notice at the first one."""
    for piece in pieces:
        notice.empty()
        yield piece


def render_last_turn_actions(chat_id: int, messages: list[Message], model: str | None) -> None:
    """Regenerate the last reply, or edit and resend the last message."""
    if not model or not messages or messages[-1].role != "assistant":
        return
    last_question = next((m.content for m in reversed(messages) if m.role == "user"), None)
    if last_question is None:
        return
    if st.session_state.get("editing") == chat_id:
        edit_last_question(chat_id, last_question, model)
        return
    actions = st.container(horizontal=True)
    if actions.button("Regenerate", key="regenerate", icon=":material/refresh:", type="tertiary"):
        launch(resources.registry().regenerate, chat_id, model)
    start_editing = {"editing": chat_id}
    actions.button(
        "Edit last message",
        key="edit",
        icon=":material/edit:",
        type="tertiary",
        on_click=st.session_state.update,
        kwargs=start_editing,
    )


def edit_last_question(chat_id: int, question: str, model: str) -> None:
    """A form to change the last message and send it again."""
    with st.form("edit-form"):
        text = st.text_area("Edit your last message", value=question)
        send, cancel = st.columns([1, 5])
        resend = send.form_submit_button("Send", type="primary")
        cancelled = cancel.form_submit_button("Cancel")
    if cancelled or (resend and text.strip()):
        st.session_state.pop("editing", None)
    if resend and text.strip():
        launch(resources.registry().resend_edited, chat_id, model, text)
    elif cancelled:
        st.rerun()


def launch(start, chat_id: int, model: str, *text: str) -> None:
    """Start a reply in the background with the current backend, then follow it."""
    try:
        start(resources.backend_choice().backend, chat_id, model, *text)
    except ChatBusyError as busy:
        refuse(st.warning, busy, *text)
        return
    except store.StorageError as failure:
        refuse(st.error, failure, *text)
        return
    except ContextOverflowError as error:
        st.error(str(error), icon=":material/error:")
        return
    st.rerun()


def refuse(show, reason: Exception, text: str = "") -> None:
    """Say why nothing was sent, and give the user's text back so it is not lost."""
    show(f"{reason} Your message was not sent." if text else str(reason))
    if text:
        st.code(text, language=None, wrap_lines=True)


def send(engine, chat_id: int | None, submitted, model: str) -> None:
    """Add the files sent (creating the chat if needed), then save the message and start its reply."""
    if chat_id is None:
        defaults = {"num_ctx": resources.settings().num_ctx}
        try:
            chat_id = store.create_chat_like_latest(engine, model, defaults).id
        except store.StorageError as failure:
            refuse(st.error, failure, submitted.text)
            return
        st.session_state.chat_id = chat_id
    add_files(engine, chat_id, submitted.files)
    if submitted.text.strip():
        launch(resources.registry().send, chat_id, model, submitted.text)
    else:
        st.rerun()


def add_files(engine, chat_id: int, files) -> None:
    """Add files sent with a message to the chat's documents; toasts (which outlast the rerun) say how it went."""
    limit = resources.settings().max_upload_bytes
    for file in files:
        added, message = documents.add_file_and_say(engine, chat_id, file.name, file.getvalue(), limit)
        st.toast(message, icon=":material/description:" if added else ":material/error:", duration="long")


sidebar.render(chat_page=True)
db = resources.engine()
current_chat = st.session_state.get("chat_id")
current_model = st.session_state.get("model")
job = resources.registry().get(current_chat) if current_chat is not None else None
if current_chat is None:
    st.markdown("#### What's on your mind?")
    st.caption("Everything stays on this computer: chats are saved locally as you type.")
else:
    context = chat_context(db, current_chat, current_model)
    shown = render_history(db, current_chat, until=job.turn.user_message_id if job else None, context=context)
    if job is None:
        render_last_turn_actions(current_chat, shown, current_model)
    if context is not None:
        render_context_caption(db, context)
if job is None and not current_model:
    placeholder = "No model available: see the sidebar"
else:
    placeholder = "A reply is being written…" if job else "Message"
submitted = st.chat_input(
    placeholder,
    disabled=job is not None or not current_model,
    accept_file="multiple",
    file_type=list(KINDS),
    max_upload_size=resources.settings().max_upload_mb,
)
if job is not None:
    follow_reply(job)
if submitted:
    send(db, current_chat, submitted, current_model)
