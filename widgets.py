"""Helpers for Streamlit widgets, for any page and the sidebar (chatcore never imports Streamlit)."""

import streamlit as st


def keep_choice(key: str, initial) -> None:
    """Give a widget its value anew each run (`initial` at first), so that the browser shows it by its current label."""
    # The browser knows a choice by its label: "A new chat" showed unchosen once the upload's chat made it "This chat",
    # and a chat chosen for export was dropped once its title was written.
    st.session_state[key] = st.session_state.get(key, initial)
