"""StructuredChat over the real ChatOpenAI client, against the fake OpenAI server."""

from __future__ import annotations

import base64
import io
import socket

import pytest
from fake_openai import Delay, FakeOpenAI, Raw, Status
from PIL import Image
from pydantic import BaseModel

from arpo.config import Settings
from arpo.errors import LLMOutputError, LLMUnavailableError
from arpo.tools.chat import StructuredChat


class Caption(BaseModel):
    caption: str
    score: int


def make_chat(base_url: str, tmp_path, **overrides) -> StructuredChat:
    values = {
        "llm_base_url": base_url,
        "llm_api_key": "x",
        "llm_max_retries": 0,
        "llm_timeout_s": 1,
        "home": tmp_path,
    }
    settings = Settings(**{**values, **overrides})
    return StructuredChat.from_settings(settings)


@pytest.fixture
def chat(fake_openai, tmp_path) -> StructuredChat:
    return make_chat(fake_openai.base_url, tmp_path)


def ask(chat: StructuredChat) -> Caption:
    return chat.ask(Caption, [chat.user_message("describe the image")])


def test_from_settings_configures_the_client(chat, fake_openai):
    assert chat.endpoint == fake_openai.base_url
    assert chat.method == "function_calling"
    assert chat.name == "gpt-4o-mini"
    assert chat.model.max_retries == 0
    assert chat.model.request_timeout == 1


def test_ask_returns_the_pydantic_model(chat, fake_openai):
    fake_openai.reply({"caption": "a red fox", "score": 7})
    answer = ask(chat)
    assert answer == Caption(caption="a red fox", score=7)
    assert chat.calls == 1
    assert len(fake_openai.requests) == 1
    request = fake_openai.last_request
    assert request["model"] == "gpt-4o-mini"
    assert request["tools"][0]["function"]["name"] == "Caption"
    assert "describe the image" in FakeOpenAI.text_in(request)


@pytest.mark.parametrize(
    ("method", "response_type"), [("json_schema", "json_schema"), ("json_mode", "json_object")]
)
def test_json_methods_also_work(fake_openai, tmp_path, method, response_type):
    chat = make_chat(fake_openai.base_url, tmp_path, llm_structured_method=method)
    assert chat.method == method
    fake_openai.reply({"caption": "a lighthouse", "score": 3})
    assert ask(chat) == Caption(caption="a lighthouse", score=3)
    request = fake_openai.last_request
    assert request["response_format"]["type"] == response_type
    assert "tools" not in request


def test_user_message_sends_images_as_data_urls(chat, fake_openai):
    wide = Image.new("RGB", (1000, 500), (200, 10, 10))
    small = Image.new("RGB", (64, 32), (10, 200, 10))
    message = chat.user_message("compare these", [("Reference:", wide), ("Render:", small)])
    fake_openai.reply({"caption": "red", "score": 1})
    chat.ask(Caption, [message])
    request = fake_openai.last_request
    urls = FakeOpenAI.images_in(request)
    assert len(urls) == 2
    decoded = []
    for url in urls:
        assert url.startswith("data:image/png;base64,")
        data = base64.b64decode(url.removeprefix("data:image/png;base64,"))
        decoded.append(Image.open(io.BytesIO(data)).convert("RGB"))
    assert decoded[0].size == (768, 384)  # shrunk to image_max_side
    assert decoded[1].size == (64, 32)  # never upscaled
    assert decoded[0].getpixel((10, 10)) == (200, 10, 10)
    assert decoded[1].getpixel((10, 10)) == (10, 200, 10)
    # text first, then each label right before its image
    parts = request["messages"][-1]["content"]
    kinds = [p["type"] if p["type"] != "text" else p["text"] for p in parts]
    assert kinds == ["compare these", "Reference:", "image_url", "Render:", "image_url"]


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_malformed_twice_is_an_output_error(fake_openai, tmp_path, method):
    chat = make_chat(fake_openai.base_url, tmp_path, llm_structured_method=method)
    fake_openai.reply(Raw("not json"), Raw('{"caption": 3'))
    with pytest.raises(LLMOutputError) as info:
        ask(chat)
    message = str(info.value)
    assert "--strategy offline" in message
    assert "ARPO_LLM_STRUCTURED_METHOD" in message
    assert fake_openai.base_url in message
    assert "gpt-4o-mini" in message
    assert len(fake_openai.requests) == 2
    assert chat.calls == 2


def test_schema_mismatch_twice_is_an_output_error(chat, fake_openai):
    fake_openai.reply({"caption": "no score"}, {"score": "not a number"})
    with pytest.raises(LLMOutputError, match="--strategy offline"):
        ask(chat)
    assert len(fake_openai.requests) == 2


def test_malformed_once_then_good_succeeds(chat, fake_openai):
    fake_openai.reply(Raw("not json"), {"caption": "a fox", "score": 2})
    assert ask(chat) == Caption(caption="a fox", score=2)
    assert len(fake_openai.requests) == 2
    assert chat.calls == 2
    assert fake_openai.pending == 0


def test_prose_instead_of_tool_call_is_asked_again(chat, fake_openai):
    fake_openai.reply("Sure! It is a fox.", {"caption": "a fox", "score": 2})
    assert ask(chat) == Caption(caption="a fox", score=2)
    assert len(fake_openai.requests) == 2


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_connection_refused(tmp_path):
    url = closed_port_url()
    chat = make_chat(url, tmp_path)
    with pytest.raises(LLMUnavailableError) as info:
        ask(chat)
    message = str(info.value)
    assert message.startswith(f"cannot reach the LLM at {url}")
    assert "ARPO_LLM_BASE_URL" in message
    assert "--strategy offline" in message
    assert chat.calls == 1  # transport errors are not asked again


def test_timeout(fake_openai, tmp_path):
    chat = make_chat(fake_openai.base_url, tmp_path, llm_timeout_s=0.3)
    fake_openai.reply(Delay(3, {"caption": "late", "score": 1}))
    with pytest.raises(LLMUnavailableError) as info:
        ask(chat)
    message = str(info.value)
    assert message.startswith(f"the LLM at {fake_openai.base_url} did not answer in time")
    assert "ARPO_LLM_TIMEOUT_S" in message
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status(401, "bad key"), ["rejected the API key", "ARPO_LLM_API_KEY"]),
        (Status(404, "no such model"), ["does not know the model 'gpt-4o-mini'", "ARPO_LLM_MODEL"]),
        (Status(500, "boom inside"), ["returned HTTP 500", "boom inside", "--strategy offline"]),
        (Status(503, "overloaded"), ["returned HTTP 503", "overloaded"]),
    ],
    ids=["401", "404", "500", "503"],
)
def test_http_errors_are_unavailable_errors(chat, fake_openai, status, expected):
    fake_openai.reply(status)
    with pytest.raises(LLMUnavailableError) as info:
        ask(chat)
    message = str(info.value)
    assert f"the LLM at {fake_openai.base_url}" in message
    for part in expected:
        assert part in message
    assert len(fake_openai.requests) == 1  # not asked again
    assert "\n" not in message


def test_transport_error_messages_are_distinct(fake_openai, tmp_path):
    messages = set()
    for status in (Status(401), Status(404), Status(500)):
        fake_openai.reply(status)
        with pytest.raises(LLMUnavailableError) as info:
            ask(make_chat(fake_openai.base_url, tmp_path))
        messages.add(str(info.value).replace(fake_openai.base_url, "URL"))
    url = closed_port_url()
    with pytest.raises(LLMUnavailableError) as info:
        ask(make_chat(url, tmp_path))
    messages.add(str(info.value).replace(url, "URL"))
    assert len(messages) == 4


def test_unconfigured_endpoint_is_named_as_openai(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    chat = StructuredChat.from_settings(Settings(home=tmp_path))
    assert chat.endpoint == "the OpenAI API"
