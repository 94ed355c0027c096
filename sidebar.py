"""The frame every page draws first: page settings, the current chat, and the sidebar (pages, chats, model).

Each page calls `render()` before anything else: the chat page (streamlit_app.py, the entry script)
and the pages in pages/, which Streamlit serves at /documents and /export.
"""

from pathlib import Path

import streamlit as st

import resources
from chatcore import backends, config, search, store
from chatcore.captions import no_models_notice
from chatcore.context import choose_context_length, context_length_choices
from chatcore.export import Format, plan_export
from chatcore.markdown import escape_markdown

BACKEND_LOOK_S = 5  # how often an open page looks whether Ollama came, went or got a model (checked every 20 s)
CHATS_STEP = 20  # each chat listed is a button the browser redraws at every run, while a reply streams too
ICON = Path(__file__).parent / "assets" / "favicon.svg"  # a file: an emoji icon needs an emoji font to be drawn
CHAT_PAGE = "streamlit_app.py"  # paths relative to the entry script, as st.page_link and st.switch_page take them
PAGE_LINKS = (
    (CHAT_PAGE, "Chat", ":material/chat:"),
    ("pages/documents.py", "Documents", ":material/description:"),
    ("pages/export.py", "Export and import", ":material/import_export:"),
)
DESTRUCTIVE_STYLE = """<style>
.st-key-{key} button {{ background-color: #b91c1c; border-color: #b91c1c; color: #ffffff; }}
.st-key-{key} button:hover, .st-key-{key} button:focus-visible {{ background-color: #991b1b; border-color: #991b1b; }}
</style>"""
# Lists of chats and of search hits read down their left edge, as in any chat app (Streamlit centres a button's
# label), a line a chat (a hit's words are read whole).
LIST_STYLE = """<style>
:is(.st-key-chats, .st-key-hits) button { padding-inline: 0.75rem; }
:is(.st-key-chats, .st-key-hits) button :is(div, span) { justify-content: flex-start; min-width: 0; }
:is(.st-key-chats, .st-key-hits) button p { text-align: left; }
.st-key-chats button p { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
</style>"""
# On a narrow screen the sidebar covers the page: picking a chat (or a page) there closes it, as Streamlit's own list of
# pages does on phones. Streamlit has no call for it, so a script clicks the sidebar's own collapse button, after the
# click that picks (a document listener hears it after Streamlit's), and only while the sidebar covers the page.
CLOSE_ON_PICK = """
<script>
(() => {
  if (window.chatcoreClosesSidebar) return;
  window.chatcoreClosesSidebar = true;
  const picks = ".st-key-chats button, .st-key-hits button, .st-key-new-chat button, [data-testid=stPageLink-NavLink]";
  document.addEventListener("click", event => {
    const sidebar = event.target.closest?.('[data-testid="stSidebar"]');
    const main = document.querySelector('[data-testid="stMain"]');
    if (!sidebar || !main || !event.target.closest(picks)) return;
    if (main.getBoundingClientRect().left >= sidebar.getBoundingClientRect().right - 1) return;  // side by side
    sidebar.querySelector('[data-testid="stSidebarCollapseButton"] button')?.click();
  });
})();
</script>
"""
MEMORY_HELP = (
    "When turns no longer fit in the context, the chat's model summarises them in the background, "
    "and the summary is sent with every request."
)


def select_chat(chat_id: int | None) -> None:
    """Make a chat current (None: a new, not yet saved chat)."""
    st.session_state.chat_id = chat_id
    st.session_state.history_limit = None
    st.session_state.pop("found", None)
    st.session_state.pop("confirm_delete", None)


def start_chat(engine, model: str | None) -> int:
    """Save a new chat, with the settings of the latest one, and make it current; its id (StorageError if refused)."""
    chat = store.create_chat_like_latest(engine, model or "", {"num_ctx": resources.settings().num_ctx})
    st.session_state.chat_id = chat.id
    return chat.id


def destructive_button(label: str, key: str, **kwargs) -> bool:
    """A button for what cannot be undone: red, with a delete icon (Streamlit has no such button type)."""
    st.html(DESTRUCTIVE_STYLE.format(key=key))
    return st.button(label, key=key, type="primary", icon=":material/delete_forever:", **kwargs)


def open_chat(chat_id: int | None) -> None:
    """Make a chat current and show it, from whichever page."""
    select_chat(chat_id)
    st.session_state.show_chat = True


def resolve_current_chat(engine) -> int | None:
    """The current chat id: this session's choice, else the URL's, else the most recent chat."""
    if "chat_id" not in st.session_state:
        wanted = st.query_params.get("chat")
        chosen = int(wanted) if wanted and wanted.isdigit() else None
        if wanted is None:
            recent = store.list_chats(engine, limit=1)
            chosen = recent[0].id if recent else None
        elif chosen is None or store.get_chat(engine, chosen) is None:
            st.session_state.missing_chat = wanted  # said on the page; nothing else is opened in its place
            chosen = None
        select_chat(chosen)
    chat_id = st.session_state.chat_id
    if chat_id is not None and store.get_chat(engine, chat_id) is None:
        select_chat(chat_id := None)
    if chat_id is None:
        st.query_params.pop("chat", None)
    else:
        st.query_params["chat"] = str(chat_id)
    return chat_id


def open_search_hit(chat_id: int, message_id: int | None) -> None:
    """Open a chat at the matching message: the history shows the messages around it, scrolled to it."""
    open_chat(chat_id)
    if message_id is not None:
        st.session_state.found = message_id


def render_search(engine) -> bool:
    """A search box over titles and messages; while it holds a query, its results replace the chat list."""
    if "search" in st.session_state:  # each page has widgets of its own: the query goes from one to the next
        st.session_state.search = st.session_state.search
    query = st.text_input("Search chats", key="search", placeholder="Search chats", label_visibility="collapsed")
    if not query.strip():
        return False
    hits = search.search_chats(engine, query)
    if not hits:
        st.caption("No chat matches.")
    with st.container(key="hits", gap="xxsmall"):
        st.html(LIST_STYLE)
        for index, hit in enumerate(hits):
            st.button(
                search.hit_label(hit),
                key=f"hit-{index}",
                type="tertiary",
                width="stretch",
                on_click=open_search_hit,
                args=(hit.chat_id, hit.message_id),
            )
    return True


def render_chat_list(engine, current: int | None) -> None:
    """The newest chats as buttons, with a control to show more."""
    limit = st.session_state.setdefault("chat_list_limit", CHATS_STEP)
    chats = store.list_chats(engine, limit)
    if chats:
        st.caption("Chats")
    with st.container(key="chats", gap="xxsmall"):
        st.html(LIST_STYLE)
        for chat in chats:
            st.button(
                escape_markdown(chat.title),
                key=f"chat-{chat.id}",
                type="primary" if chat.id == current else "tertiary",
                width="stretch",
                on_click=open_chat,
                args=(chat.id,),
            )
    hidden = store.count_chats(engine) - limit
    if hidden > 0 and st.button(f"Show {min(hidden, CHATS_STEP)} more chats", key="more-chats"):
        st.session_state.chat_list_limit += CHATS_STEP
        st.rerun()


def render_chat_settings(engine, chat_id: int) -> None:
    """Title, system prompt, temperature, context length and memory of the current chat; export and delete it."""
    settings = st.expander("Chat settings", key="chat-settings", on_change="rerun")
    if not settings.open:  # drawn only when open: every widget on the page slows the redraw of every run
        return
    chat = store.get_chat(engine, chat_id)
    with settings:
        with st.form(f"settings-{chat_id}", border=False):
            title = st.text_input("Title", value=chat.title, max_chars=200)
            system_prompt = st.text_area("System prompt", value=chat.system_prompt, placeholder="e.g. Answer briefly.")
            temperature = st.slider("Temperature", 0.0, 2.0, float(chat.options.get("temperature", 0.8)), 0.1)
            setting = chat.options.get("num_ctx", resources.settings().num_ctx)
            model = st.session_state.get("model")
            trained = resources.backend_choice().backend.context_length(model) if model else None
            num_ctx = st.select_slider(
                "Context length (tokens)",
                context_length_choices(trained, setting),
                value=choose_context_length(trained, setting),
                help=f"At most the model's own length ({trained:,} tokens)." if trained else None,
            )
            memory_enabled = st.toggle("Memory", value=chat.memory_enabled, help=MEMORY_HELP)
            if st.form_submit_button("Save"):
                options = chat.options | {"temperature": temperature, "num_ctx": num_ctx}
                store.update_chat(
                    engine,
                    chat_id,
                    title=title.strip() or chat.title,
                    system_prompt=system_prompt.strip(),
                    options=options,
                    memory_enabled=memory_enabled,
                )
                st.rerun()
        render_export_button(engine, chat_id)
        render_delete(engine, chat)


def render_delete(engine, chat) -> None:
    """Delete the chat, after a confirmation."""
    if st.session_state.get("confirm_delete") != chat.id:
        st.button("Delete chat", key="delete", on_click=st.session_state.update, kwargs={"confirm_delete": chat.id})
        return
    st.warning(f"Delete “{escape_markdown(chat.title)}” and all its messages? This cannot be undone.")
    answer = st.container(horizontal=True)  # each button as wide as its words
    with answer:
        delete = destructive_button("Delete chat", key="delete-yes")
    if delete:
        resources.replies_service().stop(chat.id)
        store.delete_chat(engine, chat.id)
        select_chat(None)
        st.rerun()
    answer.button("Cancel", key="delete-no", on_click=st.session_state.pop, args=("confirm_delete", None))


def render_export_button(engine, chat_id: int) -> None:
    """Download the chat as Markdown in one click; the file is made only when clicked."""
    export = plan_export(engine, [chat_id], Format.MARKDOWN)
    st.download_button(
        "Export this chat",
        data=export.build,
        file_name=export.filename,
        mime=export.mime,
        key="export-chat",
        icon=":material/download:",
        on_click="ignore",
    )


def describe_offer(choice: backends.Choice) -> tuple:
    """What a page shows of the backend choice: the models offered and the notice."""
    return tuple(choice.models), choice.notice


@st.fragment(run_every=BACKEND_LOOK_S)
def follow_backend(shown: tuple) -> None:
    """Draw the page anew once the backend offers other models or says otherwise, without waiting for a click."""
    if describe_offer(resources.backend_choice()) != shown:
        st.rerun(scope="app")


def render_model_picker(engine, chat_id: int | None) -> None:
    """Pick the model for the current chat, which keeps its own; new chats start with the last one picked."""
    choice = resources.backend_choice()
    follow_backend(describe_offer(choice))
    if choice.notice:
        st.info(choice.notice, icon=":material/info:")
    if not choice.models:
        if not choice.notice:
            st.warning(no_models_notice(choice.backend.host), icon=":material/warning:")
        st.session_state.model = None
        return
    chat = store.get_chat(engine, chat_id) if chat_id else None
    key = f"model-{chat_id}"
    index = None
    if chat and chat.model and chat.model not in choice.models:
        st.warning(
            f"This chat's model, {chat.model}, is not available now: choose one to go on.", icon=":material/warning:"
        )
    elif chat and chat.model:
        st.session_state[key] = chat.model  # its own, drawn anew once it is offered again after it was not
    else:
        latest = chat or next(iter(store.list_chats(engine, limit=1)), None)
        preferred = (chat.model if chat else st.session_state.get("model")) or (latest.model if latest else "")
        preferred = preferred or resources.settings().default_model
        index = choice.models.index(preferred) if preferred in choice.models else 0
    model = st.selectbox(
        "Model",
        choice.models,
        index=index,
        key=key,
        placeholder="Choose a model",
        on_change=save_model,
        args=(engine, chat_id, key),
    )
    st.session_state.model = model


def save_model(engine, chat_id: int | None, key: str) -> None:
    """Keep the model the user picked as the chat's (only a pick writes it: showing a chat never does)."""
    if chat_id is not None and st.session_state[key]:
        store.update_chat(engine, chat_id, model=st.session_state[key])


def render_page_links() -> None:
    """Links to the pages (Streamlit's own list of them is hidden: it would name the chat page after the file)."""
    for path, label, icon in PAGE_LINKS:
        st.page_link(path, label=label, icon=icon)


def render(chat_page: bool = False) -> None:
    """Draw the frame of a page: its settings and the sidebar; `chat_page` tells whether it is the chat page.

    A chat opened from the sidebar on another page (by a callback) is then shown on the chat page.
    """
    st.set_page_config(page_title="chatcore", page_icon=ICON)
    if st.session_state.pop("show_chat", False) and not chat_page:
        st.switch_page(CHAT_PAGE)
    try:
        db = resources.engine()
    except (config.SettingsError, store.DatabaseUnavailableError) as error:
        st.error(escape_markdown(str(error)), icon=":material/error:")
        st.stop()
    current_chat = resolve_current_chat(db)
    if missing := st.session_state.pop("missing_chat", None):
        st.warning(
            f"Chat {missing} no longer exists: it may have been deleted. Choose a chat in the sidebar, "
            "or write below to start a new one.",
            icon=":material/search_off:",
        )
    with st.sidebar:
        render_page_links()
        st.button(
            "New chat", key="new-chat", icon=":material/edit_square:", width="stretch", on_click=open_chat, args=(None,)
        )
        render_model_picker(db, current_chat)
        if current_chat is not None:
            render_chat_settings(db, current_chat)
        if not render_search(db):
            render_chat_list(db, current_chat)
        st.html(CLOSE_ON_PICK, unsafe_allow_javascript=True)
    resources.process_documents(st.session_state.model)
