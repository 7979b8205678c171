"""The fake OpenAI server, driven through the real ``langchain_openai.ChatOpenAI`` client.

These tests also pin the behaviour of the installed langchain-openai for each structured-output
method, including what malformed model output turns into.
"""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
from fake_openai import Delay, FakeOpenAI, Raw, Refusal, Status, ollama_like, rejecting_temperature
from fake_openai import fake_openai as _fake_openai_fixture  # noqa: F401  (registers fixture)
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

METHODS = ["function_calling", "json_schema", "json_mode"]
PNG_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)


class Caption(BaseModel):
    caption: str
    score: int


def make_llm(server: FakeOpenAI, timeout: float = 5) -> ChatOpenAI:
    return ChatOpenAI(
        model="fake-model",
        base_url=server.base_url,
        api_key="test",
        max_retries=0,
        timeout=timeout,
    )


def structured(server: FakeOpenAI, method: str, **kwargs):
    return make_llm(server).with_structured_output(Caption, method=method, **kwargs)


# --------------------------------------------------------------------------- lifecycle


def test_context_manager_sets_base_url_and_stops():
    with FakeOpenAI() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
        url = server.base_url
    assert server.base_url == url  # still readable after stop
    server.stop()  # idempotent


def test_fixture_yields_started_server(fake_openai):
    assert isinstance(fake_openai, FakeOpenAI)
    fake_openai.reply("hello")
    assert make_llm(fake_openai).invoke("hi").content == "hello"


# --------------------------------------------------------------------------- structured output


@pytest.mark.parametrize("method", METHODS)
def test_structured_output_returns_model(fake_openai, method):
    fake_openai.reply({"caption": "a red fox", "score": 7})
    result = structured(fake_openai, method).invoke("describe the image")
    assert result == Caption(caption="a red fox", score=7)
    assert fake_openai.pending == 0
    assert len(fake_openai.requests) == 1
    request = fake_openai.last_request
    assert request["model"] == "fake-model"
    assert request["messages"] == [{"role": "user", "content": "describe the image"}]


def test_function_calling_request_fields(fake_openai):
    fake_openai.reply({"caption": "c", "score": 1})
    structured(fake_openai, "function_calling").invoke("x")
    request = fake_openai.last_request
    assert "response_format" not in request
    assert request["tool_choice"] == {"type": "function", "function": {"name": "Caption"}}
    assert request["parallel_tool_calls"] is False
    [tool] = request["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "Caption"
    assert tool["function"]["parameters"]["required"] == ["caption", "score"]


def test_json_schema_request_fields(fake_openai):
    fake_openai.reply({"caption": "c", "score": 1})
    structured(fake_openai, "json_schema").invoke("x")
    request = fake_openai.last_request
    assert "tools" not in request
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Caption"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False


def test_json_mode_request_fields(fake_openai):
    fake_openai.reply({"caption": "c", "score": 1})
    structured(fake_openai, "json_mode").invoke("x")
    request = fake_openai.last_request
    assert "tools" not in request
    assert request["response_format"] == {"type": "json_object"}


def test_tool_call_uses_tool_choice_name(fake_openai):
    class Other(BaseModel):
        caption: str
        score: int

    fake_openai.reply({"caption": "c", "score": 2})
    llm = make_llm(fake_openai).bind_tools([Other, Caption], tool_choice="Caption")
    message = llm.invoke("x")
    assert message.tool_calls[0]["name"] == "Caption"
    assert message.tool_calls[0]["args"] == {"caption": "c", "score": 2}
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.usage_metadata["total_tokens"] > 0


# --------------------------------------------------------------------------- malformed output


def test_malformed_function_calling_returns_none(fake_openai):
    # langchain-openai stores unparsable arguments in `invalid_tool_calls`; the
    # PydanticToolsParser then sees no tool call and returns None -- no exception.
    fake_openai.reply(Raw("not json"))
    assert structured(fake_openai, "function_calling").invoke("x") is None
    # The request carried tools, so Raw went out as tool-call arguments.
    assert fake_openai.last_request["tools"]


def test_malformed_function_calling_visible_with_include_raw(fake_openai):
    fake_openai.reply(Raw("not json"))
    out = structured(fake_openai, "function_calling", include_raw=True).invoke("x")
    assert out["parsed"] is None
    assert out["parsing_error"] is None
    assert out["raw"].tool_calls == []
    [bad] = out["raw"].invalid_tool_calls
    assert bad["name"] == "Caption"
    assert bad["args"] == "not json"


def test_prose_instead_of_tool_call_returns_none(fake_openai):
    fake_openai.reply("I think it is a fox.")  # a str is content even when tools are offered
    assert structured(fake_openai, "function_calling").invoke("x") is None


@pytest.mark.parametrize(
    ("method", "error"),
    [("json_schema", ValidationError), ("json_mode", OutputParserException)],
)
def test_malformed_json_content_raises(fake_openai, method, error):
    fake_openai.reply(Raw("not json"))
    with pytest.raises(error):
        structured(fake_openai, method).invoke("x")


@pytest.mark.parametrize(
    ("method", "error"),
    [
        ("function_calling", ValidationError),
        ("json_schema", ValidationError),
        ("json_mode", OutputParserException),
    ],
)
def test_schema_mismatch_raises(fake_openai, method, error):
    fake_openai.reply({"caption": 5})
    with pytest.raises(error):
        structured(fake_openai, method).invoke("x")


@pytest.mark.parametrize("method", METHODS)
def test_refusal_raises(fake_openai, method):
    fake_openai.reply(Refusal("no can do"))
    with pytest.raises(ModelRefusalError, match="no can do"):
        structured(fake_openai, method).invoke("x")


def test_raw_without_tools_is_content(fake_openai):
    fake_openai.reply(Raw("{not json"))
    assert make_llm(fake_openai).invoke("x").content == "{not json"


# --------------------------------------------------------------------------- images and text


def test_image_content_parts_are_recorded(fake_openai):
    fake_openai.reply({"caption": "pixel", "score": 1})
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What prompt made this?"},
            {"type": "image_url", "image_url": {"url": PNG_URL}},
        ]
    )
    result = structured(fake_openai, "json_schema").invoke(
        [SystemMessage(content="You reverse prompts."), message]
    )
    assert result.caption == "pixel"
    request = fake_openai.last_request
    assert FakeOpenAI.images_in(request) == [PNG_URL]
    assert fake_openai.images_in(request) == [PNG_URL]
    assert fake_openai.text_in(request) == "You reverse prompts.\nWhat prompt made this?"


def test_images_in_without_images():
    assert FakeOpenAI.images_in({"messages": [{"role": "user", "content": "hi"}]}) == []
    assert FakeOpenAI.text_in({"messages": []}) == ""


# --------------------------------------------------------------------------- errors


def test_status_500_is_internal_server_error(fake_openai):
    fake_openai.reply(Status(500, "model exploded"))
    with pytest.raises(openai.InternalServerError) as info:
        make_llm(fake_openai).invoke("x")
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.status_code == 500
    assert "model exploded" in str(info.value)


def test_status_429_is_rate_limit_error(fake_openai):
    fake_openai.reply(Status(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        structured(fake_openai, "function_calling").invoke("x")


def test_empty_queue_gives_500_by_default(fake_openai):
    with pytest.raises(openai.InternalServerError, match="no scripted reply"):
        make_llm(fake_openai).invoke("x")
    assert len(fake_openai.requests) == 1


def test_custom_default_reply():
    with FakeOpenAI(default="always this") as server:
        llm = make_llm(server)
        assert [llm.invoke("a").content, llm.invoke("b").content] == ["always this"] * 2


def test_delay_past_timeout_is_api_timeout_error(fake_openai):
    fake_openai.reply(Delay(2, {"caption": "late", "score": 0}))
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        make_llm(fake_openai, timeout=0.5).invoke("x")
    assert time.monotonic() - start < 1.9


def test_delay_within_timeout_replies(fake_openai):
    fake_openai.reply(Delay(0.1, "ok"))
    assert make_llm(fake_openai).invoke("x").content == "ok"


def test_closed_port_is_connection_error():
    with FakeOpenAI() as server:
        url = server.base_url
    llm = ChatOpenAI(model="fake-model", base_url=url, api_key="test", max_retries=0, timeout=5)
    with pytest.raises(openai.APIConnectionError) as info:
        llm.invoke("x")
    assert not isinstance(info.value, openai.APITimeoutError)


def test_stream_is_rejected_without_consuming_a_reply(fake_openai):
    fake_openai.reply("kept")
    with pytest.raises(openai.BadRequestError, match="stream"):
        list(make_llm(fake_openai).stream("x"))
    assert fake_openai.pending == 1
    assert fake_openai.last_request["stream"] is True


# --------------------------------------------------------------------------- scripting


def test_callable_reply_sees_request(fake_openai):
    def echo(request):
        return {"caption": FakeOpenAI.text_in(request), "score": len(request["messages"])}

    fake_openai.reply(echo)
    result = structured(fake_openai, "json_mode").invoke("mirror me")
    assert result == Caption(caption="mirror me", score=1)


def test_callable_may_return_other_items(fake_openai):
    fake_openai.reply(lambda request: Status(503, "later"))
    with pytest.raises(openai.InternalServerError):
        make_llm(fake_openai).invoke("x")


def test_replies_are_consumed_in_order(fake_openai):
    fake_openai.reply("one", "two").reply("three")
    llm = make_llm(fake_openai)
    assert [llm.invoke(str(i)).content for i in range(3)] == ["one", "two", "three"]
    assert [FakeOpenAI.text_in(r) for r in fake_openai.requests] == ["0", "1", "2"]


def test_concurrent_requests_are_all_recorded(fake_openai):
    n = 8
    fake_openai.reply(*[Delay(0.05, f"r{i}") for i in range(n)])
    llm = make_llm(fake_openai)
    answers: list[str] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        content = llm.invoke(f"q{i}").content
        with lock:
            answers.append(content)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(answers) == sorted(f"r{i}" for i in range(n))
    assert sorted(FakeOpenAI.text_in(r) for r in fake_openai.requests) == [
        f"q{i}" for i in range(n)
    ]


# --------------------------------------------------------------------------- refused features


def test_ollama_like_refuses_tools_without_consuming_a_reply():
    with ollama_like("llava:13b") as server:
        server.reply({"caption": "kept", "score": 1})
        with pytest.raises(openai.BadRequestError) as info:
            structured(server, "function_calling").invoke("x")
        assert info.value.status_code == 400
        assert info.value.body["message"] == (
            "registry.ollama.ai/library/llava:13b does not support tools"
        )
        assert server.pending == 1 and len(server.requests) == 1  # recorded, not consumed
        assert structured(server, "json_schema").invoke("x") == Caption(caption="kept", score=1)


def test_ollama_like_json_mode_only():
    with ollama_like(json_schema=False, default={"caption": "c", "score": 1}) as server:
        with pytest.raises(openai.BadRequestError, match="json_schema is not supported"):
            structured(server, "json_schema").invoke("x")
        assert structured(server, "json_mode").invoke("x") == Caption(caption="c", score=1)


def test_rejecting_temperature_refuses_any_temperature():
    with rejecting_temperature(default="fine") as server:
        hot = ChatOpenAI(
            model="o4-mini", base_url=server.base_url, api_key="t", max_retries=0, temperature=0.7
        )
        with pytest.raises(openai.BadRequestError) as info:
            hot.invoke("x")
        assert info.value.param == "temperature"
        assert "Unsupported parameter: 'temperature'" in info.value.body["message"]
        assert make_llm(server).invoke("x").content == "fine"  # no temperature: answered
        assert "temperature" not in server.last_request


@pytest.mark.parametrize("method", METHODS)
def test_schema_name_for_each_method(fake_openai, method):
    fake_openai.reply({"caption": "c", "score": 1})
    schema = json.dumps(Caption.model_json_schema())
    structured(fake_openai, method).invoke(f"answer in JSON per {schema}")  # as arpo's json_mode
    assert FakeOpenAI.schema_name(fake_openai.last_request) == "Caption"
    assert FakeOpenAI.schema_name({"messages": [{"role": "user", "content": "hi"}]}) is None
