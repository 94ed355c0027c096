"""The export and import page: download chats as Markdown, JSON or text; import a JSON export."""

import streamlit as st

import resources
import sidebar
from chatcore import store
from chatcore.archive import MAX_FILE_BYTES, ArchiveError
from chatcore.captions import chat_labels
from chatcore.export import Format, plan_export
from chatcore.importer import import_archive
from widgets import keep_choice

CHOSEN = "export-chats"  # the ids of the chats chosen for export


def render_export(engine) -> None:
    """Choose chats and a format, then download them: one chat as a file, several as a zip or one JSON."""
    labels = chat_labels(store.list_chats(engine, limit=None))
    if not labels:
        st.info("No chats yet: there is nothing to export.")
        return
    current = st.session_state.get("chat_id")
    keep_choice(CHOSEN, [current] if current in labels else [])
    chosen = st.multiselect(
        "Chats",
        list(labels),
        format_func=labels.get,
        help="Each chat is listed with the time it was started, in UTC.",
        key=CHOSEN,
    )
    fmt = st.radio("Format", list(Format), format_func=lambda option: option.label, horizontal=True)
    if not chosen:
        st.caption("Choose at least one chat.")
        return
    plan = plan_export(engine, chosen, fmt)
    st.download_button(
        f"Download {plan.filename}",
        data=plan.build,
        file_name=plan.filename,
        mime=plan.mime,
        icon=":material/download:",
        on_click="ignore",
        key="download-export",
    )


def render_import(engine) -> None:
    """Upload a JSON export; it is imported once, and the outcome stays shown while the file is there."""
    upload = st.file_uploader(
        "Import a chatcore JSON export", type="json", max_upload_size=MAX_FILE_BYTES // 2**20, key="import-file"
    )
    if upload is None:
        return
    outcomes = st.session_state.setdefault("import_outcomes", {})
    if upload.file_id not in outcomes:
        outcomes[upload.file_id] = import_file(engine, upload.getvalue())
        st.rerun()  # the sidebar, drawn before this page, then lists the new chats
    succeeded, message = outcomes[upload.file_id]
    if succeeded:
        st.success(message, icon=":material/check_circle:")
    else:
        st.error(message, icon=":material/error:")


def import_file(engine, data: bytes) -> tuple[bool, str]:
    """Import an export file; whether it worked, and what happened."""
    try:
        return True, import_archive(engine, data).summary()
    except ArchiveError as error:
        return False, str(error)


sidebar.render()
db = resources.engine()
st.subheader("Export")
st.caption("One chat downloads as a file; several as a zip with a file per chat, or as one JSON file.")
render_export(db)
st.subheader("Import")
st.caption("Reads chatcore's JSON exports back; chats already here are skipped.")
render_import(db)
