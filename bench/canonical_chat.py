"""The simplest canonical Streamlit chat over Ollama: the baseline bench/browser_latency.py measures the app against.

History in st.session_state, re-rendered every run; the reply streamed with st.write_stream in the run that got
the message. CANONICAL_HISTORY may name a JSON file of messages ([{"role": ..., "content": ...}]) every new
session starts with. The client is cached (building one costs ~80 ms, which no reply should carry).
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


if "messages" not in st.session_state:
    seed = os.environ.get("CANONICAL_HISTORY")
    st.session_state.messages = json.loads(Path(seed).read_text()) if seed else []

for message in st.session_state.messages:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])

if prompt := st.chat_input("Message"):
    st.session_state.messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        parts = ollama_client().chat(model=MODEL, messages=st.session_state.messages, stream=True)
        reply = st.write_stream(part.message.content for part in parts)
    st.session_state.messages.append({"role": "assistant", "content": reply})
