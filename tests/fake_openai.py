"""A tiny fake OpenAI chat-completions server for tests (stdlib only).

It lets tests drive the *real* ``langchain_openai.ChatOpenAI`` (and the ``openai`` client under
it) against scripted replies, so request building, structured-output parsing and error mapping
are all exercised for real::

    from fake_openai import FakeOpenAI, Raw, Delay, Status

    with FakeOpenAI() as server:
        server.reply({"caption": "a cat"})              # structured answer
        llm = ChatOpenAI(model="fake-model", base_url=server.base_url, api_key="test",
                         max_retries=0, timeout=5)
        out = llm.with_structured_output(Caption, method="function_calling").invoke("hi")
        assert server.images_in(server.requests[-1]) == []

Reply items (queued with :meth:`FakeOpenAI.reply`, consumed one per chat-completions request):

* ``dict`` / ``list`` -- a structured answer. If the request carries ``tools`` (method
  ``"function_calling"``) it is sent as a tool call to the function named by ``tool_choice`` (or
  the first tool), with ``arguments=json.dumps(item)`` and ``finish_reason="tool_calls"``.
  Otherwise it is sent as message content ``json.dumps(item)`` (``"json_schema"`` and
  ``"json_mode"``).
* ``str`` -- sent verbatim as message *content*, even when tools were offered (a model that
  answers in prose instead of calling the tool).
* :class:`Raw` -- text sent verbatim as tool-call *arguments* when the request has tools, else
  as content: use it for malformed structured output in every method.
* :class:`Delay` -- sleep, then send the wrapped item (client timeouts).

``FakeOpenAI(latency_s=...)`` makes every request wait that long (a slow model); ``in_flight``
counts requests being answered and ``spans`` holds each one's (start, end) in
``time.monotonic()`` seconds.
* :class:`Status` -- an HTTP error with an OpenAI-style ``{"error": {...}}`` body.
* :class:`Refusal` -- an assistant message with ``refusal`` set and no content.
* a callable ``(request_body: dict) -> item`` -- computed per request (may return any item).

A server can also *refuse* request features, as real ones do, before any reply is consumed (the
request is still recorded): ``FakeOpenAI(refuses=[Refuse("tools", "...")])`` answers HTTP 400 to
every request that carries tools. Two such servers are built by name:

* :func:`ollama_like` -- Ollama serving a vision model without a tool template: a request with
  tools gets HTTP 400 "<model> does not support tools"; json_schema (unless
  ``json_schema=False``: json mode only, like older local servers) and json_mode answer.
* :func:`rejecting_temperature` -- an OpenAI reasoning model: a request that sets
  ``temperature`` gets HTTP 400 "Unsupported parameter: 'temperature' ...".

When the queue is empty the ``default`` item is used (by default an HTTP 500 saying that the fake
has no scripted reply, so a test that under-scripts fails loudly). Note that the openai client
retries 5xx/429/timeouts ``max_retries`` times and each try consumes a reply: use
``max_retries=0`` unless retries are what you test.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

__all__ = [
    "Delay",
    "FakeOpenAI",
    "Raw",
    "Refusal",
    "Refuse",
    "Status",
    "fake_openai",
    "ollama_like",
    "rejecting_temperature",
]

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Raw:
    """Text sent verbatim: as tool-call arguments if the request has tools, else as content."""

    text: str


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (interrupted early if the server stops), then send ``item``."""

    seconds: float
    item: Any


@dataclass(frozen=True)
class Status:
    """An HTTP error response with an OpenAI-style error body."""

    code: int
    message: str = "fake error"
    type: str | None = None
    param: str | None = None
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        err_type = self.type or ("server_error" if self.code >= 500 else "invalid_request_error")
        return {
            "error": {
                "message": self.message,
                "type": err_type,
                "param": self.param,
                "code": self.error_code,
            }
        }


@dataclass(frozen=True)
class Refusal:
    """An assistant message whose ``refusal`` field is set (structured-output refusal)."""

    text: str = "I'm sorry, I can't help with that."


@dataclass(frozen=True)
class Refuse:
    """A request feature the server answers with HTTP 400 (as :class:`Status` ``code=400``):
    ``"tools"`` (function calling), ``"json_schema"`` or ``"json_object"`` (the
    ``response_format`` type of json_schema and json_mode), or ``"temperature"`` (set at all)."""

    feature: Literal["tools", "json_schema", "json_object", "temperature"]
    message: str
    param: str | None = None
    error_code: str | None = None
    type: str | None = None

    def matches(self, request: dict[str, Any]) -> bool:
        if self.feature == "tools":
            return bool(request.get("tools"))
        if self.feature == "temperature":
            return request.get("temperature") is not None
        response_format = request.get("response_format")
        return isinstance(response_format, dict) and response_format.get("type") == self.feature

    def status(self) -> Status:
        return Status(
            400, self.message, type=self.type, param=self.param, error_code=self.error_code
        )


NO_REPLY = Status(
    500,
    "FakeOpenAI has no scripted reply for this request: queue one with server.reply(...)",
    error_code="fake_openai_no_reply",
)


def _tool_name(request: dict[str, Any]) -> str | None:
    """Name of the function the reply should call, or None when no tool call is wanted."""
    tools = request.get("tools") or []
    if not tools:
        return None
    choice = request.get("tool_choice")
    if choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name:
            return name
    elif isinstance(choice, str) and choice not in ("auto", "required"):
        return choice
    first = tools[0]
    return (first.get("function") or {}).get("name") or first.get("name") or "tool"


def _approx_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, default=str)) // 4)


class FakeOpenAI:
    """A local OpenAI-compatible chat-completions server with a scripted reply queue."""

    def __init__(
        self,
        default: Any = NO_REPLY,
        *,
        model: str | None = None,
        refuses: Sequence[Refuse] = (),
        latency_s: float = 0.0,
    ) -> None:
        self.default = default
        self.latency_s = latency_s  # every chat request waits this long before its answer
        self.in_flight = 0  # chat requests being answered now
        self.spans: list[tuple[float, float]] = []  # (start, end) of each answered request
        self.model = model  # model name to report; None echoes the request's model
        self.refuses = list(refuses)  # features answered with HTTP 400, before the queue
        self.requests: list[dict[str, Any]] = []
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeOpenAI:
        if self._httpd is not None:
            return self
        self._stopped.clear()
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        port = httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAI:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopped.set()  # wakes Delay sleepers
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting
    def reply(self, *items: Any) -> FakeOpenAI:
        """Queue replies, consumed in order, one per chat-completions request."""
        with self._lock:
            self._queue.extend(items)
        return self

    @property
    def pending(self) -> int:
        """Number of queued replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    @property
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            if not self.requests:
                raise AssertionError("FakeOpenAI received no chat-completions request")
            return self.requests[-1]

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def _record_and_pop(self, body: dict[str, Any]) -> Any:
        with self._lock:
            self.requests.append(body)
            refused = next((r for r in self.refuses if r.matches(body)), None)
            if refused is not None:  # refused before the model runs: no reply is consumed
                return refused.status()
            return self._queue.popleft() if self._queue else self.default

    # ------------------------------------------------------------------ inspection helpers
    @staticmethod
    def images_in(request: dict[str, Any]) -> list[str]:
        """All ``image_url`` urls (usually data URLs) in a request's messages, in order."""
        urls: list[str] = []
        for message in request.get("messages") or []:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    image = part.get("image_url")
                    url = image.get("url") if isinstance(image, dict) else image
                    if isinstance(url, str):
                        urls.append(url)
        return urls

    @staticmethod
    def schema_name(request: dict[str, Any]) -> str | None:
        """The structured answer a request asks for: the tool's name (function_calling), the
        json_schema's name, or for json_mode the ``title`` of the first JSON schema its text
        quotes (arpo states the schema in the messages); None when it asks for none."""
        tool = _tool_name(request)
        if tool is not None:
            return tool
        response_format = request.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            return (response_format.get("json_schema") or {}).get("name")
        text = FakeOpenAI.text_in(request)
        decoder = json.JSONDecoder()
        for start in (m.start() for m in re.finditer(r"\{", text)):
            try:
                quoted, _end = decoder.raw_decode(text, start)
            except ValueError:
                continue
            if isinstance(quoted, dict) and "properties" in quoted and "title" in quoted:
                return str(quoted["title"])
        return None

    @staticmethod
    def text_in(request: dict[str, Any]) -> str:
        """All text content of a request's messages (any role), joined with newlines."""
        texts: list[str] = []
        for message in request.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, str):
                        texts.append(part)
                    elif isinstance(part, dict) and part.get("type") == "text":
                        texts.append(str(part.get("text", "")))
        return "\n".join(texts)

    # ------------------------------------------------------------------ reply building
    def _resolve(self, item: Any, request: dict[str, Any]) -> tuple[int, dict[str, Any], dict]:
        """Turn a reply item into (status, json body, extra headers)."""
        while True:
            if isinstance(item, Delay):
                self._stopped.wait(item.seconds)
                item = item.item
            elif isinstance(item, Status):
                return item.code, item.body(), dict(item.headers)
            elif callable(item) and not isinstance(item, type):
                item = item(request)
            else:
                return 200, self._completion(item, request), {}

    def _completion(self, item: Any, request: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        finish_reason = "stop"
        tool = _tool_name(request)
        if isinstance(item, Refusal):
            message["refusal"] = item.text
        elif isinstance(item, Raw) and tool is not None:
            message["tool_calls"] = [self._tool_call(tool, item.text)]
            finish_reason = "tool_calls"
        elif isinstance(item, Raw):
            message["content"] = item.text
        elif isinstance(item, str):
            message["content"] = item
        elif isinstance(item, dict | list) and tool is not None:
            message["tool_calls"] = [self._tool_call(tool, json.dumps(item))]
            finish_reason = "tool_calls"
        elif isinstance(item, dict | list):
            message["content"] = json.dumps(item)
        else:
            raise TypeError(f"FakeOpenAI: unsupported reply item {item!r}")
        prompt_tokens = _approx_tokens(request.get("messages", []))
        completion_tokens = _approx_tokens(message)
        n = next(self._ids)
        return {
            "id": f"chatcmpl-fake{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model or request.get("model") or "fake-model",
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _tool_call(self, name: str, arguments: str) -> dict[str, Any]:
        return {
            "id": f"call_fake{next(self._ids)}",
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected in tests; stay quiet about it.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so no pooled keep-alive connection can outlive
    # (or confuse) a stopped server.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to tell it

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        if self._path() == "/v1/models":
            model = self.server.fake.model or "fake-model"
            self._send(
                200,
                {
                    "object": "list",
                    "data": [{"id": model, "object": "model", "created": 0, "owned_by": "fake"}],
                },
            )
        else:
            self._send(404, Status(404, f"FakeOpenAI: no route GET {self.path}").body())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self._path() != CHAT_PATH:
            self._send(404, Status(404, f"FakeOpenAI: no route POST {self.path}").body())
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            self._send(400, Status(400, f"FakeOpenAI: request body is not JSON: {exc}").body())
            return
        if not isinstance(body, dict):
            self._send(400, Status(400, "FakeOpenAI: request body must be a JSON object").body())
            return
        fake = self.server.fake
        if body.get("stream"):
            fake._record(body)  # recorded, but no scripted reply is consumed
            self._send(
                400,
                Status(
                    400, "FakeOpenAI does not support stream=true; use non-streaming calls"
                ).body(),
            )
            return
        item = fake._record_and_pop(body)
        started = time.monotonic()
        with fake._lock:
            fake.in_flight += 1
        try:
            if fake.latency_s:
                fake._stopped.wait(fake.latency_s)
            status, payload, headers = fake._resolve(item, body)
        except Exception as exc:  # a broken callable or item: report it to the test
            status, payload, headers = (
                500,
                Status(500, f"FakeOpenAI reply failed: {type(exc).__name__}: {exc}").body(),
                {},
            )
        finally:
            with fake._lock:
                fake.in_flight -= 1
                fake.spans.append((started, time.monotonic()))
        self._send(status, payload, headers)


def ollama_like(
    model: str = "llava:13b", *, json_schema: bool = True, default: Any = NO_REPLY
) -> FakeOpenAI:
    """A server like Ollama's OpenAI API serving a vision model without a tool template (most
    of them): tools are refused with Ollama's own message; with ``json_schema=False`` only json
    mode answers (as older Ollama and llama.cpp servers)."""
    refuses = [
        Refuse(
            "tools", f"registry.ollama.ai/library/{model} does not support tools", type="api_error"
        )
    ]
    if not json_schema:
        refuses.append(
            Refuse(
                "json_schema", "response_format type json_schema is not supported", type="api_error"
            )
        )
    return FakeOpenAI(default, model=model, refuses=refuses)


def rejecting_temperature(model: str = "o4-mini", *, default: Any = NO_REPLY) -> FakeOpenAI:
    """A server like OpenAI's for a reasoning model: any ``temperature`` is refused."""
    refusal = Refuse(
        "temperature",
        "Unsupported parameter: 'temperature' is not supported with this model.",
        param="temperature",
        error_code="unsupported_parameter",
    )
    return FakeOpenAI(default, model=model, refuses=[refusal])


@pytest.fixture(name="fake_openai")  # explicit name: importing it under an alias still works
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started :class:`FakeOpenAI`, stopped after the test."""
    with FakeOpenAI() as server:
        yield server
