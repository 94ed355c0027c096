"""The UI through AppTest: sidebar, chat page, streaming, errors, against the stand-in Ollama."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from chatcore import store
from chatcore.export import Format, plan_export
from chatcore.models import Status, utc_now

ENTRY = "app_entry.py"


@pytest.fixture
def app_env(standin, db_url, monkeypatch):
    """Environment for the app: a fresh database and the stand-in Ollama."""
    monkeypatch.setenv("CHATCORE_DB_URL", db_url)
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    monkeypatch.delenv("CHATCORE_BACKEND", raising=False)
    st.cache_resource.clear()
    yield standin
    st.cache_resource.clear()


def open_app() -> AppTest:
    """A new browser session on the app, after its first run."""
    at = AppTest.from_file(ENTRY, default_timeout=30).run()
    assert not at.exception
    return at


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception
    return at


def chat_buttons(at: AppTest) -> list[str]:
    return [button.label for button in at.sidebar.button if button.key and button.key.startswith("chat-")]


def transcript(at: AppTest) -> list[tuple[str, str]]:
    return [(message.name, message.markdown[0].value) for message in at.chat_message if message.markdown]


def test_first_visit_shows_an_empty_chat_with_a_stop_mode_input(app_env):
    at = open_app()
    assert at.chat_message.len == 0
    assert at.chat_input[0].proto.submit_mode == 2  # "stop": the send button stops a running reply
    assert not at.chat_input[0].disabled
    assert chat_buttons(at) == []


def test_sending_streams_the_reply_and_saves_the_chat(app_env):
    at = send(open_app(), "hello")
    assert transcript(at) == [("user", "hello"), ("assistant", "Echo: hello")]
    caption = at.chat_message[1].caption[0].value
    assert "llama3:8b" in caption and "2 tokens" in caption and "tokens/s" in caption
    assert chat_buttons(at) == ["hello"]
    assert at.query_params["chat"] == str(at.session_state.chat_id)
    assert app_env.chat_requests[-1]["options"]["num_ctx"] == 4096


def test_a_new_session_finds_the_chat_again(app_env):
    send(open_app(), "remember this")
    at = open_app()
    assert transcript(at) == [("user", "remember this"), ("assistant", "Echo: remember this")]


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


def test_rename_chat(app_env):
    at = send(open_app(), "old name")
    chat_id = at.session_state.chat_id
    at.text_input(key=f"title-{chat_id}").set_value("Holiday plans").run()
    at.button(key="rename").click().run()
    assert chat_buttons(at) == ["Holiday plans"]


def test_delete_asks_first_and_cancel_keeps_the_chat(app_env):
    at = send(open_app(), "keep me")
    at.button(key="delete").click().run()
    assert "cannot be undone" in at.warning[0].value
    at.button(key="delete-no").click().run()
    assert chat_buttons(at) == ["keep me"]
    assert at.warning.len == 0


def test_delete_removes_the_chat_and_its_messages(app_env):
    at = send(open_app(), "short lived")
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
    assert "ollama pull llama3:8b" in at.chat_message[1].error[0].value


def test_ollama_down_falls_back_to_the_built_in_model(app_env, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    at = open_app()
    notice = at.sidebar.info[0].value
    assert "http://127.0.0.1:9 is not running" in notice and "ollama pull llama3:8b" in notice
    assert at.sidebar.selectbox[0].options == ["gemma-3-270m (built-in demo)"]


def test_ollama_required_but_down_disables_the_input(app_env, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("CHATCORE_BACKEND", "ollama")
    at = open_app()
    assert "Cannot reach Ollama at http://127.0.0.1:9" in at.sidebar.info[0].value
    assert at.chat_input[0].disabled


def test_interrupted_reply_keeps_its_text_and_says_so(app_env):
    app_env.token_delay = 0.05
    app_env.reply = lambda messages: "slow " * 200
    at = open_app()
    with pytest.raises(RuntimeError, match="timed out"):
        at.chat_input[0].set_value("take your time").run(timeout=3)
    at.chat_input[0].set_value(None).run()  # AppTest would otherwise submit the text again
    user, assistant = at.chat_message
    assert user.markdown[0].value == "take your time"
    assert assistant.markdown[0].value.startswith("slow slow")
    assert "interrupted" in assistant.caption[0].value


def test_only_the_latest_messages_render_until_asked(app_env, db_url):
    engine = store.open_engine(db_url)
    chat = store.create_chat(engine, model="llama3:8b")
    for index in range(60):
        store.add_message(engine, chat.id, "user", f"message {index}")
    at = open_app()
    assert at.chat_message.len == 50
    assert at.chat_message[0].markdown[0].value == "message 10"
    at.button(key="show-earlier").click().run()
    assert at.chat_message.len == 60


def test_chat_list_shows_fifty_then_more(app_env, db_url):
    engine = store.open_engine(db_url)
    for _ in range(55):
        store.create_chat(engine)
    at = open_app()
    assert len(chat_buttons(at)) == 50
    at.button(key="more-chats").click().run()
    assert len(chat_buttons(at)) == 55


def test_deep_link_opens_that_chat(app_env, db_url):
    engine = store.open_engine(db_url)
    wanted = store.create_chat(engine)
    store.add_message(engine, wanted.id, "user", "linked")
    store.create_chat(engine)
    at = AppTest.from_file(ENTRY, default_timeout=30)
    at.query_params["chat"] = str(wanted.id)
    at.run()
    assert transcript(at) == [("user", "linked")]


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


EXPORT_PAGE = "../pages/export.py"  # relative to app_entry.py, the script AppTest runs


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
    assert download_labels(at) == [f"Download Recipes-{sample_chats[1]}.md"]
    at.multiselect[0].set_value(["all"]).run()
    at.radio[0].set_value(Format.TEXT).run()
    assert download_labels(at) == [f"Download chatcore-export-{utc_now():%Y-%m-%d}.zip"]
    at.radio[0].set_value(Format.JSON).run()
    assert download_labels(at) == [f"Download chatcore-export-{utc_now():%Y-%m-%d}.json"]
    at.multiselect[0].set_value([]).run()
    assert download_labels(at) == []


def test_export_page_without_chats_says_so(app_env):
    assert "No chats yet" in open_export_page().info[0].value


def test_sidebar_exports_the_current_chat_as_markdown(app_env, sample_chats):
    at = open_app()
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
    assert "Invalid JSON: EOF while parsing" in at.error[0].value
    assert store.count_chats(engine) == 0


def test_a_chat_chosen_on_the_export_page_opens_on_the_chat_page(app_env, sample_chats):
    at = open_export_page()
    at.button(key=f"chat-{sample_chats[0]}").click().run()
    assert transcript(at)[0] == ("user", "Where should I eat?")
