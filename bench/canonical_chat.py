"""The simplest canonical Streamlit chat over Ollama: the baseline bench/browser_latency.py measures the app against.

History in st.session_state, re-rendered every run; the reply streamed with st.write_stream in the run that got
the message. CANONICAL_HISTORY may name a JSON file of messages ([{"role": ..., "content": ...}]) every new
session starts with. The client is cached (building one costs ~80 ms, which no reply should carry).

With CANONICAL_PAGE=app it draws the same chat on a page like chatcore's: its sidebar (page links, new chat,
model, collapsed chat settings, search, CANONICAL_CHATS chat buttons) and the chat in a fragment, with a message
input that takes files. Streamlit's frontend redraws every element on the page at each run, so this tells what
the page itself costs a reply's first words, apart from how the reply is written.
Run: OLLAMA_HOST=http://127.0.0.1:11434 streamlit run bench/canonical_chat.py
"""

import json
import os
from pathlib import Path

import ollama
import streamlit as st

MODEL = os.environ.get("CANONICAL_MODEL", "llama3:8b")


@st.cache_resource
def ollama_client() -> ollama.Client:
    """One client per server process, as a real app keeps it."""
    return ollama.Client(host=os.environ["OLLAMA_HOST"])


def draw_app_sidebar(chats: int) -> None:
    """Widgets like those of chatcore's sidebar, doing nothing."""
    with st.sidebar:
        for label, icon in (("Chat", "chat"), ("Documents", "description"), ("Export and import", "import_export")):
            st.page_link("http://127.0.0.1/", label=label, icon=f":material/{icon}:")  # a page of its own is refused
        st.button("New chat", icon=":material/edit_square:", width="stretch")
        st.selectbox("Model", [MODEL])
        st.expander("Chat settings", key="chat-settings", on_change="rerun")
        st.text_input("Search chats", placeholder="Search chats", label_visibility="collapsed")
        st.caption("Chats")
        for number in range(chats):
            st.button(f"Chat {number + 1}", key=f"chat-{number}", type="tertiary", width="stretch")


def chat(accept_file: bool = False) -> None:
    """The history, then the message sent in this run and its reply, streamed."""
    for message in st.session_state.messages:
        with st.chat_message(message["role"]):
            st.markdown(message["content"])
    if sent := st.chat_input("Message", accept_file=accept_file):
        prompt = sent.text if accept_file else sent
        st.session_state.messages.append({"role": "user", "content": prompt})
        with st.chat_message("user"):
            st.markdown(prompt)
        with st.chat_message("assistant"):
            parts = ollama_client().chat(model=MODEL, messages=st.session_state.messages, stream=True)
            reply = st.write_stream(part.message.content for part in parts)
        st.session_state.messages.append({"role": "assistant", "content": reply})


if "messages" not in st.session_state:
    seed = os.environ.get("CANONICAL_HISTORY")
    st.session_state.messages = json.loads(Path(seed).read_text()) if seed else []

if os.environ.get("CANONICAL_PAGE") == "app":
    draw_app_sidebar(int(os.environ.get("CANONICAL_CHATS", "20")))
    st.fragment(chat)(accept_file=True)
else:
    chat()
