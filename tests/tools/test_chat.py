"""StructuredChat over the real ChatOpenAI client, against the fake OpenAI server."""

from __future__ import annotations

import base64
import io
import json
import socket

import numpy as np
import pytest
from fake_openai import Delay, FakeOpenAI, Raw, Refuse, Status, ollama_like, rejecting_temperature
from PIL import Image
from pydantic import BaseModel

from arpo.config import Settings
from arpo.errors import LLMOutputError, LLMRequestError, LLMUnavailableError
from arpo.tools import chat as chat_module
from arpo.tools.chat import StructuredChat
from arpo.tools.images import image_to_data_url


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


def jpeg_images(request: dict) -> list[Image.Image]:
    """The images of a request, each checked to be a JPEG data URL, decoded."""
    images = []
    for url in FakeOpenAI.images_in(request):
        assert url.startswith("data:image/jpeg;base64,"), url[:40]
        data = base64.b64decode(url.removeprefix("data:image/jpeg;base64,"))
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        images.append(image.convert("RGB"))
    return images


def near(pixel: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return max(abs(a - b) for a, b in zip(pixel, expected, strict=True)) <= 6


def test_user_message_sends_images_as_jpeg_data_urls(chat, fake_openai):
    wide = Image.new("RGB", (1000, 500), (200, 10, 10))
    small = Image.new("RGBA", (64, 32), (10, 200, 10, 255))
    message = chat.user_message("compare these", [("Reference:", wide), ("Render:", small)])
    fake_openai.reply({"caption": "red", "score": 1})
    chat.ask(Caption, [message])
    request = fake_openai.last_request
    reference, render = jpeg_images(request)
    assert reference.size == (768, 384)  # shrunk to ARPO_LLM_IMAGE_MAX_SIDE, aspect kept
    assert render.size == (64, 32)  # never upscaled
    assert near(reference.getpixel((10, 10)), (200, 10, 10))
    assert near(render.getpixel((10, 10)), (10, 200, 10))
    # text first, then each label right before its image
    parts = request["messages"][-1]["content"]
    kinds = [p["type"] if p["type"] != "text" else p["text"] for p in parts]
    assert kinds == ["compare these", "Reference:", "image_url", "Render:", "image_url"]


def test_image_size_is_a_setting_and_jpeg_is_far_smaller_than_png(fake_openai, tmp_path):
    rng = np.random.default_rng(0)  # a photo-like image: smooth gradients plus grain
    ramp = np.linspace(0, 255, 1024)[None, :, None] * np.ones((1024, 1, 3))
    noisy = np.clip(ramp + rng.normal(0, 12, ramp.shape), 0, 255).astype(np.uint8)
    photo = Image.fromarray(noisy)
    chat = make_chat(fake_openai.base_url, tmp_path, llm_image_max_side=512)
    fake_openai.reply({"caption": "a ramp", "score": 1})
    chat.ask(Caption, [chat.user_message("look", [("Image:", photo)])])
    [url] = FakeOpenAI.images_in(fake_openai.last_request)
    [sent] = jpeg_images(fake_openai.last_request)
    assert sent.size == (512, 512)
    png = image_to_data_url(photo, fmt="PNG", max_side=512)
    assert len(url) < len(png) / 2, (len(url), len(png))


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
        (Status(401, "bad key"), ["rejected the API key", "ARPO_LLM_API_KEY", "bad key"]),
        (Status(403, "no access"), ["refused this API key access", "ARPO_LLM_MODEL"]),
        (
            Status(404, "no such model"),
            ["does not know the model 'gpt-4o-mini'", "ARPO_LLM_MODEL", "ARPO_LLM_BASE_URL"],
        ),
        (
            Status(400, "does not support tools"),
            ["does not support function calling", "ARPO_LLM_STRUCTURED_METHOD=json_schema"],
        ),
        (Status(413, "request entity too large"), ["too large for it", "ARPO_LLM_IMAGE_MAX_SIDE"]),
        (
            Status(400, "prompt is too long", error_code="context_length_exceeded"),
            ["too large for it", "ARPO_LLM_IMAGE_MAX_SIDE (now 768)"],
        ),
        (
            Status(400, "Invalid content type. image_url is only supported by certain models."),
            ["does not take images", "vision model"],
        ),
        (Status(422, "unprocessable thing"), ["refused the request", "would not help"]),
        (
            Status(429, "quota", error_code="insufficient_quota"),
            ["no quota left", "ARPO_LLM_API_KEY"],
        ),
    ],
    ids=[
        "401",
        "403",
        "404",
        "400-tools",
        "413",
        "400-context",
        "400-image",
        "422",
        "429-quota",
    ],
)
def test_refused_requests_say_what_to_change(chat, fake_openai, status, expected):
    fake_openai.reply(status)
    with pytest.raises(LLMRequestError) as info:
        ask(chat)
    message = str(info.value)
    assert message.startswith("the LLM ")
    assert fake_openai.base_url in message
    assert f"HTTP {status.code}: {status.message}" in message
    for part in expected:
        assert part in message
    assert "try again later" not in message.lower()
    assert len(fake_openai.requests) == 1  # not asked again
    assert "\n" not in message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status(429, "slow down"), ["limiting the request rate", "ARPO_LLM_MAX_RETRIES"]),
        (Status(500, "boom inside"), ["returned HTTP 500", "boom inside", "--strategy offline"]),
        (Status(503, "overloaded"), ["returned HTTP 503", "overloaded"]),
    ],
    ids=["429", "500", "503"],
)
def test_passing_troubles_say_try_again_later(chat, fake_openai, status, expected):
    fake_openai.reply(status)
    with pytest.raises(LLMUnavailableError) as info:
        ask(chat)
    assert not isinstance(info.value, LLMRequestError)
    message = str(info.value)
    assert f"the LLM at {fake_openai.base_url}" in message
    assert "Try again later" in message
    for part in expected:
        assert part in message
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    ("method", "refused", "fix"),
    [
        ("json_schema", "json_schema", "ARPO_LLM_STRUCTURED_METHOD=json_mode"),
        ("json_mode", "json_object", "ARPO_LLM_STRUCTURED_METHOD=json_schema"),
    ],
)
def test_a_refused_json_method_names_the_others(fake_openai, tmp_path, method, refused, fix):
    fake_openai.refuses = [Refuse(refused, f"response_format {refused} is not supported")]
    with pytest.raises(LLMRequestError) as info:
        ask(make_chat(fake_openai.base_url, tmp_path, llm_structured_method=method))
    assert f"does not support {method} structured output" in str(info.value)
    assert fix in str(info.value)


def test_ollama_without_tools_gets_the_method_to_set(tmp_path):
    with ollama_like() as server:
        chat = make_chat(server.base_url, tmp_path, llm_model="llava:13b")
        with pytest.raises(LLMRequestError) as info:
            ask(chat)
    message = str(info.value)
    assert message == (
        f"the LLM 'llava:13b' at {server.base_url} does not support function calling (tools) "
        "(HTTP 400: registry.ollama.ai/library/llava:13b does not support tools). Set "
        "ARPO_LLM_STRUCTURED_METHOD=json_schema (or json_mode), or use a model that supports "
        "function_calling; `arpo doctor` tries each method against the server."
    )


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_ollama_answers_the_json_methods(tmp_path, method):
    with ollama_like(json_schema=method == "json_schema") as server:
        chat = make_chat(
            server.base_url, tmp_path, llm_model="llava:13b", llm_structured_method=method
        )
        server.reply({"caption": "a lighthouse", "score": 3})
        assert ask(chat) == Caption(caption="a lighthouse", score=3)
    assert server.schema_name(server.last_request) == "Caption"


def test_json_mode_states_the_schema_in_the_messages(fake_openai, tmp_path):
    chat = make_chat(fake_openai.base_url, tmp_path, llm_structured_method="json_mode")
    fake_openai.reply({"caption": "a fox", "score": 2})
    ask(chat)
    system, user = fake_openai.last_request["messages"]
    assert system["role"] == "system"
    assert "JSON" in system["content"]  # OpenAI's json mode refuses messages without the word
    assert json.dumps(Caption.model_json_schema(), separators=(",", ":")) in system["content"]
    assert user["content"][0]["text"] == "describe the image"


def test_json_schema_sends_the_messages_as_they_are(fake_openai, tmp_path):
    chat = make_chat(fake_openai.base_url, tmp_path, llm_structured_method="json_schema")
    fake_openai.reply({"caption": "a fox", "score": 2})
    ask(chat)
    [user] = fake_openai.last_request["messages"]
    assert user["role"] == "user"


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


# --------------------------------------------------------------------------- temperature


@pytest.fixture
def no_refusals_yet(monkeypatch):
    """A process that has seen no server refuse the temperature."""
    monkeypatch.setattr(chat_module, "_REFUSED_TEMPERATURE", set())


def test_the_temperature_setting_is_sent(fake_openai, tmp_path, no_refusals_yet):
    fake_openai.reply({"caption": "a", "score": 1}, {"caption": "b", "score": 2})
    ask(make_chat(fake_openai.base_url, tmp_path))
    assert fake_openai.requests[0]["temperature"] == 0.7  # the documented default
    ask(make_chat(fake_openai.base_url, tmp_path, llm_temperature=0.2))
    assert fake_openai.requests[1]["temperature"] == 0.2


@pytest.mark.parametrize("value", ["none", "None", ""])
def test_temperature_none_leaves_it_out(fake_openai, tmp_path, monkeypatch, value):
    monkeypatch.setenv("ARPO_LLM_TEMPERATURE", value)
    chat = StructuredChat.from_settings(
        Settings(home=tmp_path, llm_base_url=fake_openai.base_url, llm_api_key="x")
    )
    assert chat.temperature is None
    fake_openai.reply({"caption": "a", "score": 1})
    ask(chat)
    assert "temperature" not in fake_openai.last_request


@pytest.mark.parametrize("model", ["o3-mini", "o1", "o4-mini", "gpt-5", "openai/gpt-5-mini"])
def test_reasoning_models_get_no_temperature(fake_openai, tmp_path, model):
    chat = make_chat(fake_openai.base_url, tmp_path, llm_model=model)
    fake_openai.reply({"caption": "a", "score": 1})
    ask(chat)
    assert "temperature" not in fake_openai.last_request
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("model", ["gpt-5-chat-latest", "gpt-4o", "llava:13b", "omni-7b"])
def test_other_models_get_the_temperature(model):
    assert chat_module.sends_temperature(model, "anywhere")


def test_a_refused_temperature_is_left_out_and_remembered(tmp_path, no_refusals_yet, caplog):
    with rejecting_temperature(model="mystery-reasoner") as server:
        chat = make_chat(server.base_url, tmp_path, llm_model="mystery-reasoner")
        server.reply({"caption": "a fox", "score": 2})
        assert ask(chat) == Caption(caption="a fox", score=2)
        first, second = server.requests
        assert first["temperature"] == 0.7
        assert "temperature" not in second
        assert chat.calls == 2 and chat.temperature is None
        assert "refused temperature 0.7" in caplog.text
        # the rest of the process sends none to that model there: one request each
        later = make_chat(server.base_url, tmp_path, llm_model="mystery-reasoner")
        server.reply({"caption": "a cat", "score": 1})
        assert ask(later) == Caption(caption="a cat", score=1)
        assert len(server.requests) == 3
        assert "temperature" not in server.last_request
    assert chat_module.sends_temperature("other-model", server.base_url)


def test_a_temperature_still_refused_names_the_setting(fake_openai, tmp_path, no_refusals_yet):
    refusal = Status(400, "Unsupported value: 'temperature' must be 1", param="temperature")
    fake_openai.reply(refusal, refusal)
    with pytest.raises(LLMRequestError) as info:
        ask(make_chat(fake_openai.base_url, tmp_path))
    message = str(info.value)
    assert "refused the temperature" in message and "ARPO_LLM_TEMPERATURE" in message
    assert "try again later" not in message.lower()
    assert len(fake_openai.requests) == 2
