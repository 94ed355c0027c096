"""The documents page: add files to the current chat (a new one, if none) or the library, attach library documents,
delete (after a confirmation)."""

import streamlit as st

import resources
import sidebar
from chatcore import documents, store
from chatcore.captions import document_caption
from chatcore.ingestion import KINDS
from chatcore.markdown import link_images
from chatcore.models import Document
from widgets import keep_choice

LIBRARY = "library"
CHAT = "chat"
PROGRESS_REFRESH_S = 2
CONFIRM = "confirm_delete_document"  # the id of the document whose deletion is being confirmed
TARGET = "document-target"  # where uploads go: CHAT or LIBRARY


def render_upload(engine, chat_id: int | None) -> None:
    """Upload files, several at once; each is added once, and its outcome stays shown while it is there."""
    labels = {CHAT: "This chat" if chat_id is not None else "A new chat", LIBRARY: "The library (for any chat)"}
    keep_choice(TARGET, CHAT)
    target = st.radio("Add to", [CHAT, LIBRARY], format_func=labels.get, horizontal=True, key=TARGET)
    uploads = st.file_uploader(
        "Add PDF, DOCX, TXT or Markdown files",
        type=list(KINDS),
        accept_multiple_files=True,
        max_upload_size=resources.settings().max_upload_mb,
        key="document-files",
    )
    outcomes = st.session_state.setdefault("document_outcomes", {})
    if fresh := [upload for upload in uploads if upload.file_id not in outcomes]:
        new_chat = target == CHAT and chat_id is None
        if new_chat and not start_chat(engine):
            return
        named = add_uploads(engine, st.session_state.chat_id if target == CHAT else None, fresh, outcomes)
        if new_chat or named:
            st.rerun()  # the sidebar, drawn before this page, then lists the chat by its name
    for upload in uploads:
        succeeded, message = outcomes[upload.file_id]
        (st.success if succeeded else st.error)(message)


def start_chat(engine) -> bool:
    """Save the new chat that files are added to; whether it could be saved (else the page says why)."""
    try:
        sidebar.start_chat(engine, st.session_state.get("model"))
    except store.StorageError as failure:
        st.error(str(failure), icon=":material/error:")
        return False
    return True


def add_uploads(engine, chat_id: int | None, uploads, outcomes: dict) -> bool:
    """Add the files one by one, showing progress; whether one of them named the chat."""
    with st.status(f"Adding {len(uploads)} file{'s' if len(uploads) > 1 else ''}…", expanded=True) as status:
        limit, seconds = resources.settings().max_upload_bytes, resources.settings().read_seconds
        for upload in uploads:
            status.update(label=f"Reading {upload.name}…")
            status.write(f"Reading {upload.name}…")
            outcomes[upload.file_id] = documents.add_file_and_say(
                engine, chat_id, upload.name, upload.getvalue(), limit, seconds
            )
        status.update(label="Done", state="complete", expanded=False)
    resources.process_documents(st.session_state.get("model"))  # their vectors and summaries, from now
    return any(added and added.named for added, _ in (outcomes[upload.file_id] for upload in uploads))


def render_document(engine, document: Document, chat_id: int | None, attached: bool | None) -> None:
    """One document: name and facts, attach or detach (library documents, with a chat), delete."""
    row = st.container(horizontal=True, vertical_alignment="center")
    row.text(document.name)
    row.caption(document_caption(document))
    if attached is not None:
        action, label = (store.detach_document, "Detach") if attached else (store.attach_document, "Attach")
        row.button(label, key=f"{label.lower()}-{document.id}", on_click=action, args=(engine, chat_id, document.id))
    row.button("Delete", key=f"delete-{document.id}", on_click=st.session_state.update, kwargs={CONFIRM: document.id})
    if st.session_state.get(CONFIRM) == document.id:
        render_delete(engine, document)
    render_summary(document)


def render_delete(engine, document: Document) -> None:
    """Ask before deleting a document, saying what deleting it does."""
    st.warning(
        f"Delete “{document.name}”? Chats will no longer use it. Replies that cited it keep the passages they were "
        "given, marked “document deleted”. This cannot be undone."
    )
    answer = st.container(horizontal=True)
    with answer:
        sidebar.destructive_button(
            "Delete document", key=f"delete-yes-{document.id}", on_click=delete, args=(engine, document.id)
        )
    answer.button("Cancel", key=f"delete-no-{document.id}", on_click=st.session_state.pop, args=(CONFIRM, None))


def delete(engine, document_id: int) -> None:
    """Delete a document the user confirmed deleting."""
    store.delete_document(engine, document_id)
    st.session_state.pop(CONFIRM, None)


def render_summary(document: Document) -> None:
    """The document's summary when written; what is being done to it meanwhile, or why there is none."""
    if progress := resources.document_worker().progress(document.id):
        st.caption(progress)
    if document.summary:
        with st.expander("Summary", key=f"summary-{document.id}"):  # stays open when the page redraws it
            st.markdown(link_images(document.summary))
            st.caption(f"Written by {document.summary_model}.")
    elif not resources.backend_choice().backend.follows_instructions:
        st.caption("No summary yet: the built-in demo model cannot write one. Start Ollama to have it written.")


def render_documents(engine, chat_id: int | None) -> None:
    """The current chat's documents (its own and the attached ones), then the rest of the library."""
    mine = store.list_documents(engine, chat_id) if chat_id is not None else []
    if chat_id is not None:
        st.subheader("In this chat")
        if not mine:
            st.caption("No documents yet: add some above, or attach some from the library.")
    for document in mine:
        render_document(engine, document, chat_id, attached=True if document.chat_id is None else None)
    st.subheader("Library")
    in_chat = {document.id for document in mine}
    library = [document for document in store.list_documents(engine, None) if document.id not in in_chat]
    if not library:
        st.caption("No other documents in the library.")
    for document in library:
        render_document(engine, document, chat_id, attached=None if chat_id is None else False)


@st.fragment(run_every=PROGRESS_REFRESH_S)
def follow_progress(engine, chat_id: int | None) -> None:
    """The documents, redrawn every few seconds while summaries or vectors are being written."""
    render_documents(engine, chat_id)
    if not resources.document_worker().busy():
        st.rerun()  # drawn once more by the whole page, without the timer


sidebar.render()
db = resources.engine()
current_chat = st.session_state.get("chat_id")
st.caption(
    "Add documents to a chat, or to the library to use them in any chat: a chat uses a library document once it is "
    "attached to it (Attach, below). Each question sends the model the passages of the chat's documents that best "
    "match it, and each reply lists them under Sources. Each document also gets a summary, for questions about it "
    "as a whole."
)
render_upload(db, current_chat)
if resources.document_worker().busy():
    follow_progress(db, current_chat)
else:
    render_documents(db, current_chat)
