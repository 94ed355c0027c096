"""chatcore's entry point and chat page: the history, then the turn being written, what the model is sent, one input.

The history is drawn by full page runs only. Everything after it lives in one fragment, so a message
sent is answered in the run that received it, and a reply is followed in runs of a quarter second
each: between them Streamlit hands the fragment the user's clicks and messages, so Stop and a message
typed meanwhile act at once. The fragment draws the same elements in the same order in every run,
and a full page run never waits on a reply: no element of an earlier run is left on screen.
"""

import time
from contextlib import nullcontext

import streamlit as st

import resources
import sidebar
from chatcore import documents, memory, store
from chatcore.captions import (
    ICONS,
    context_caption,
    documents_note,
    finished_note,
    no_model_note,
    outside_note,
    reply_caption,
)
from chatcore.ingestion import KINDS
from chatcore.markdown import escape_markdown, link_images, link_images_as_streamed
from chatcore.models import Message, Status
from chatcore.prompt import ContextOverflowError, Prompt
from chatcore.replies import ChatBusyError, LiveReply
from chatcore.retrieval import given_label

# The browser redraws every message on the page at each run, so each one shown delays a reply's first words.
HISTORY_SHOWN = 10  # the newest messages shown at first
HISTORY_STEP = 50  # how many more each "Show earlier messages" adds
FOUND_LATER = 4  # messages shown after a search hit; the rest of the window goes before it
SHOW_FOUND = """
<style>.st-key-found [data-testid="stChatMessage"] { outline: 2px solid #f59e0b; border-radius: 0.5rem; }</style>
<script>
requestAnimationFrame(() => document.querySelector(".st-key-found")?.scrollIntoView({block: "center"}));
</script>
"""
# Streamlit keeps a page scrolled to its newest message only when its message input is outside any container,
# and this page's is in the fragment. So a script does: it keeps the bottom of the chat in view as messages are
# written, until the user scrolls up; sending a message, opening another chat, or leaving a search hit for the
# latest messages follows it again. Never on a search hit, which is scrolled to.
FOLLOW_LATEST = """
<script>
(() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || main.dataset.followsLatest) return;
  main.dataset.followsLatest = "yes";
  let follow = true, chat = location.search, found = false, scrolling = false;
  // Only the user's own scrolling moves it: the page's growing and shrinking (and the browser keeping what is in view
  // in place meanwhile) scroll it too, the user's intent not. Scrolling up stops following; scrolling back down to
  // the bottom follows again.
  const stop = () => { [follow, scrolling] = [false, false]; };
  const scroll = () => { scrolling = true; };
  main.addEventListener("wheel", event => (event.deltaY < 0 ? stop : scroll)(), {passive: true});
  main.addEventListener("touchmove", () => { stop(); scroll(); }, {passive: true});
  main.addEventListener("pointerdown", event => { if (event.target === main) { stop(); scroll(); } });  // scroll bar
  document.addEventListener("keydown", event => {
    const typing = event.target.closest?.("textarea, input");
    if (["PageUp", "ArrowUp", "Home"].includes(event.key) && !typing) stop();
    if (["PageDown", "ArrowDown", "End", " "].includes(event.key) && !typing) scroll();
    if (event.key === "Enter" && !event.shiftKey && event.target.closest?.(".st-key-message")) follow = true;
  }, true);
  let top = main.scrollTop;
  main.addEventListener("scroll", () => {  // a scroll up, or the page shrinking, can end near the bottom too
    const down = main.scrollTop > top;
    top = main.scrollTop;
    if (scrolling && down && main.scrollHeight - main.scrollTop - main.clientHeight < 48) follow = true;
  }, {passive: true});
  const grown = new ResizeObserver(() => {  // called once the browser has laid the page out: no layout of its own
    const hit = Boolean(document.querySelector(".st-key-found"));
    if (location.search !== chat || (found && !hit)) [follow, chat] = [true, location.search];
    found = hit;
    if (follow && !hit && document.querySelector(".st-key-message")) main.scrollTop = main.scrollHeight;
  });
  const watch = () => { for (const child of main.children) grown.observe(child); };
  watch();
  new MutationObserver(watch).observe(main, {childList: true});
})();
</script>
"""
FOLLOW_S = 0.25  # how long one fragment run follows a reply before handing back for clicks and messages
# The browser redraws the page for each piece of text it is sent: sent a token every 5 ms, it spent its time
# redrawing. In pieces at least 50 ms apart, first words showed 9% sooner, whole replies 7%.
REDRAW_S = 0.05
QUEUED_NOTE = "Queued: sent when the reply above ends."


def render_message(message: Message, sources: list) -> None:
    """One stored message, with its caption or error, and the passages it was given."""
    with st.chat_message(message.role):
        if message.content and message.role == "user":
            st.text(message.content)  # as typed
        elif message.content:
            st.markdown(link_images(message.content))
        if message.status == Status.ERROR:
            st.error(message.error, icon=":material/error:")
        if message.status == Status.QUEUED:
            st.caption(QUEUED_NOTE)
        if message.role == "assistant" and (caption := reply_caption(message, ICONS)):
            st.caption(caption, help=finished_note(message))
        if sources:
            render_sources(sources)


def render_sources(sources: list) -> None:
    """The document passages a reply was given, under the numbers it cites, kept when a document is deleted."""
    with st.expander("Sources"):
        for source, present in sources:
            st.caption(escape_markdown(given_label(source, present)))
            st.text(source.text)


def render_messages(engine, messages: list[Message], context: Prompt | None, found: int | None = None) -> None:
    """Stored messages; a divider marks where the messages the model is sent begin, a frame the one `found`."""
    boundary = None if context is None or context.window.complete else context.window.oldest_id
    sources = store.reply_sources(engine, [message.id for message in messages if message.role == "assistant"])
    for message in messages:
        if message.id == boundary:
            render_divider(engine, context)
        with st.container(key="found") if message.id == found else nullcontext():
            render_message(message, sources.get(message.id, []))
    if found is not None:
        st.html(SHOW_FOUND, unsafe_allow_javascript=True)


def history_limit() -> int:
    """How many messages the history shows."""
    return st.session_state.get("history_limit") or HISTORY_SHOWN


def history_messages(engine, chat_id: int, before: int | None) -> list[Message]:
    """The newest messages older than `before`, or those around a search hit; more when asked for earlier ones."""
    limit = history_limit()
    found = st.session_state.get("found")
    if found is None:
        return store.recent_messages(engine, chat_id, limit, before=before)
    return store.messages_around(engine, chat_id, found, limit - FOUND_LATER, FOUND_LATER)


def render_history(engine, chat_id: int, before: int | None, context: Prompt | None) -> None:
    """The history above the turn being written (`before`), with controls to show earlier or the latest messages."""
    messages = history_messages(engine, chat_id, before)
    earlier = store.count_messages(engine, chat_id, before=messages[0].id) if messages else 0
    if earlier and st.button(f"Show earlier messages ({earlier} more)", key="show-earlier"):
        st.session_state.history_limit = history_limit() + HISTORY_STEP
        st.rerun()
    found = st.session_state.get("found")
    render_messages(engine, messages, context, found)
    end = messages[-1].id if messages else 0
    if found is not None and (later := store.count_messages(engine, chat_id, after=end)):
        st.button(f"Show the latest messages ({later} more)", key="show-latest", on_click=show_latest)
        end = store.recent_messages(engine, chat_id, limit=1)[0].id  # the turn below shows only what is new
    st.session_state.history_end = (chat_id, end)


def show_latest() -> None:
    """Leave a search hit's messages for the newest ones."""
    st.session_state.pop("found", None)
    st.session_state.history_limit = None


def render_divider(engine, context: Prompt) -> None:
    """The faint line above the oldest message the model is sent; the memory, if it covers what is above."""
    chat = context.chat
    summarised = chat.memory_enabled and memory.is_up_to_date(engine, chat, context.window)
    st.caption(f"⋯ {outside_note(summarised)} ⋯", help=link_images(chat.memory) if summarised else None)


def chat_context(chat_id: int, model: str | None) -> Prompt | None:
    """What the chat's next request would carry (without a model, nothing)."""
    if not model:
        return None
    return resources.replies_service().preview(resources.backend_choice().backend, chat_id, model)


def render_context_caption(engine, context: Prompt, pending: set[str]) -> None:
    """How much of the chat the next request carries, and the work still done after the last reply."""
    window, chat = context.window, context.chat
    explained = (
        f"{context.model} is sent the system prompt and memory, then the newest whole turns that fit in "
        f"{window.budget:,} tokens: the context length {context.options['num_ctx']:,} less "
        f"{context.reply_reserve:.0%} kept for the reply. Token counts are as the model measured them, "
        "estimated for text it has not seen yet."
    )
    line = context_caption(window, store.count_messages(engine, chat.id), chat.memory_enabled, pending)
    st.caption(line, help=explained)


def follow_reply(reply: LiveReply, snapshot: bool, just_sent: bool) -> None:
    """The reply being written: its text so far, then (unless `snapshot`) new text for a quarter second.

    The run that sent the message shows no waiting notice: a loaded model's first words come sooner than it
    could be read, and drawing it, then removing it, would delay them. The next runs show it while no text came.
    """
    with st.chat_message("assistant"):
        st.button(
            "Stop",
            key="stop",
            icon=":material/stop_circle:",
            on_click=resources.replies_service().stop,
            args=(reply.chat_id,),
        )
        text = st.empty()  # one place for the waiting notice and the text that replaces it: one delta less
        if not reply.pieces and not just_sent:
            text.caption("Waiting for the model's first words (it may be loading)…")
        if snapshot:
            text.markdown(link_images("".join(reply.pieces)))
        else:
            text.write_stream(link_images_as_streamed(reply.follow(until=time.monotonic() + FOLLOW_S, every=REDRAW_S)))


def render_last_turn_actions(chat_id: int, model: str | None) -> None:
    """Regenerate the last reply, or edit and resend the last message."""
    engine = resources.engine()
    last = store.recent_messages(engine, chat_id, limit=1)
    question = store.last_user_message(engine, chat_id)
    if not model or not last or last[0].role != "assistant" or question is None:
        return
    if st.session_state.get("editing") == chat_id:
        edit_last_question(chat_id, question.content, model)
        return
    actions = st.container(horizontal=True)
    if actions.button("Regenerate", key="regenerate", icon=":material/refresh:", type="tertiary"):
        restart(resources.replies_service().regenerate, chat_id, model)
    actions.button(
        "Edit last message",
        key="edit",
        icon=":material/edit:",
        type="tertiary",
        on_click=st.session_state.update,
        kwargs={"editing": chat_id},
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
        restart(resources.replies_service().resend_edited, chat_id, model, text)
    elif cancelled:
        st.rerun(scope="fragment")


def restart(start, chat_id: int, model: str, *text: str) -> None:
    """Write the last reply anew; the whole page runs again, since the history above changes."""
    try:
        start(resources.backend_choice().backend, chat_id, model, *text)
    except ChatBusyError as busy:
        refuse(st.warning, busy, *text)
        return
    except store.StorageError as failure:
        refuse(st.error, failure, *text)
        return
    except ContextOverflowError:
        pass  # the refusal is saved with the reply, which the page shows
    st.rerun()


def refuse(show, reason: Exception, text: str = "") -> None:
    """Say why nothing was sent, and give the user's text back so it is not lost."""
    show(f"{reason} Your message was not sent." if text else str(reason))
    if text:
        st.code(text, language=None, wrap_lines=True)


def send(engine, chat_id: int | None, submitted, model: str) -> tuple[int | None, bool]:
    """Add the files sent (creating the chat if needed), then save the message and answer or queue it.

    Returns the chat's id, and whether this created it with something saved in it: the sidebar does not list it yet.
    """
    created = chat_id is None
    if created:
        try:
            chat_id = sidebar.start_chat(engine, model)
        except store.StorageError as failure:
            refuse(st.error, failure, submitted.text)
            return None, False
    add_files(engine, chat_id, submitted.files, name_chat=not submitted.text.strip())
    saved = not submitted.text.strip() or send_text(chat_id, submitted.text, model)
    return chat_id, created and saved


def send_text(chat_id: int, text: str, model: str) -> bool:
    """Save the message and answer or queue it; False, the text given back, if it could not be saved."""
    show_latest()  # after a send, the view returns to the recent messages
    try:
        resources.replies_service().send(resources.backend_choice().backend, chat_id, model, text)
    except store.StorageError as failure:
        refuse(st.error, failure, text)
        return False
    except ContextOverflowError:
        pass  # the refusal is saved with the reply, which the turn below shows
    else:
        # The whole page is drawn again once the reply and its follow-ups are written, even if the reply ends
        # between two fragment runs: the sidebar learns of the chat's title and its place in the list.
        st.session_state.awaiting = chat_id
    return True


def add_files(engine, chat_id: int, files, name_chat: bool) -> None:
    """Add files sent with a message to the chat's documents; toasts (which outlast the rerun) say how it went.

    With `name_chat` (no text sent with them), a new chat is named after the first.
    """
    limit, seconds = resources.settings().max_upload_bytes, resources.settings().read_seconds
    for file in files:
        data = file.getvalue()
        added, message = documents.add_file_and_say(engine, chat_id, file.name, data, limit, seconds, name_chat)
        st.toast(message, icon=":material/description:" if added else ":material/error:", duration="long")


def shown_until(chat_id: int) -> int:
    """The newest message the history above shows: the turn below starts after it."""
    history_chat, end = st.session_state.get("history_end", (None, 0))
    return end if history_chat == chat_id else 0


def render_turn(
    engine, chat_id: int, reply: LiveReply | None, model: str | None, snapshot: bool, just_sent: bool
) -> int:
    """What came after the history: the question, the reply being written, messages queued behind it.

    Returns the id of the newest message there is.
    """
    shown = shown_until(chat_id)
    messages = store.messages_after(engine, chat_id, shown)
    newest = messages[-1].id if messages else shown
    if reply is None:
        render_messages(engine, messages, None)
        if st.session_state.get("found") is None:  # under a search hit, the last turn is out of view
            render_last_turn_actions(chat_id, model)
        return newest
    before = [message for message in messages if message.id < reply.turn.reply_id]
    queued = [message for message in messages if message.id > reply.turn.reply_id]
    render_messages(engine, before, None)
    live = st.container()
    render_messages(engine, queued, None)
    with live:  # drawn last: following the reply holds the run
        follow_reply(reply, snapshot, just_sent)
    return newest


def remembered_context(chat_id: int, model: str | None, newest: int) -> Prompt | None:
    """The chat's context preview, worked out again only when a message was added (or by a page run)."""
    key = (chat_id, model, newest)
    remembered = st.session_state.get("context")
    if remembered is None or remembered[0] != key:
        remembered = st.session_state.context = (key, chat_context(chat_id, model))
    return remembered[1]


def render_greeting(engine, chat_id: int | None) -> None:
    """What a chat without messages shows: an invitation to write, and the documents it can be asked about."""
    st.markdown("#### What's on your mind?")
    if chat_id is not None and (names := [document.name for document in store.list_documents(engine, chat_id)]):
        st.caption(escape_markdown(documents_note(names)))
    st.caption("Everything stays on this computer: chats are saved locally as you type.")


def chat_area() -> None:
    """The turn being written, the context caption and the input, as one fragment."""
    engine, service = resources.engine(), resources.replies_service()
    chat_id, model = st.session_state.get("chat_id"), st.session_state.get("model")
    snapshot = st.session_state.pop("full_run", False)  # set by the page run: follow the reply in fragment runs only
    with st.bottom:
        submitted = st.chat_input(
            "Message" if model else no_model_note(bool(resources.backend_choice().models)),
            key="message",
            disabled=not model,
            accept_file="multiple",
            file_type=list(KINDS),
            max_upload_size=resources.settings().max_upload_mb,
        )
    turn, caption = st.container(), st.container()
    unlisted = False  # a chat created by this run: the sidebar does not list it yet
    if submitted:
        chat_id, unlisted = send(engine, chat_id, submitted, model)
    if chat_id is None:
        with turn:
            render_greeting(engine, None)
        return
    reply = service.live(chat_id)
    awaited = not snapshot and st.session_state.get("awaiting") == chat_id
    # Once the title and memory are written too, show them everywhere (a live reply means work is still going on).
    if awaited and reply is None and not service.working(chat_id):
        st.session_state.pop("awaiting")
        st.rerun(scope="app")
    with turn:
        newest = render_turn(engine, chat_id, reply, model, snapshot, just_sent=bool(submitted))
        if not newest:  # a chat without messages yet, such as one started by adding documents
            render_greeting(engine, chat_id)
    if context := remembered_context(chat_id, model, newest):
        with caption:
            render_context_caption(engine, context, service.follow_ups(chat_id))
    # A chat created by this run is listed once the page is drawn anew: after this run's quarter second of following
    # the reply (its first words are not held up), or at once if there is no reply (a refusal, files alone).
    if reply is not None and not snapshot:
        st.rerun(scope="app" if reply.finished or unlisted else "fragment")
    if unlisted:
        st.rerun(scope="app")
    if awaited:
        # The reply has ended, its title or memory is still being written: look again soon, even with the page's
        # timer off (as when the reply ended between two runs of this fragment, which no page run saw).
        service.settle(chat_id, timeout=FOLLOW_S)
        st.rerun(scope="fragment")


def answer_queued(chat_id: int, model: str) -> LiveReply | None:
    """Answer the messages left queued in the chat (by a process that ended first), if any."""
    try:
        return resources.replies_service().answer_queued(resources.backend_choice().backend, chat_id, model)
    except (ContextOverflowError, store.StorageError):
        return None  # a refusal is saved with the reply; a storage failure leaves them queued for the next run


def render_page() -> None:
    """The history drawn by this page run, then the fragment, kept running until what is written has been shown."""
    engine, service = resources.engine(), resources.replies_service()
    chat_id, model = st.session_state.get("chat_id"), st.session_state.get("model")
    reply, history = None, st.container()
    if chat_id is not None:
        reply = service.live(chat_id)
        if reply is None and model:
            reply = answer_queued(chat_id, model)
        context = chat_context(chat_id, model)  # anew in every page run: the chat's settings may have changed
        with history:  # one element, so the fragment below always has the same place, and so the same id
            render_history(engine, chat_id, reply.turn.user_message_id if reply else None, context)
        st.session_state.context = ((chat_id, model, shown_until(chat_id)), context)
    if reply is not None or (chat_id is not None and service.working(chat_id)):
        st.session_state.awaiting = chat_id
    # Work that ended while this run drew the sidebar (a title written meanwhile) is awaited still: a later run,
    # begun once it has ended, shows it.
    awaited = chat_id is not None and st.session_state.get("awaiting") == chat_id
    st.session_state.full_run = True
    st.fragment(chat_area, run_every=FOLLOW_S if awaited else None)()
    st.sidebar.html(FOLLOW_LATEST, unsafe_allow_javascript=True)  # there, its element takes no room on the page


sidebar.render(chat_page=True)
render_page()
