"""A fake OpenAI images API (``POST /v1/images/generations``) for tests and benchmarks.

It speaks the API over HTTP on loopback and draws with the demo world's renderer, so the
whole hosted path (arpo's HTTP client, retries, the render cache, the loop) is measurable end
to end in the demo world::

    from fake_images import FakeImages, Reply

    with FakeImages(latency_s=0.3) as server:
        server.script(Reply.status(429, retry_after=0.2))   # the next request: 429, then draws
        settings = Settings(preset="demo", t2i_model="openai-images:demo",
                            t2i_base_url=server.base_url, t2i_price=0.04)

Each request draws ``render_prompt(prompt, n, width, height)`` where ``n`` counts that
prompt's requests (a new sample each time, as a seedless service gives). Knobs: ``latency_s``
(every request), ``refuse`` (words whose prompts are refused as content-policy violations, or
a predicate of the prompt),
``sizes`` (the sizes accepted; others get HTTP 400), ``models`` (what ``GET /v1/models``
lists; None: no model list, HTTP 404), ``key`` (the one API key ``GET /v1/models`` accepts),
and a queue of scripted replies
(:class:`Reply`) consumed one per request before the default drawing.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeImages", "Reply"]

GENERATIONS = "/v1/images/generations"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP error, a refusal, broken bytes, or a stall."""

    kind: str  # ok | status | refusal | malformed | truncated | not_base64 | stall
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int, retry_after: float | None = None) -> Reply:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return cls("status", code=code, headers=headers)

    @classmethod
    def ok(cls) -> Reply:
        """Draw as usual (to script what a later request gets)."""
        return cls("ok")

    @classmethod
    def refusal(cls) -> Reply:
        return cls("refusal", code=400)

    @classmethod
    def stall(cls, seconds: float) -> Reply:
        """Answer nothing for ``seconds`` (a client with a shorter timeout gives up)."""
        return cls("stall", seconds=seconds)


class FakeImages:
    """A local images API server drawing demo-world pictures."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        refuse: tuple[str, ...] | Callable[[str], bool] = (),
        sizes: tuple[str, ...] | None = None,
        models: tuple[str, ...] | None = ("arpo-demo",),
        key: str | None = None,
    ) -> None:
        self.latency_s = latency_s
        self.refuse = refuse
        self.sizes = sizes
        self.models = models  # what GET /v1/models lists; None: it answers 404
        self.key = key  # the API key it accepts (None: any); others get HTTP 401
        self.model_lists = 0  # GET /v1/models requests answered
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.served = 0
        self._samples: Counter[str] = Counter()
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self.base_url = ""

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests, one each, before the default drawing."""
        with self._lock:
            self._queue.extend(replies)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeImages:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server._handle(self, body)

            def do_GET(self) -> None:
                server._list_models(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeImages:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ answers
    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append({**body, "time": time.monotonic()})
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            scripted = self._queue.popleft() if self._queue else None
        try:
            if self.latency_s:
                self._stopped.wait(self.latency_s)
            status, payload, headers = self._answer(body, scripted)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _list_models(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.model_lists += 1
        status, payload = 404, _error(f"no route GET {handler.path}", "invalid_request_error")
        if self.key is not None and handler.headers.get("Authorization") != f"Bearer {self.key}":
            status, payload = 401, _error("Incorrect API key provided", "invalid_request_error")
        elif handler.path.rstrip("/") == "/v1/models" and self.models is not None:
            status = 200
            payload = {
                "object": "list",
                "data": [{"id": m, "object": "model"} for m in self.models],
            }
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(
        self, body: dict[str, Any], scripted: Reply | None
    ) -> tuple[int, Any, dict[str, str]]:
        prompt = str(body.get("prompt", ""))
        if path_error := self._check(body):
            return 400, _error(path_error, "invalid_request_error"), {}
        if scripted is not None and scripted.kind == "stall":
            self._stopped.wait(scripted.seconds)
        elif scripted is not None and scripted.kind == "status":
            error_type = "server_error" if scripted.code >= 500 else "rate_limit_exceeded"
            return scripted.code, _error(f"fake {scripted.code}", error_type), scripted.headers
        if (scripted is not None and scripted.kind == "refusal") or self._refused(prompt):
            message = "Your request was rejected as a result of our safety system."
            return 400, _error(message, "image_generation_user_error", "moderation_blocked"), {}
        png = self._draw(prompt, str(body.get("size") or "1024x1024"))
        if scripted is not None and scripted.kind == "truncated":
            png = png[: len(png) // 2]
        encoded = base64.b64encode(png).decode()
        if scripted is not None and scripted.kind == "malformed":
            encoded = base64.b64encode(b"these bytes are not an image").decode()
        if scripted is not None and scripted.kind == "not_base64":
            encoded = "%%% not base64 %%%"
        with self._lock:
            self.served += 1
        return 200, {"created": int(time.time()), "data": [{"b64_json": encoded}]}, {}

    def _refused(self, prompt: str) -> bool:
        if callable(self.refuse):
            return self.refuse(prompt)
        return any(word in prompt for word in self.refuse)

    def _check(self, body: dict[str, Any]) -> str | None:
        if not str(body.get("prompt", "")).strip():
            return "prompt is required"
        size = str(body.get("size") or "")
        if self.sizes is not None and size not in self.sizes:
            return f"Invalid size '{size}'; supported: {', '.join(self.sizes)}"
        return None

    def _draw(self, prompt: str, size: str) -> bytes:
        from arpo.demo.render import render_prompt

        width, height = (int(side) for side in size.split("x"))
        with self._lock:
            sample = self._samples[prompt]
            self._samples[prompt] += 1
        image = render_prompt(prompt, sample, width, height)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def _error(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def hosted_demo_toolbox(server: FakeImages, home: Any, price: float, **settings: Any) -> Any:
    """A demo-preset Toolbox that renders through ``server`` at ``price`` per image."""
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    return Toolbox(
        Settings(
            home=home,
            preset="demo",
            t2i_model="openai-images:arpo-demo",
            t2i_base_url=server.base_url,
            t2i_api_key="test",
            t2i_price=price,
            **settings,
        )
    )
