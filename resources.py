"""Process-wide resources for the UI, built once: the settings, the database engine, the backend."""

import streamlit as st
from sqlalchemy import Engine

from chatcore import backends, config, store

BACKEND_RECHECK_S = 20  # how soon a newly started (or stopped) Ollama is noticed


def settings() -> config.Settings:
    """The settings from the environment."""
    return config.load_settings()


@st.cache_resource(show_spinner=False, on_release=lambda engine: engine.dispose())
def _engine_for(url: str) -> Engine:
    return store.open_engine(url)


def engine() -> Engine:
    """The migrated database engine for the configured URL."""
    return _engine_for(settings().db_url)


@st.cache_resource(show_spinner=False, ttl=BACKEND_RECHECK_S)
def _choice_for(current: config.Settings) -> backends.Choice:
    choice = backends.choose_backend(current)
    if isinstance(choice.backend, backends.EmbeddedBackend):
        choice.backend.warm_up()
    return choice


def backend_choice() -> backends.Choice:
    """The backend in use, its models, and any notice for the user."""
    return _choice_for(settings())
