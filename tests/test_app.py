"""The UI through AppTest: sidebar, chat page, streaming, errors, against the stand-in Ollama."""

import re

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import resources
from chatcore import store
from chatcore.backends import EmbeddedBackend
from chatcore.export import Format, plan_export
from chatcore.markdown import escape_markdown
from chatcore.models import Status, utc_now
from tests.conftest import add_chat
from tests.conftest import at as on_the_sample_day
from tests.documents import sample
from tests.history import fill_chat
from tests.ollama_standin import StandinOllama

ENTRY = "../streamlit_app.py"  # relative to this file


@pytest.fixture
def app_env(standin, db_url, engine, monkeypatch):
    """Environment for the app: a fresh database, migrated already, and the stand-in Ollama."""
    monkeypatch.setenv("CHATCORE_DB_URL", db_url)
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    monkeypatch.delenv("CHATCORE_BACKEND", raising=False)
    monkeypatch.setenv("CHATCORE_AUTO_TITLE", "0")  # titles are tested in test_replies; here they would race
    monkeypatch.setenv("CHATCORE_SUMMARIES", "0")  # as titles; test_documents_page_shows_the_summary turns them on
    st.cache_resource.clear()
    yield standin
    st.cache_resource.clear()  # which shuts the reply service down


@pytest.fixture
def ollama_down(monkeypatch):
    """No Ollama: the built-in model is offered but not loaded, which would take seconds of every core for nothing."""
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr(EmbeddedBackend, "warm_up", lambda backend: None)


def open_app() -> AppTest:
    """A new browser session on the app, after its first run."""
    at = AppTest.from_file(ENTRY, default_timeout=30).run()
    assert not at.exception
    return at


def send(at: AppTest, text: str) -> AppTest:
    """Send a message, then show the page as it is once the reply is written (the browser's next full run)."""
    at.chat_input[0].set_value(text).run()
    assert not at.exception
    if chat_id := at.session_state.chat_id:
        wait_for_reply(at, chat_id)
    return at.run()


def as_typed(markdown: str) -> str:
    """Text shown as typed (its punctuation escaped), as it reads on screen."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def chat_buttons(at: AppTest) -> list[str]:
    return [as_typed(button.label) for button in at.sidebar.button if button.key and button.key.startswith("chat-")]


def shown_text(message) -> str:
    """A message's text as shown: the user's as typed, a reply as Markdown."""
    return (message.text if message.name == "user" else message.markdown)[0].value


def transcript(at: AppTest) -> list[tuple[str, str]]:
    return [(message.name, shown_text(message)) for message in at.chat_message if message.text or message.markdown]


def test_first_visit_shows_an_empty_chat(app_env):
    at = open_app()
    assert at.chat_message.len == 0
    assert not at.chat_input[0].disabled
    assert chat_buttons(at) == []


def test_sending_streams_the_reply_and_saves_the_chat(app_env):
    at = send(open_app(), "hello")
    assert transcript(at) == [("user", "hello"), ("assistant", "Echo: hello")]
    caption = at.chat_message[1].caption[0].value
    assert "llama3:8b" in caption and "2 tokens" in caption and "tokens/s" in caption
    assert at.chat_message[1].caption[0].help.startswith("Finished 20")  # when the reply ended, on hover
    assert chat_buttons(at) == ["hello"]
    assert at.query_params["chat"] == str(at.session_state.chat_id)
    assert app_env.chat_requests[-1]["options"]["num_ctx"] == 4096


def test_a_new_session_finds_the_chat_again(app_env):
    send(open_app(), "remember this")
    at = open_app()
    assert transcript(at) == [("user", "remember this"), ("assistant", "Echo: remember this")]


def test_viewing_a_chat_writes_nothing_to_it(app_env, db_url):
    at = send(open_app(), "hello")
    engine = store.open_engine(db_url)
    before = store.get_chat(engine, at.session_state.chat_id).updated_at
    open_app().run()
    assert store.get_chat(engine, at.session_state.chat_id).updated_at == before


def test_switching_chats(app_env):
    at = send(open_app(), "first chat")
    first_id = at.session_state.chat_id
    at.sidebar.button[0].click().run()  # New chat
    assert at.chat_message.len == 0
    send(at, "second chat")
    assert chat_buttons(at) == ["second chat", "first chat"]
    at.button(key=f"chat-{first_id}").click().run()
    assert transcript(at) == [("user", "first chat"), ("assistant", "Echo: first chat")]
    assert at.query_params["chat"] == str(first_id)


def open_settings(at: AppTest) -> AppTest:
    """Open the sidebar's chat settings, which are drawn only while open."""
    at.session_state["chat-settings"] = True
    at.run()
    assert not at.exception
    return at


def save_settings(at: AppTest, **values) -> AppTest:
    """Fill the sidebar's chat settings form and save it."""
    open_settings(at)
    kinds = ("text_input", "text_area", "slider", "select_slider", "toggle")
    widgets = [w for kind in kinds for w in at.sidebar.get(kind)]
    for label, value in values.items():
        next(widget for widget in widgets if widget.label == label).set_value(value)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    return at


def test_chat_settings_are_drawn_only_while_open(app_env):
    at = send(open_app(), "hello")
    assert at.sidebar.form_submit_button.len == 0
    assert open_settings(at).sidebar.form_submit_button.len == 1


def test_rename_chat(app_env):
    at = send(open_app(), "old name")
    save_settings(at, Title="Holiday plans")
    assert chat_buttons(at) == ["Holiday plans"]


def test_chat_settings_are_saved_and_sent(app_env, db_url):
    at = send(open_app(), "first")
    save_settings(at, **{"System prompt": "Answer in French.", "Temperature": 0.3, "Context length (tokens)": 8192})
    send(at, "second")
    request = app_env.chat_requests[-1]
    assert request["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert request["options"] == {"num_ctx": 8192, "temperature": 0.3}
    at = open_settings(open_app())
    assert at.sidebar.text_area[0].value == "Answer in French."


def test_only_context_lengths_the_model_supports_are_offered(app_env):
    at = open_settings(send(open_app(), "hello"))
    assert at.sidebar.select_slider[0].options == ["2048", "4096", "8192"]  # the stand-in's llama: 8,192
    assert "8,192 tokens" in at.sidebar.select_slider[0].help


def test_a_new_chat_starts_with_the_last_settings(app_env):
    at = send(open_app(), "first")
    save_settings(at, **{"System prompt": "Be brief.", "Context length (tokens)": 2048})
    at.sidebar.button[0].click().run()  # New chat
    send(at, "in a new chat")
    assert len(chat_buttons(at)) == 2
    assert app_env.chat_requests[-1]["options"]["num_ctx"] == 2048
    assert app_env.chat_requests[-1]["messages"][0]["content"] == "Be brief."


def test_delete_asks_first_and_cancel_keeps_the_chat(app_env):
    at = open_settings(send(open_app(), "keep me"))
    at.button(key="delete").click().run()
    assert "cannot be undone" in at.warning[0].value
    at.button(key="delete-no").click().run()
    assert chat_buttons(at) == ["keep me"]
    assert at.warning.len == 0


def test_delete_removes_the_chat_and_its_messages(app_env):
    at = open_settings(send(open_app(), "short lived"))
    at.button(key="delete").click().run()
    at.button(key="delete-yes").click().run()
    assert chat_buttons(at) == []
    assert at.chat_message.len == 0


def test_model_picker_lists_ollama_models_and_is_saved_per_chat(app_env):
    at = open_app()
    picker = at.sidebar.selectbox[0]
    assert picker.options == ["llama3:8b", "qwen2.5:0.5b"]
    picker.set_value("qwen2.5:0.5b").run()
    send(at, "which model?")
    assert app_env.chat_requests[-1]["model"] == "qwen2.5:0.5b"
    assert "qwen2.5:0.5b" in at.chat_message[1].caption[0].value
    assert at.sidebar.selectbox[0].value == "qwen2.5:0.5b"


def test_a_chat_keeps_its_model_while_it_is_unavailable_until_another_is_chosen(
    app_env, engine, ollama_down, monkeypatch
):
    chat = store.create_chat(engine, model="qwen2.5:0.5b")
    store.add_message(engine, chat.id, "user", "hi")
    at = open_app()
    assert "qwen2.5:0.5b, is not available" in at.sidebar.warning[0].value
    assert at.sidebar.selectbox[0].value is None and at.chat_input[0].disabled
    assert at.chat_input[0].placeholder == "Choose a model in the sidebar to go on"  # not "No model available"
    monkeypatch.setenv("OLLAMA_HOST", app_env.url)  # back
    at = open_app()
    assert at.sidebar.selectbox[0].value == "qwen2.5:0.5b" and not at.sidebar.warning
    assert store.get_chat(engine, chat.id).model == "qwen2.5:0.5b"
    at.sidebar.selectbox[0].set_value("llama3:8b").run()
    assert store.get_chat(engine, chat.id).model == "llama3:8b"


def test_error_mid_stream_is_shown_and_the_question_kept(app_env):
    app_env.models["broken:latest"] = "error_line"
    app_env.reply = lambda messages: "Partial words before it broke"
    at = open_app()
    at.sidebar.selectbox[0].set_value("broken:latest").run()
    send(at, "will fail")
    assert transcript(at)[0] == ("user", "will fail")
    assert "out of memory" in at.chat_message[1].error[0].value


def test_model_removed_from_ollama_says_how_to_pull_it(app_env):
    at = open_app()
    del app_env.models["llama3:8b"]  # the sidebar's cached list still offers it
    send(at, "anyone there?")
    assert transcript(at) == [("user", "anyone there?")]
    assert at.chat_message[1].error[0].value == (  # no text came, so none is said to be kept
        "The model 'llama3:8b' is not pulled on this Ollama. Run `ollama pull llama3:8b`. "
        "Regenerate the reply to try again."
    )


def test_ollama_down_falls_back_to_the_built_in_model(app_env, ollama_down):
    at = open_app()
    notice = at.sidebar.info[0].value
    assert "http://127.0.0.1:9 is not running" in notice and "ollama pull llama3:8b" in notice
    assert at.sidebar.selectbox[0].options == ["gemma-3-270m (built-in demo)"]


def test_ollama_down_a_chat_of_an_ollama_model_goes_on_with_the_demo_model_once_chosen(app_env, ollama_down, engine):
    add_chat(engine, [{"role": "user", "content": "hi"}], model="llama3:8b")
    at = open_app()
    assert at.chat_input[0].disabled and at.chat_input[0].placeholder == "Choose a model in the sidebar to go on"
    at.sidebar.selectbox[0].set_value("gemma-3-270m (built-in demo)").run()
    assert not at.chat_input[0].disabled and at.chat_input[0].placeholder == "Message"


def test_ollama_required_but_down_disables_the_input(app_env, ollama_down, monkeypatch):
    monkeypatch.setenv("CHATCORE_BACKEND", "ollama")
    at = open_app()
    assert "Cannot reach Ollama at http://127.0.0.1:9" in at.sidebar.info[0].value
    assert at.chat_input[0].disabled and at.chat_input[0].placeholder == "No model to answer: see the sidebar"


def test_ollama_required_without_a_chat_model_says_so_in_the_sidebar(app_env, monkeypatch):
    monkeypatch.setenv("CHATCORE_BACKEND", "ollama")
    app_env.models = {"nomic-embed-text:latest": "embed"}  # an embedding model is not offered for chatting
    at = open_app()
    assert at.sidebar.selectbox.len == 0 and at.chat_input[0].disabled
    assert at.sidebar.warning[0].value == (
        f"Ollama at {app_env.url} has no model to chat with yet: pull one with `ollama pull llama3:8b`."
    )


def wait_for_reply(at: AppTest, chat_id: int) -> None:
    """Wait until the background reply in a chat, and what follows it, has finished."""
    assert resources.replies_service().settle(chat_id, timeout=20), "the reply did not finish"


LONG_REPLY = ("long " * 100).strip()


def send_a_long_one(at: AppTest, standin, text: str) -> None:
    """Send a message whose reply stalls after three words until the test resumes it: the page run ends meanwhile."""
    standin.stall_after = 3
    standin.reply = lambda messages: LONG_REPLY
    at.chat_input[0].set_value(text).run()
    assert resources.replies_service().live(at.session_state.chat_id) is not None
    at.chat_input[0].set_value(None)  # AppTest would otherwise submit the text again


def test_a_reply_keeps_being_written_after_the_page_run_ends(app_env):
    at = open_app()
    send_a_long_one(at, app_env, "take your time")
    app_env.resume()
    wait_for_reply(at, at.session_state.chat_id)
    at.run()
    user, assistant = at.chat_message
    assert user.text[0].value == "take your time"
    assert assistant.markdown[0].value == LONG_REPLY
    assert "interrupted" not in assistant.caption[0].value


def test_switching_chats_mid_reply_and_back_shows_the_finished_reply(app_env):
    at = send(open_app(), "first chat")
    first_id = at.session_state.chat_id
    send_a_long_one(at, app_env, "a long one")
    at.sidebar.button[0].click().run()  # New chat, while the reply is still being written
    assert at.chat_message.len == 0
    app_env.resume()
    wait_for_reply(at, first_id)
    at.button(key=f"chat-{first_id}").click().run()
    assert transcript(at)[-1] == ("assistant", LONG_REPLY)


def test_stop_keeps_the_text_marked_stopped(app_env):
    at = open_app()
    send_a_long_one(at, app_env, "a long one")
    resources.replies_service().stop(at.session_state.chat_id)  # the Stop button's callback
    wait_for_reply(at, at.session_state.chat_id)
    at.run()
    assert "stopped" in at.chat_message[1].caption[0].value
    assert not at.chat_input[0].disabled


def test_regenerate_replaces_the_last_reply(app_env):
    at = send(open_app(), "question")
    app_env.reply = lambda messages: "a better answer"
    at.button(key="regenerate").click().run()
    wait_for_reply(at, at.session_state.chat_id)
    assert transcript(at.run()) == [("user", "question"), ("assistant", "a better answer")]


def test_edit_and_resend_the_last_message(app_env):
    at = send(open_app(), "qestion with a typo")
    at.button(key="edit").click().run()
    at.text_area[0].set_value("question without a typo")
    next(b for b in at.form_submit_button if b.label == "Send").click().run()
    wait_for_reply(at, at.session_state.chat_id)
    assert transcript(at.run()) == [("user", "question without a typo"), ("assistant", "Echo: question without a typo")]


def test_only_the_latest_messages_render_until_asked(app_env, db_url):
    engine = store.open_engine(db_url)
    chat = store.create_chat(engine, model="llama3:8b")
    for index in range(60):
        store.add_message(engine, chat.id, "user", f"message {index}")
    at = open_app()
    assert at.chat_message.len == 10
    assert at.chat_message[0].text[0].value == "message 50"
    at.button(key="show-earlier").click().run()
    assert at.chat_message.len == 60


def test_chat_list_shows_twenty_then_more(app_env, db_url):
    engine = store.open_engine(db_url)
    for _ in range(25):
        store.create_chat(engine)
    at = open_app()
    assert len(chat_buttons(at)) == 20
    at.button(key="more-chats").click().run()
    assert len(chat_buttons(at)) == 25


def test_deep_link_opens_that_chat(app_env, db_url):
    engine = store.open_engine(db_url)
    wanted = store.create_chat(engine)
    store.add_message(engine, wanted.id, "user", "linked")
    store.create_chat(engine)
    at = AppTest.from_file(ENTRY, default_timeout=30)
    at.query_params["chat"] = str(wanted.id)
    at.run()
    assert transcript(at) == [("user", "linked")]


def test_a_reply_cut_at_the_length_limit_says_so(app_env, db_url):
    at = send(open_app(), "hello")
    store.update_chat(store.open_engine(db_url), at.session_state.chat_id, options={"num_predict": 1})
    send(at, "count to ten")
    assert at.chat_message[3].markdown[0].value.strip() == "Echo:"
    assert "cut off at the length limit" in at.chat_message[3].caption[0].value


def test_a_link_to_a_deleted_chat_says_so_and_opens_no_other(app_env, db_url):
    engine = store.open_engine(db_url)
    store.add_message(engine, store.create_chat(engine).id, "user", "still here")
    gone = store.create_chat(engine)
    store.delete_chat(engine, gone.id)
    at = AppTest.from_file(ENTRY, default_timeout=30)
    at.query_params["chat"] = str(gone.id)
    at.session_state["chat-settings"] = True  # open: were a chat selected, its Delete would show
    at.run()
    assert f"Chat {gone.id} no longer exists" in at.warning[0].value
    assert at.session_state.chat_id is None and transcript(at) == []
    assert "delete" not in [button.key for button in at.button] and len(chat_buttons(at)) == 1
    assert "chat" not in at.query_params


def test_stored_partial_and_error_replies_render_as_such(app_env, db_url):
    engine = store.open_engine(db_url)
    chat = store.create_chat(engine)
    store.add_message(engine, chat.id, "user", "q")
    store.add_message(engine, chat.id, "assistant", "half an ans", status=Status.PARTIAL, model="llama3:8b")
    store.add_message(engine, chat.id, "assistant", "", status=Status.ERROR, error="Ollama went away")
    at = open_app()
    assert "interrupted" in at.chat_message[1].caption[0].value
    assert at.chat_message[2].error[0].value == "Ollama went away"


def test_html_in_messages_is_not_rendered_as_html(app_env):
    at = send(open_app(), "<script>alert(1)</script><b>bold</b>")
    assert all(not markdown.proto.allow_html for markdown in at.markdown)


def test_search_opens_the_chat_at_the_matching_message(app_env, db_url):
    engine = store.open_engine(db_url)
    wanted = store.create_chat(engine)
    for index in range(80):
        store.add_message(engine, wanted.id, "user", "the needle is here" if index == 5 else f"filler {index}")
    store.create_chat(engine)
    at = open_app()
    at.sidebar.text_input(key="search").set_value("needle").run()
    hits = [button for button in at.sidebar.button if button.key and button.key.startswith("hit-")]
    assert len(hits) == 1 and "**needle**" in hits[0].label
    hits[0].click().run()
    assert at.session_state.chat_id == wanted.id
    shown = [message.text[0].value for message in at.chat_message]
    assert shown[5] == "the needle is here" and len(shown) == 5 + 1 + 4  # the messages around it, not all 80
    assert at.button(key="show-latest").label == "Show the latest messages (70 more)"
    at.button(key="show-latest").click().run()
    assert [message.text[0].value for message in at.chat_message][-1] == "filler 79"


def test_search_without_results_says_so(app_env):
    at = open_app()
    at.sidebar.text_input(key="search").set_value("nothing like this").run()
    assert at.sidebar.caption[-1].value == "No chat matches."


EXPORT_PAGE = "pages/export.py"  # relative to the entry script


def open_export_page() -> AppTest:
    """A new session on the app, switched to the Export page."""
    at = open_app().switch_page(EXPORT_PAGE).run()
    assert not at.exception
    return at


def download_labels(at: AppTest) -> list[str]:
    return [button.label for button in at.main.get("download_button")]


def test_export_page_offers_the_current_chat_then_any_choice(app_env, sample_chats):
    at = open_export_page()
    assert at.multiselect[0].value == [sample_chats[1]]  # the current chat: the latest active
    assert download_labels(at) == [f"Download recipes-{utc_now():%Y-%m-%d}.md"]
    at.multiselect[0].set_value(sample_chats).run()
    at.radio[0].set_value(Format.TEXT).run()
    assert download_labels(at) == [f"Download chatcore-export-{utc_now():%Y-%m-%d}.zip"]
    at.radio[0].set_value(Format.JSON).run()
    assert download_labels(at) == [f"Download chatcore-export-{utc_now():%Y-%m-%d}.json"]
    at.multiselect[0].set_value([]).run()
    assert download_labels(at) == []


def test_chats_of_the_same_title_are_told_apart_and_chosen_each_on_its_own(app_env, engine):
    started = (on_the_sample_day(14, 5), on_the_sample_day(14, 5), on_the_sample_day(16, 30))
    first, second, _ = (add_chat(engine, [], created_at=moment) for moment in started)
    at = open_export_page()
    at.multiselect[0].set_value([first, second]).run()
    assert at.multiselect[0].value == [first, second]
    assert download_labels(at) == [f"Download chatcore-export-{utc_now():%Y-%m-%d}.zip"]
    assert at.multiselect[0].options == ["New chat · 1 Mar 2025 16:30", "New chat · 1 Mar 2025 14:05 (2)",
                                         "New chat · 1 Mar 2025 14:05"]  # fmt: skip


def test_a_chat_chosen_for_export_stays_chosen_when_its_title_changes_and_goes_once_deleted(
    app_env, engine, sample_chats
):
    at = open_export_page()
    at.multiselect[0].set_value(sample_chats).run()
    store.update_chat(engine, sample_chats[0], title="Lisbon, written by the model")  # as a title written meanwhile
    at.run()
    assert at.multiselect[0].value == sample_chats
    assert "Lisbon, written by the model · " in at.multiselect[0].options[1]
    store.delete_chat(engine, sample_chats[1])
    at.run()
    assert not at.exception and at.multiselect[0].value == [sample_chats[0]]
    assert download_labels(at) == [f"Download lisbon-written-by-the-model-{utc_now():%Y-%m-%d}.md"]


def test_export_page_without_a_current_chat_chooses_none(app_env, sample_chats):
    at = open_app()
    at.sidebar.button[0].click().run()  # New chat
    at.switch_page(EXPORT_PAGE).run()
    assert at.multiselect[0].value == [] and download_labels(at) == []
    assert "Choose at least one chat." in [caption.value for caption in at.main.caption]


def test_export_page_without_chats_says_so(app_env):
    assert "No chats yet" in open_export_page().info[0].value


def test_sidebar_exports_the_current_chat_as_markdown(app_env, sample_chats):
    at = open_settings(open_app())
    assert [button.label for button in at.sidebar.get("download_button")] == ["Export this chat"]


def test_import_adds_the_missing_chats_and_lists_them(app_env, engine, sample_chats):
    exported = plan_export(engine, None, Format.JSON).build()
    store.delete_chat(engine, sample_chats[1])
    at = open_export_page()
    at.file_uploader[0].set_value(("backup.json", exported, "application/json")).run()
    assert at.success[0].value == "Imported 1 chat: “Recipes”. Skipped 1 chat already here: “Trip to <b>Lisbon</b>”."
    assert chat_buttons(at) == ["Recipes", "Trip to <b>Lisbon</b>"]
    at.run()
    assert at.success.len == 1 and store.count_chats(engine) == 2  # shown again, not imported again


def test_import_of_a_broken_file_says_what_is_wrong_and_adds_nothing(app_env, engine):
    at = open_export_page()
    at.file_uploader[0].set_value(("backup.json", b'{"format_version": 1, "chats": [', "application/json")).run()
    assert at.error[0].value.startswith("The file is cut short: it ends before the export does.")
    assert store.count_chats(engine) == 0


def test_every_page_has_the_sidebar_and_the_search_goes_along(app_env, sample_chats):
    at = open_app()
    at.sidebar.text_input(key="search").set_value("Soup").run()
    for page in (EXPORT_PAGE, "pages/documents.py", "streamlit_app.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert [link.label for link in at.sidebar.get("page_link")] == ["Chat", "Documents", "Export and import"]
        assert at.sidebar.text_input(key="search").value == "Soup"
        hits = [button.label for button in at.sidebar.button if button.key and button.key.startswith("hit-")]
        assert len(hits) == 1 and hits[0].startswith("Recipes · **Soup**")  # PostgreSQL's snippet drops the "?"


def test_a_chat_chosen_on_the_export_page_opens_on_the_chat_page(app_env, sample_chats):
    at = open_export_page()
    at.button(key=f"chat-{sample_chats[0]}").click().run()
    assert transcript(at)[0] == ("user", "Where should I eat?")


def context_caption(at: AppTest) -> str:
    return next(caption.value for caption in at.caption if caption.value.startswith("context:"))


def dividers(at: AppTest) -> list[str]:
    return [caption.value for caption in at.caption if caption.value.startswith("⋯")]


def test_the_caption_says_what_the_next_request_carries(app_env):
    at = send(open_app(), "hello")
    # "hello" measured at 6 tokens (the prompt of the stand-in), the reply at 2 (its eval_count)
    assert context_caption(at) == "context: 2 of 2 messages · 8 / 3,072 tokens · memory on"
    assert dividers(at) == []


def test_messages_outside_the_window_are_marked(app_env, db_url):
    engine = store.open_engine(db_url)
    chat = store.create_chat(engine, model="llama3:8b", options={"num_ctx": 2048})
    fill_chat(engine, chat.id, 60)  # about 43 tokens a message: 34 fit in 1,536
    at = open_app()
    assert dividers(at) == []  # the newest 20 are all sent
    at.button(key="show-earlier").click().run()
    assert context_caption(at).startswith("context: 34 of 60 messages · ")
    assert dividers(at) == ["⋯ earlier messages are not sent to the model ⋯"]
    shown = list(at.main.children[0].children.values())  # the history, in page order
    divider_at = next(index for index, element in enumerate(shown) if element.type == "caption")
    assert shown[divider_at + 1].text[0].value.startswith("26: ")  # the oldest of the 34
    newest = store.recent_messages(engine, chat.id, limit=1)[0]
    store.save_memory(engine, chat.id, expected_until=None, memory="Questions about trams.", until=newest.id)
    at.run()
    assert dividers(at) == ["⋯ earlier messages are summarised ⋯"]


def test_memory_can_be_switched_off_per_chat(app_env):
    at = send(open_app(), "hello")
    save_settings(at, Memory=False)
    assert context_caption(at).endswith("· memory off")
    assert not store.get_chat(resources.engine(), at.session_state.chat_id).memory_enabled


def test_a_message_too_long_for_the_context_is_refused_and_kept(app_env):
    at = send(open_app(), "x" * 20_000)
    assert "Not sent: your message is about 5,004 tokens" in at.error[0].value
    assert app_env.chat_requests == []
    at.run()
    assert transcript(at) == [("user", "x" * 20_000)]
    assert "Your message is saved" in at.chat_message[1].error[0].value


def test_a_message_too_long_after_a_turn_is_shown_with_its_error_and_edit_acts_on_it(app_env):
    at = send(open_app(), "hello")
    at.chat_input[0].set_value("x" * 20_000).run()  # refused in the run that sends it
    assert transcript(at)[2:] == [("user", "x" * 20_000)]
    assert "Your message is saved" in at.chat_message[3].error[0].value
    at.button(key="edit").click().run()
    assert at.text_area[0].label == "Edit your last message" and at.text_area[0].value == "x" * 20_000
    at.text_area[0].set_value("short now")
    next(button for button in at.form_submit_button if button.label == "Send").click().run()
    wait_for_reply(at, at.session_state.chat_id)
    at.run()
    assert transcript(at) == [
        ("user", "hello"),
        ("assistant", "Echo: hello"),
        ("user", "short now"),
        ("assistant", "Echo: short now"),
    ]


def test_chatting_through_several_ollama_hosts(app_env, monkeypatch):
    with StandinOllama(models={"mistral:7b": "ok"}) as second:
        monkeypatch.setenv("OLLAMA_HOSTS", f"{app_env.url},{second.url}")
        at = open_app()
        assert at.sidebar.selectbox[0].options == ["llama3:8b", "qwen2.5:0.5b", "mistral:7b"]
        at.sidebar.selectbox[0].set_value("mistral:7b").run()
        send(at, "over there")
    assert transcript(at)[-1] == ("assistant", "Echo: over there")
    assert [request["model"] for request in second.chat_requests] == ["mistral:7b"]


DOCUMENTS_PAGE = "pages/documents.py"  # relative to the entry script
CHAT_PAGE = "streamlit_app.py"  # the entry script is the chat page


def open_documents_page(at: AppTest) -> AppTest:
    """Switch a session to the Documents page."""
    at.switch_page(DOCUMENTS_PAGE).run()
    assert not at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="document-files").set_value([(name, data, "application/octet-stream") for name, data in files])
    at.run()
    assert not at.exception
    return at


def test_a_pdf_added_to_the_chat_is_cited_with_its_page_under_sources(app_env, engine):
    at = open_documents_page(send(open_app(), "hello"))
    upload(at, ("google-doc-document.pdf", sample("google-doc-document.pdf")))
    assert at.success[0].value.startswith("Added google-doc-document.pdf: PDF · 1 page · 80.1KB · ")
    assert at.status[0].label == "Done"
    assert [text.value for text in at.main.text] == ["google-doc-document.pdf"]
    send(at.switch_page(CHAT_PAGE).run(), "What is better than ugly?")
    system = app_env.chat_requests[-1]["messages"][0]
    assert "[1] google-doc-document.pdf, page 1\nExample document\nBeautiful is better than ugly." in system["content"]
    sources = at.chat_message[-1].expander[0]
    assert sources.label == "Sources"
    assert as_typed(sources.caption[0].value) == "[1] google-doc-document.pdf, page 1"
    assert "Beautiful is better than ugly." in sources.text[0].value
    assert at.chat_message[1].expander.len == 0  # the first reply was given no documents


def test_deleting_a_document_asks_first_and_the_replies_that_cited_it_keep_its_passages(app_env, engine):
    at = open_documents_page(send(open_app(), "hello"))
    upload(at, ("menu.md", b"# Menu\n\nThe soup of the day is lentils."))
    send(at.switch_page(CHAT_PAGE).run(), "What is the soup of the day?")
    [document] = store.list_documents(engine, at.session_state.chat_id)
    open_documents_page(at)
    at.button(key=f"delete-{document.id}").click().run()
    assert "keep the passages they were given, marked “document deleted”" in at.warning[0].value
    at.button(key=f"delete-no-{document.id}").click().run()
    assert at.warning.len == 0 and len(store.list_documents(engine, at.session_state.chat_id)) == 1
    at.button(key=f"delete-{document.id}").click().run()
    at.button(key=f"delete-yes-{document.id}").click().run()
    assert store.list_documents(engine, at.session_state.chat_id) == []
    at.switch_page(CHAT_PAGE).run()
    sources = at.chat_message[-1].expander[0]
    assert sources.caption[0].value == escape_markdown("[1] menu.md, section 1 (document deleted)")
    assert "The soup of the day is lentils." in sources.text[0].value


def greeting(at: AppTest) -> list[str]:
    """What the chat page says above the input while the chat has no messages."""
    return [element.value for element in at.main if element.type in ("markdown", "caption")]


def test_a_file_added_on_the_documents_page_of_a_new_chat_starts_that_chat_named_after_it(app_env, engine):
    at = open_documents_page(open_app())
    assert at.radio(key="document-target").options == ["A new chat", "The library (for any chat)"]
    upload(at, ("menu.md", b"# Menu\n\nThe soup of the day is lentils."))
    chat_id = at.session_state.chat_id
    assert chat_id is not None and [d.name for d in store.list_documents(engine, chat_id)] == ["menu.md"]
    assert chat_buttons(at) == ["menu.md"]
    at.switch_page(CHAT_PAGE).run()
    assert as_typed(" ".join(greeting(at))).startswith(
        "#### What's on your mind? Ask about menu.md, or anything else. Everything stays on this computer"
    )
    send(at, "What is the soup of the day?")
    assert "[1] menu.md, section 1" in app_env.chat_requests[-1]["messages"][0]["content"]
    assert chat_buttons(at) == ["menu.md"]  # its model may title it better after the first reply (titles are off here)
    assert "What's on your mind?" not in " ".join(greeting(at))


def test_a_chat_left_empty_by_a_refused_file_is_named_after_the_first_file_added_to_it(app_env, engine):
    at = open_documents_page(open_app())
    upload(at, ("notes.pdf", b"not a pdf"))
    assert chat_buttons(at) == ["New chat"]
    upload(at, ("notes.pdf", b"not a pdf"), ("<b>menu</b>.md", b"# Menu\n\nLentils."), ("tram.md", b"# Tram\n\n9."))
    assert chat_buttons(at) == ["<b>menu</b>.md"]
    at.switch_page(CHAT_PAGE).run()
    assert "Ask about <b>menu</b>.md and tram.md, or anything else." in as_typed(" ".join(greeting(at)))


def test_several_files_at_once_each_say_what_happened_and_bad_ones_add_nothing(app_env, engine):
    at = open_documents_page(send(open_app(), "hello"))
    good = ("<b>notes</b>.md", b"# Notes\n\nThe tram leaves at nine.")
    upload(at, good, ("fake.pdf", b"not a pdf"), ("empty.txt", b""))
    assert [message.value for message in at.success] == ["Added <b>notes</b>.md: MD · 1 section · 33.0B · 1 passage."]
    assert [message.value for message in at.error] == [
        "fake.pdf is not a PDF file, whatever its name says.",
        "empty.txt is empty.",
    ]
    assert [document.name for document in store.list_documents(engine, at.session_state.chat_id)] == [good[0]]
    at.run()
    assert at.success.len == 1 and len(store.list_documents(engine, at.session_state.chat_id)) == 1


def test_library_documents_are_attached_detached_and_deleted(app_env, engine):
    at = open_documents_page(send(open_app(), "hello"))
    at.radio(key="document-target").set_value("library").run()
    upload(at, ("menu.txt", b"Soup of the day: lentils."))
    [document] = store.list_documents(engine, None)
    assert store.list_documents(engine, at.session_state.chat_id) == []
    at.button(key=f"attach-{document.id}").click().run()
    assert [d.id for d in store.list_documents(engine, at.session_state.chat_id)] == [document.id]
    at.button(key=f"detach-{document.id}").click().run()
    assert store.list_documents(engine, at.session_state.chat_id) == []
    at.button(key=f"delete-{document.id}").click().run()
    at.button(key=f"delete-yes-{document.id}").click().run()
    assert store.list_documents(engine, None) == []
    assert at.main.caption[-1].value == "No other documents in the library."


def test_files_sent_with_a_message_are_added_to_the_chat_and_used(app_env, engine):
    at = open_app()
    at.chat_input[0].upload("google-doc-document.pdf", sample("google-doc-document.pdf"), "application/pdf")
    at.chat_input[0].set_value("What is better than ugly?").run()
    assert [toast.value for toast in at.toast] == ["Added google-doc-document.pdf: PDF · 1 page · 80.1KB · 2 passages."]
    wait_for_reply(at, at.session_state.chat_id)
    assert "[1] google-doc-document.pdf, page 1" in app_env.chat_requests[-1]["messages"][0]["content"]
    assert [d.name for d in store.list_documents(engine, at.session_state.chat_id)] == ["google-doc-document.pdf"]


def test_a_bad_file_sent_alone_says_why_and_sends_nothing(app_env, engine):
    at = open_app()
    at.chat_input[0].upload("notes.pdf", b"not a pdf at all", "application/pdf")
    at.chat_input[0].set_value("").run()
    assert not at.exception
    assert [toast.value for toast in at.toast] == ["notes.pdf is not a PDF file, whatever its name says."]
    assert app_env.chat_requests == [] and store.list_documents(engine, None) == []


def test_documents_page_shows_the_summary_written_in_the_background_and_chat_uses_it(app_env, engine, monkeypatch):
    monkeypatch.setenv("CHATCORE_SUMMARIES", "1")
    at = open_documents_page(send(open_app(), "hello"))
    upload(at, ("notes.md", b"# Notes\n\nThe tram leaves at nine."))
    at.run()
    assert not at.exception
    resources.document_worker().join()
    at.run()
    summary = at.main.expander[0]
    assert summary.label == "Summary"
    assert summary.markdown[0].value.startswith("Echo: Summarise the document notes.md below")
    assert summary.caption[0].value == "Written by llama3:8b."
    send(at.switch_page(CHAT_PAGE).run(), "Summarise this document, please.")
    system = app_env.chat_requests[-1]["messages"][0]["content"]
    assert "Summary of notes.md:\nEcho: Summarise the document notes.md below" in system


def test_documents_page_says_the_demo_model_writes_no_summary(app_env, engine, monkeypatch):
    monkeypatch.setenv("CHATCORE_BACKEND", "embedded")
    monkeypatch.setenv("CHATCORE_SUMMARIES", "1")
    at = open_documents_page(open_app())
    at.radio(key="document-target").set_value("library").run()
    upload(at, ("notes.md", b"# Notes\n\nThe tram leaves at nine."))
    assert at.main.expander.len == 0
    assert "the built-in demo model cannot write one" in at.main.caption[-1].value


# {tmp} is this test's folder, which holds notes.json, a file that is not a database.
@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"CHATCORE_DB_URL": "sqlite:///{tmp}/notes.json"},
            "Cannot open the SQLite database {tmp}/notes.json: the file is not a database. "
            "Check the path, or set CHATCORE_DB_URL to another file.",
            id="not a database",
        ),
        pytest.param(
            {"CHATCORE_DB_URL": None, "CHATCORE_DATA_DIR": "/proc/chatcore"},
            "Cannot open the SQLite database /proc/chatcore/chatcore.db: its folder /proc/chatcore cannot be created "
            "(nothing can be created there). Create it yourself, or set CHATCORE_DATA_DIR to another folder "
            "(or CHATCORE_DB_URL to another database).",
            id="data folder cannot be created",
        ),
        pytest.param(
            {"CHATCORE_DB_URL": "postgresql+psycopg://chatcore:s3cret@127.0.0.1:9/chats"},
            "Cannot open the PostgreSQL database “chats” at 127.0.0.1:9: no PostgreSQL server answers there. "
            "Start PostgreSQL, or check the host and port in CHATCORE_DB_URL.",
            id="PostgreSQL not reachable",
        ),
        pytest.param(
            {"CHATCORE_NUM_CTX": "8k"},
            "The setting CHATCORE_NUM_CTX is “8k”, but must be a whole number of tokens up to 1048576, such as 8192. "
            "Change it, or remove it to use 4096.",
            id="a setting",
        ),
    ],
)
def test_a_database_or_setting_that_cannot_be_used_is_said_on_every_page_until_it_can(
    app_env, db_url, tmp_path, monkeypatch, env, message
):
    (tmp_path / "notes.json").write_text('{"chats": []}')
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value.format(tmp=tmp_path))
    at = AppTest.from_file(ENTRY, default_timeout=30)
    for page in ("streamlit_app.py", DOCUMENTS_PAGE, EXPORT_PAGE):
        at.switch_page(page).run()
        assert not at.exception
        assert [as_typed(error.value) for error in at.error] == [message.format(tmp=tmp_path)]
        assert (at.chat_input.len, at.sidebar.button.len, at.file_uploader.len) == (0, 0, 0)  # the page stopped
    for name in env:  # as once PostgreSQL is started, say
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATCORE_DB_URL", db_url)
    at.switch_page("streamlit_app.py").run()
    assert not at.exception and not at.error
    assert at.chat_input.len == 1
