"""The OpenAI-compatible chat model: structured answers, images as JPEG data URLs, clear errors.

What a server refuses is answered with what to change: HTTP 4xx (but 429) raises
:class:`~arpo.errors.LLMRequestError` naming the setting or the model to change; only 429, 5xx,
timeouts and connection errors say to try again later. A server that refuses the temperature is
asked again once without it, and is sent none for the rest of the process.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from arpo.errors import LLMOutputError, LLMRequestError, LLMUnavailableError
from arpo.tools.waits import waiting_on_service

if TYPE_CHECKING:
    import openai
    from PIL import Image

    from arpo.config import Settings

log = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)

#: JPEG quality of the images sent to the LLM: no visible loss, a fraction of a PNG's bytes.
IMAGE_QUALITY = 90
#: Models that take only their default temperature (OpenAI's o-series and gpt-5 reasoning
#: models; gpt-5-chat takes one): arpo sends them none. A provider prefix is allowed.
DEFAULT_TEMPERATURE_ONLY = re.compile(r"^(?:.*/)?(?:o[1-9]|gpt-5(?!.*chat))", re.IGNORECASE)
#: (endpoint, model) pairs whose server refused the temperature in this process.
_REFUSED_TEMPERATURE: set[tuple[str, str]] = set()
_REFUSED_LOCK = threading.Lock()


def sends_temperature(model: str, endpoint: str) -> bool:
    """Whether requests to ``model`` at ``endpoint`` carry a temperature at all."""
    if DEFAULT_TEMPERATURE_ONLY.match(model):
        return False
    with _REFUSED_LOCK:
        return (endpoint, model) not in _REFUSED_TEMPERATURE


class StructuredChat:
    """Asks a chat model for a pydantic-typed answer; retries a malformed answer once."""

    def __init__(
        self,
        model: Any,
        *,
        method: str = "function_calling",
        endpoint: str = "the OpenAI API",
        image_max_side: int = 768,
    ) -> None:
        self.model = model
        self.method = method
        self.endpoint = endpoint
        self.image_max_side = image_max_side
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> StructuredChat:
        from langchain_openai import ChatOpenAI

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        endpoint = settings.llm_base_url or "the OpenAI API"
        temperature = settings.llm_temperature
        if temperature is not None and not sends_temperature(settings.llm_model, endpoint):
            temperature = None
        model = ChatOpenAI(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            # local servers (Ollama, llama.cpp) ignore the key but the client insists on one
            api_key=key or ("not-needed" if settings.llm_base_url else None),
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            temperature=temperature,
        )
        return cls(
            model,
            method=settings.llm_structured_method,
            endpoint=endpoint,
            image_max_side=settings.llm_image_max_side,
        )

    @property
    def name(self) -> str:
        return str(getattr(self.model, "model_name", None) or getattr(self.model, "model", "llm"))

    @property
    def temperature(self) -> float | None:
        """The temperature requests carry now (None: left out)."""
        return getattr(self.model, "temperature", None)

    def ask(self, schema: type[Answer], messages: Sequence[Any]) -> Answer:
        """One structured answer. Transport problems and refused requests raise
        LLMUnavailableError at once; an answer that does not fit ``schema`` is asked for again
        once, then LLMOutputError."""
        messages = self._framed(schema, messages)
        problem = ""
        for _attempt in range(2):
            try:
                with waiting_on_service():  # the model lock is free while the LLM answers
                    answer = self._invoke(schema, messages)
            except Exception as error:
                transport = llm_error(error, self)
                if transport is not None:
                    raise transport from error
                problem = f"{type(error).__name__}: {str(error)[:200]}"
                log.warning("malformed LLM answer (%s); asking again", problem)
                continue
            if isinstance(answer, schema):
                return answer
            problem = f"expected {schema.__name__}, got {type(answer).__name__}"
        raise LLMOutputError(
            f"the LLM '{self.name}' at {self.endpoint} twice answered in a form arpo cannot "
            f"parse ({problem}). Use a model that supports structured output, try "
            "ARPO_LLM_STRUCTURED_METHOD=json_schema or json_mode, or use --strategy offline."
        )

    def user_message(self, text: str, images: Sequence[tuple[str, Image.Image]] = ()) -> Any:
        """A user message with text followed by labelled images, each sent as a JPEG data URL
        whose longest side is at most ``image_max_side`` (never upscaled)."""
        from langchain_core.messages import HumanMessage

        from arpo.tools.images import image_to_data_url

        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        for label, image in images:
            parts.append({"type": "text", "text": label})
            url = image_to_data_url(
                image, fmt="JPEG", max_side=self.image_max_side, quality=IMAGE_QUALITY
            )
            parts.append({"type": "image_url", "image_url": {"url": url}})
        return HumanMessage(content=parts)

    def _framed(self, schema: type[BaseModel], messages: Sequence[Any]) -> list[Any]:
        """The messages, preceded in json_mode by the schema the answer must follow: json
        mode constrains the answer to JSON, not to a schema (and OpenAI's refuses a request
        whose messages never say 'JSON')."""
        if self.method != "json_mode":
            return list(messages)
        from langchain_core.messages import SystemMessage

        described = json.dumps(schema.model_json_schema(), separators=(",", ":"))
        instruction = (
            "Answer with one JSON object, and nothing else, that follows this JSON schema: "
            f"{described}"
        )
        return [SystemMessage(content=instruction), *messages]

    def _invoke(self, schema: type[BaseModel], messages: list[Any]) -> Any:
        """One request; asked once more without the temperature if the server refuses it."""
        import openai

        self.calls += 1
        try:
            return self.model.with_structured_output(schema, method=self.method).invoke(messages)
        except openai.BadRequestError as error:
            if self.temperature is None or not refuses_temperature(error):
                raise
            self._leave_out_temperature(error)
        self.calls += 1
        return self.model.with_structured_output(schema, method=self.method).invoke(messages)

    def _leave_out_temperature(self, error: openai.APIStatusError) -> None:
        log.warning(
            "the LLM '%s' at %s refused temperature %s (%s); asking again without it, and "
            "sending none from now on (ARPO_LLM_TEMPERATURE=none skips this)",
            self.name,
            self.endpoint,
            self.temperature,
            server_message(error),
        )
        with _REFUSED_LOCK:
            _REFUSED_TEMPERATURE.add((self.endpoint, self.name))
        self.model = self.model.model_copy(update={"temperature": None})


# --------------------------------------------------------------------------- error messages


def server_message(error: openai.APIStatusError) -> str:
    """What the server said, on one line: the ``message`` of an OpenAI-style error body, the
    body itself when it is text (Ollama's native form), else the client's summary."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    elif isinstance(body, str) and body.strip():
        text = body
    else:
        text = str(error.message)
    return " ".join(text.split())[:200]


def refuses_temperature(error: openai.APIStatusError) -> bool:
    """Whether a 4xx answer is about the temperature parameter."""
    return error.param == "temperature" or "temperature" in server_message(error).lower()


def llm_error(error: Exception, chat: StructuredChat) -> LLMUnavailableError | None:
    """Map openai client errors to arpo's, each saying what to do; None for anything that is
    not a transport error or a refused request (a malformed answer is asked for again)."""
    import openai

    endpoint = chat.endpoint
    if isinstance(error, openai.APITimeoutError):
        return LLMUnavailableError(
            f"the LLM at {endpoint} did not answer in time. Raise ARPO_LLM_TIMEOUT_S, use a "
            "faster model, or use --strategy offline."
        )
    if isinstance(error, openai.APIConnectionError):
        return LLMUnavailableError(
            f"cannot reach the LLM at {endpoint}. Check that the server is running and "
            "ARPO_LLM_BASE_URL is right, or try again later, or use --strategy offline."
        )
    if not isinstance(error, openai.APIStatusError):
        return None
    said = f"HTTP {error.status_code}: {server_message(error)}"
    if error.status_code == 429:
        return _rate_limited(error, endpoint, said)
    if error.status_code >= 500:
        return LLMUnavailableError(
            f"the LLM at {endpoint} returned {said}. Try again later or use --strategy offline."
        )
    return LLMRequestError(_refused(error, chat, said))


def _rate_limited(error: openai.APIStatusError, endpoint: str, said: str) -> LLMUnavailableError:
    if error.code == "insufficient_quota":
        return LLMRequestError(
            f"the LLM at {endpoint} says the account has no quota left ({said}). Add credit "
            "or a plan to the account behind ARPO_LLM_API_KEY (or OPENAI_API_KEY), or use "
            "--strategy offline."
        )
    return LLMUnavailableError(
        f"the LLM at {endpoint} is limiting the request rate ({said}). Try again later, raise "
        "ARPO_LLM_MAX_RETRIES (the client waits between retries), or use --strategy offline."
    )


def _refused(error: openai.APIStatusError, chat: StructuredChat, said: str) -> str:
    """The message for a 4xx answer: what the server refused and the setting that fixes it."""
    where = f"the LLM '{chat.name}' at {chat.endpoint}"
    text = server_message(error).lower()
    status = error.status_code
    if status in (401, 403):
        verb = "rejected the API key" if status == 401 else "refused this API key access"
        return (
            f"the LLM at {chat.endpoint} {verb} ({said}). Set ARPO_LLM_API_KEY (or "
            f"OPENAI_API_KEY) to a key that may use the model '{chat.name}', or set "
            "ARPO_LLM_MODEL to one it may use."
        )
    if status == 404:
        return (
            f"the LLM at {chat.endpoint} does not know the model '{chat.name}', or is not an "
            f"OpenAI-compatible API ({said}). Set ARPO_LLM_MODEL to a model it serves (for "
            "Ollama, one `ollama pull` fetched), or correct ARPO_LLM_BASE_URL (it usually "
            "ends in /v1)."
        )
    if refuses_temperature(error):
        return (
            f"{where} refused the temperature ({said}). Set ARPO_LLM_TEMPERATURE to a value "
            "it accepts, or to none to leave it out."
        )
    if status == 413 or error.code == "context_length_exceeded" or _too_large(text):
        return (
            f"{where} refused a request too large for it ({said}). Lower ARPO_LLM_IMAGE_MAX_SIDE "
            f"(now {chat.image_max_side}), or use a model with a larger context."
        )
    refused_method = _method_refusal(error, chat.method, text)
    if refused_method:
        return f"{where} {refused_method} ({said})." + _method_fix(chat.method)
    if "image" in text or "vision" in text:
        return (
            f"{where} does not take images ({said}). Set ARPO_LLM_MODEL to a vision model "
            "(with Ollama e.g. llava:13b or qwen2.5vl), or use --strategy offline."
        )
    return (
        f"{where} refused the request ({said}); sending it again would not help. Check "
        f"ARPO_LLM_MODEL and ARPO_LLM_STRUCTURED_METHOD (now {chat.method}; `arpo doctor` "
        "tries each method), or use --strategy offline."
    )


def _too_large(text: str) -> bool:
    return any(
        words in text
        for words in ("context length", "context window", "too large", "too long", "too many")
    )


def _method_refusal(error: openai.APIStatusError, method: str, text: str) -> str | None:
    """What the server refused about the structured-output method, or None."""
    if method == "function_calling" and (
        error.param in ("tools", "tool_choice") or "tool" in text or "function" in text
    ):
        return "does not support function calling (tools)"
    json_words = ("response_format", "json_schema", "json_object", "json mode", "structured")
    if method != "function_calling" and (
        error.param == "response_format" or any(word in text for word in json_words)
    ):
        return f"does not support {method} structured output"
    return None


def _method_fix(method: str) -> str:
    others = {
        "function_calling": "json_schema (or json_mode)",
        "json_schema": "json_mode (or function_calling)",
        "json_mode": "json_schema (or function_calling)",
    }[method]
    return (
        f" Set ARPO_LLM_STRUCTURED_METHOD={others}, or use a model that supports {method}; "
        "`arpo doctor` tries each method against the server."
    )
