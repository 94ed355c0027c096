"""The chat page: history, input, streamed reply."""

import streamlit as st

import resources
from chatcore import generation, store
from chatcore.backends import BackendError
from chatcore.captions import reply_caption
from chatcore.models import Message, Status

HISTORY_STEP = 50


def render_message(message: Message) -> None:
    """One stored message, with its caption or error."""
    with st.chat_message(message.role):
        if message.content:
            st.markdown(message.content)
        if message.status == Status.ERROR:
            st.error(message.error, icon=":material/error:")
        if message.role == "assistant" and (caption := reply_caption(message)):
            st.caption(caption)


def render_history(engine, chat_id: int) -> None:
    """The latest messages, with a control to show earlier ones."""
    limit = st.session_state.get("history_limit") or HISTORY_STEP
    earlier = store.count_messages(engine, chat_id) - limit
    if earlier > 0 and st.button(f"Show earlier messages ({earlier} more)", key="show-earlier"):
        st.session_state.history_limit = limit + HISTORY_STEP
        st.rerun()
    for message in store.recent_messages(engine, chat_id, limit):
        render_message(message)


def send(engine, chat_id: int | None, prompt: str, model: str) -> None:
    """Run one turn, streaming the reply; the page is redrawn from the database afterwards."""
    if chat_id is None:
        chat_id = store.create_chat(engine, model=model, options={"num_ctx": resources.settings().num_ctx}).id
        st.session_state.chat_id = chat_id
    with st.chat_message("user"):
        st.markdown(prompt)
    reply = generation.run_turn(engine, resources.backend_choice().backend, chat_id, prompt, model)
    with st.chat_message("assistant"):
        try:
            st.write_stream(reply)
        except BackendError as error:
            st.error(str(error))
        finally:
            reply.close()
    st.rerun()


db = resources.engine()
current_chat = st.session_state.get("chat_id")
current_model = st.session_state.get("model")
if current_chat is not None:
    render_history(db, current_chat)
else:
    st.markdown("#### What's on your mind?")
    st.caption("Everything stays on this computer: chats are saved locally as you type.")
prompt = st.chat_input(
    "Message" if current_model else "No model available: see the sidebar",
    submit_mode="stop",
    disabled=not current_model,
)
if prompt:
    send(db, current_chat, prompt, current_model)
