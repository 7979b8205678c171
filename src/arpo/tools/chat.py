"""The OpenAI-compatible chat model: structured answers, images as data URLs, clear errors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from arpo.errors import LLMOutputError, LLMUnavailableError

if TYPE_CHECKING:
    from PIL import Image

    from arpo.config import Settings

log = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)


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
        model = ChatOpenAI(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            # local servers (Ollama, llama.cpp) ignore the key but the client insists on one
            api_key=key or ("not-needed" if settings.llm_base_url else None),
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            temperature=0.7,
        )
        return cls(
            model,
            method=settings.llm_structured_method,
            endpoint=settings.llm_base_url or "the OpenAI API",
        )

    @property
    def name(self) -> str:
        return str(getattr(self.model, "model_name", None) or getattr(self.model, "model", "llm"))

    def ask(self, schema: type[Answer], messages: Sequence[Any]) -> Answer:
        """One structured answer. Transport problems raise LLMUnavailableError at once;
        an answer that does not fit ``schema`` is asked for again once, then LLMOutputError."""
        runnable = self.model.with_structured_output(schema, method=self.method)
        problem = ""
        for _attempt in range(2):
            self.calls += 1
            try:
                answer = runnable.invoke(list(messages))
            except Exception as error:
                transport = _transport_error(error, self.endpoint, self.name)
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
        """A user message with text followed by labelled images sent as data URLs."""
        from langchain_core.messages import HumanMessage

        from arpo.tools.images import image_to_data_url

        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        for label, image in images:
            parts.append({"type": "text", "text": label})
            url = image_to_data_url(image, fmt="PNG", max_side=self.image_max_side)
            parts.append({"type": "image_url", "image_url": {"url": url}})
        return HumanMessage(content=parts)


def _transport_error(error: Exception, endpoint: str, model: str) -> LLMUnavailableError | None:
    """Map openai client errors to arpo's; None for anything that is not a transport error."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return LLMUnavailableError(
            f"the LLM at {endpoint} did not answer in time. Raise ARPO_LLM_TIMEOUT_S, use a "
            "faster model, or use --strategy offline."
        )
    if isinstance(error, openai.APIConnectionError):
        return LLMUnavailableError(
            f"cannot reach the LLM at {endpoint}. Check that the server is running and "
            "ARPO_LLM_BASE_URL is right, or use --strategy offline."
        )
    if isinstance(error, openai.AuthenticationError):
        return LLMUnavailableError(
            f"the LLM at {endpoint} rejected the API key. Set ARPO_LLM_API_KEY (or OPENAI_API_KEY)."
        )
    if isinstance(error, openai.NotFoundError):
        return LLMUnavailableError(
            f"the LLM at {endpoint} does not know the model '{model}'. Set ARPO_LLM_MODEL."
        )
    if isinstance(error, openai.APIStatusError):
        return LLMUnavailableError(
            f"the LLM at {endpoint} returned HTTP {error.status_code}: "
            f"{str(error.message)[:200]}. Try again later or use --strategy offline."
        )
    return None
