"""Process-wide resources for the UI, built once: the database, the backend, the reply service, the document worker."""

import contextlib
import gc
import importlib
import threading

import streamlit as st
from sqlalchemy import Engine

from chatcore import backends, config, replies, store, workers

BACKEND_RECHECK_S = 20  # how soon a newly started (or stopped) Ollama is noticed

# st.write_stream makes sure it was not given a dataframe, importing numpy, pandas and pyarrow at its first call:
# half a second, while the first reply's first words wait. Imported now, as the server starts.
STREAM_CHECK_MODULES = ("numpy", "pandas", "pyarrow")
for name in STREAM_CHECK_MODULES:
    importlib.import_module(name)

# Streamlit collects all garbage after every run, a fragment's too, holding up the reply being written meanwhile:
# over the 180,000 objects the libraries have loaded by now, a collection takes 150-200 ms. They live as long as
# the process does, so collections leave them out.
gc.freeze()


def settings() -> config.Settings:
    """The settings from the environment."""
    return config.load_settings()


@st.cache_resource(show_spinner=False, on_release=lambda engine: engine.dispose())
def _engine_for(url: str) -> Engine:
    # Whether the URL is the data folder's follows from the environment, as the URL does: it need not be in the key.
    engine = store.open_engine(url, settings().db_in_data_dir)
    # Replies left `streaming` by an instance that died (its lease ran out); a database too busy for it now has them
    # marked by whichever instance next reads them.
    with contextlib.suppress(store.StorageError):
        store.mark_interrupted_replies(engine)
    return engine


def engine() -> Engine:
    """The migrated database engine for the configured URL."""
    return _engine_for(settings().db_url)


# Settings are frozen, so their own hash will do: Streamlit's hashing of them cost a millisecond a call.
@st.cache_resource(show_spinner=False, hash_funcs={config.Settings: hash}, on_release=lambda watch: watch.stop())
def _watch_for(current: config.Settings) -> backends.BackendWatch:
    return backends.BackendWatch(current, BACKEND_RECHECK_S)


def backend_choice() -> backends.Choice:
    """The backend in use, its models, and any notice for the user."""
    return _watch_for(settings()).choice


@st.cache_resource(show_spinner=False, on_release=lambda service: service.shutdown())
def _replies_for(url: str, auto_title: bool, reply_reserve: float, lease_s: float) -> replies.ReplyService:
    service = replies.ReplyService(_engine_for(url), auto_title, reply_reserve, lease_s)
    # As the server stops, Python waits for the service's workers to end, so a reply being written held up Ctrl-C
    # until its last word, minutes with a slow model. Stopped first, its text kept, it ends at once. This is the hook
    # concurrent.futures uses for that wait; Streamlit releases no cached resource as it stops.
    threading._register_atexit(service.shutdown)
    return service


def replies_service() -> replies.ReplyService:
    """The replies being written in this process, shared by every browser session."""
    current = settings()
    return _replies_for(current.db_url, current.auto_title, current.reply_reserve, current.reply_lease_s)


@st.cache_resource(show_spinner=False)
def _document_worker_for(url: str, num_ctx: int, summaries: bool) -> workers.DocumentWorker:
    return workers.DocumentWorker(_engine_for(url), num_ctx, summaries)


def document_worker() -> workers.DocumentWorker:
    """The thread that writes documents' vectors and summaries in this process."""
    current = settings()
    return _document_worker_for(current.db_url, current.num_ctx, current.summaries)


def process_documents(model: str | None) -> None:
    """Have the documents' missing vectors and summaries written in the background, by `model` for summaries."""
    document_worker().catch_up(backend_choice().backend, model)
