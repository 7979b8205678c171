"""Text-to-image through an OpenAI-compatible images API (``POST /v1/images/generations``).

Chosen with ``ARPO_T2I_MODEL=openai-images:MODEL`` (``openai-images:gpt-image-1``,
``openai-images:dall-e-3``, or any model a server that speaks the API serves), against
``ARPO_T2I_BASE_URL`` (default OpenAI's) with ``ARPO_T2I_API_KEY`` (else ``OPENAI_API_KEY``).
The render cache and the loop treat it like any backend, with these differences:

- **No seeds.** The API takes none, so a seed only names a *sample*: a prompt's sample 0 is
  drawn once and then served from the render cache; a replay with other seeds draws new
  samples. Runs with it are recorded as not reproducible.
- **Sizes** are mapped to the ones the model accepts (the nearest aspect ratio), with a
  warning saying so; a model not in :data:`KNOWN_MODELS` gets the size asked for.
  ``ARPO_T2I_QUALITY`` and ``ARPO_T2I_STYLE`` are checked against the model.
- **No negative prompt, steps or guidance**: the API has none, so they are refused, not
  dropped.
- **Concurrency**: one call's renders (an iteration's reranked candidates) go out in
  parallel, at most ``ARPO_T2I_CONCURRENCY`` at a time; HTTP 429 and 5xx are retried with
  exponential backoff, honouring ``Retry-After``; a content-policy refusal is not retried and
  comes back as :class:`~arpo.tools.t2i.RendersRefused` for that prompt alone.
- **Cost**: ``price_per_image`` from ``ARPO_T2I_PRICE``, else the list price of a known model
  at the quality and size served (:data:`KNOWN_MODELS`); a run meters it (``--max-cost``).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from arpo.errors import InvalidOptionError, RenderError
from arpo.tools import registry
from arpo.tools.families import FamilyProfile, TextEncoder, check_size
from arpo.tools.t2i import RenderParams, RendersFailed, RendersRefused

if TYPE_CHECKING:
    import httpx
    from PIL import Image

    from arpo.config import Settings

log = logging.getLogger(__name__)

IMAGES_PREFIX = "openai-images:"
OPENAI_BASE_URL = "https://api.openai.com/v1"
GENERATIONS_PATH = "/images/generations"
#: the longest wait a Retry-After header may ask for before arpo gives up on the call
MAX_RETRY_AFTER_S = 60.0
#: error codes OpenAI gives a prompt its safety system refuses (dall-e-3, gpt-image-1)
REFUSAL_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_filter"})

Size = tuple[int, int]


@dataclass(frozen=True)
class ImagesModel:
    """What one images-API model accepts, and its list prices in US dollars per image by
    ``(quality, "WxH")``. ``sizes`` None: any size is passed through as asked."""

    sizes: tuple[Size, ...] | None = None
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    styles: tuple[str, ...] = ()
    response_format: bool = True  # takes response_format=b64_json (gpt-image-1 always sends it)
    max_prompt_chars: int = 4000
    prices: dict[tuple[str | None, str], float] = field(default_factory=dict)


_GPT_IMAGE_SIZES: tuple[Size, ...] = ((1024, 1024), (1536, 1024), (1024, 1536))

#: Models whose sizes and prices arpo knows. Prices: OpenAI's list prices per image
#: (https://platform.openai.com/docs/pricing), as copied in public price tables checked on
#: 2025-06 for gpt-image-1 and 2023-12 for DALL-E; set ARPO_T2I_PRICE where yours differ.
KNOWN_MODELS: dict[str, ImagesModel] = {
    "gpt-image-1": ImagesModel(
        sizes=_GPT_IMAGE_SIZES,
        qualities=("low", "medium", "high"),
        default_quality="medium",
        response_format=False,
        max_prompt_chars=32000,
        prices={
            ("low", "1024x1024"): 0.011,
            ("low", "1536x1024"): 0.016,
            ("low", "1024x1536"): 0.016,
            ("medium", "1024x1024"): 0.042,
            ("medium", "1536x1024"): 0.063,
            ("medium", "1024x1536"): 0.063,
            ("high", "1024x1024"): 0.167,
            ("high", "1536x1024"): 0.25,
            ("high", "1024x1536"): 0.25,
        },
    ),
    "dall-e-3": ImagesModel(
        sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
        qualities=("standard", "hd"),
        default_quality="standard",
        styles=("vivid", "natural"),
        max_prompt_chars=4000,
        prices={
            ("standard", "1024x1024"): 0.04,
            ("standard", "1792x1024"): 0.08,
            ("standard", "1024x1792"): 0.08,
            ("hd", "1024x1024"): 0.08,
            ("hd", "1792x1024"): 0.12,
            ("hd", "1024x1792"): 0.12,
        },
    ),
    "dall-e-2": ImagesModel(
        sizes=((256, 256), (512, 512), (1024, 1024)),
        max_prompt_chars=1000,
        prices={(None, "256x256"): 0.016, (None, "512x512"): 0.018, (None, "1024x1024"): 0.02},
    ),
}
ANY_MODEL = ImagesModel()


def images_model(ref: str | None) -> str | None:
    """The model name of an ``openai-images:MODEL`` reference, else None."""
    if not ref or not ref.startswith(IMAGES_PREFIX):
        return None
    return ref.removeprefix(IMAGES_PREFIX).strip() or None


def images_profile(model: str) -> FamilyProfile:
    """The family profile of an images-API model: 1024 px, no steps, no guidance, no negative
    prompt, long prompts written as sentences."""
    spec = KNOWN_MODELS.get(model, ANY_MODEL)
    return FamilyProfile(
        name="openai-images",
        title=f"{model} (images API)",
        pipelines=(),
        native_size=1024,
        size_multiple=16,
        steps=1,
        guidance=0.0,
        dtype={},
        negative_prompt="none",
        text_encoders=(TextEncoder(kind="api", max_tokens=min(spec.max_prompt_chars // 4, 1000)),),
        prompt_style="sentences",
        safety_checker=False,
    )


def size_text(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def nearest_size(wanted: Size, sizes: Sequence[Size]) -> Size:
    """Of ``sizes``, the one nearest ``wanted`` in aspect ratio, then in area."""
    ratio = wanted[0] / wanted[1]
    area = wanted[0] * wanted[1]
    return min(
        sizes,
        key=lambda s: (
            abs(s[0] / s[1] - ratio) > 1e-6,
            abs(s[0] / s[1] - ratio),
            abs(s[0] * s[1] - area),
        ),
    )


class ImageRefusedError(RenderError):
    """One prompt refused by the service's content policy."""


class ImagesApiRenderer:
    """Renders through ``POST {base_url}/images/generations``; satisfies
    :class:`arpo.tools.t2i.Renderer` (without seeds)."""

    seeded = False
    remote = True  # a render is a wait on the service: the model lock is free meanwhile

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        profile: FamilyProfile | None = None,
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        quality: str | None = None,
        style: str | None = None,
        price: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.model = model
        self.spec = KNOWN_MODELS.get(model, ANY_MODEL)
        self.name = IMAGES_PREFIX + model
        self.base_url = base_url.rstrip("/")
        self.profile = profile or images_profile(model)
        self.concurrency = max(1, concurrency)
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.quality = self._checked("quality", quality, self.spec.qualities, "ARPO_T2I_QUALITY")
        if self.quality is None:
            self.quality = self.spec.default_quality
        self.style = self._checked("style", style, self.spec.styles, "ARPO_T2I_STYLE")
        self.price = price
        host = urlsplit(self.base_url).netloc or self.base_url
        self.cache_id = f"{self.name}@{host}|quality={self.quality}|style={self.style}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )
        self._warned: set[tuple[Size, Size]] = set()
        self._warn_lock = threading.Lock()

    def _checked(
        self, what: str, value: str | None, allowed: tuple[str, ...], setting: str
    ) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if self.spec is ANY_MODEL or value in allowed:
            return value
        takes = f"one of {', '.join(allowed)}" if allowed else f"no {what} setting"
        raise InvalidOptionError(
            f"{setting}={value} is not a {what} {self.model} takes: it takes {takes}; "
            f"change or unset {setting}."
        )

    # ------------------------------------------------------------------ what it renders

    def served_size(self, params: RenderParams) -> Size:
        """The size the model renders for ``params``: a known model's nearest accepted size,
        else the size asked for."""
        wanted = (params.width, params.height)
        if self.spec.sizes is None or wanted in self.spec.sizes:
            return wanted
        return nearest_size(wanted, self.spec.sizes)

    def price_per_image(self, params: RenderParams) -> float | None:
        """US dollars per image: ARPO_T2I_PRICE, else the model's list price at the quality and
        size it renders, else None (not metered)."""
        if self.price is not None:
            return self.price
        return self.spec.prices.get((self.quality, size_text(self.served_size(params))))

    def check_params(self, params: RenderParams) -> None:
        """Refuse what the images API cannot take: a negative prompt, steps, guidance; a size
        off the family's multiple where the size is sent as asked. Say when a size changes."""
        if params.negative_prompt.strip():
            raise InvalidOptionError(
                f"{self.name} renders through the images API, which takes no negative prompt; "
                "drop --negative-prompt (option negative_prompt) and say what to leave out in "
                "the prompt itself."
            )
        for what, value, default, flag in (
            ("guidance", params.guidance, self.profile.guidance, "--guidance"),
            ("steps", params.steps, self.profile.steps, "--steps"),
        ):
            if value != default:
                raise InvalidOptionError(
                    f"{self.name} renders through the images API, which has no {what}; drop "
                    f"{flag} (option {what}={value})."
                )
        if self.spec.sizes is None:
            check_size(self.profile, params.width, params.height)
        self._say_size(params)

    def _say_size(self, params: RenderParams) -> None:
        wanted, served = (params.width, params.height), self.served_size(params)
        if wanted == served:
            return
        with self._warn_lock:
            if (wanted, served) in self._warned:
                return
            self._warned.add((wanted, served))
        accepted = ", ".join(size_text(s) for s in self.spec.sizes or ())
        log.warning(
            "%s renders %s, not the %s asked for (it accepts %s; the nearest aspect ratio is used)",
            self.model,
            size_text(served),
            size_text(wanted),
            accepted,
        )

    def request_body(self, prompt: str, params: RenderParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": 1,
            "size": size_text(self.served_size(params)),
        }
        if self.spec.response_format:
            body["response_format"] = "b64_json"
        if self.quality:
            body["quality"] = self.quality
        if self.style:
            body["style"] = self.style
        return body

    # ------------------------------------------------------------------ rendering

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        """One image per prompt (seeds only count them), up to ``concurrency`` requests at a
        time. A refused prompt raises :class:`RendersRefused` after the others finished. Any
        other failure (a timeout, 5xx after the retries) sends no request not yet sent, waits
        for those in flight, and raises :class:`RendersFailed` with the images that came back
        (they are paid for: the render cache keeps them)."""
        if len(prompts) != len(seeds):
            raise ValueError("render needs one seed per prompt")
        self.check_params(params)
        if not prompts:
            return []
        images: list[Any] = [None] * len(prompts)
        refused: dict[int, str] = {}
        failure: BaseException | None = None
        workers = min(self.concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arpo-images") as pool:
            futures = {pool.submit(self.render_one, p, params): i for i, p in enumerate(prompts)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.cancelled():
                        continue
                    error = future.exception()
                    if isinstance(error, ImageRefusedError):
                        refused[futures[future]] = str(error)
                    elif error is not None:
                        failure = failure or error
                        for waiting in pending:
                            waiting.cancel()  # not sent yet: never sent
                    else:
                        images[futures[future]] = future.result()
        if failure is not None and (refused or any(image is not None for image in images)):
            raise RendersFailed(failure, images, refused) from failure
        if failure is not None:
            raise failure
        if refused:
            raise RendersRefused(refused, images=images)
        return images

    def render_one(self, prompt: str, params: RenderParams) -> Image.Image:
        """One prompt's image, retrying 429, 5xx and connection failures."""
        import httpx

        body = self.request_body(prompt, params)
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._client.post(GENERATIONS_PATH, json=body)
            except httpx.TimeoutException as error:
                raise RenderError(
                    f"{self.base_url} did not answer an image request within {self.timeout_s:g} "
                    f"s ({type(error).__name__}); raise ARPO_T2I_TIMEOUT_S, or try again later."
                ) from error
            except httpx.TransportError as error:
                if last:
                    raise RenderError(
                        f"cannot reach the images API at {self.base_url} ({error}); check "
                        "ARPO_T2I_BASE_URL and the network."
                    ) from error
                self._pause(None, attempt)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if last:
                    raise RenderError(
                        f"{self.base_url} answered HTTP {status} {attempt + 1} times "
                        f"({_error_message(response)}); try again later, or lower "
                        "ARPO_T2I_CONCURRENCY."
                    )
                self._pause(response, attempt)
                continue
            if status >= 400:
                raise self._client_error(response)
            return self._decode(response)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pause(self, response: httpx.Response | None, attempt: int) -> None:
        wait_s = retry_after(response) if response is not None else None
        if wait_s is None:
            wait_s = min(0.5 * 2**attempt, 8.0) * (1 + 0.25 * random.random())
        log.info("images API busy; retrying in %.1f s", wait_s)
        time.sleep(min(wait_s, MAX_RETRY_AFTER_S))

    def _client_error(self, response: httpx.Response) -> RenderError:
        message = _error_message(response)
        code = _error_code(response)
        status = response.status_code
        if code in REFUSAL_CODES or "safety system" in message or "content policy" in message:
            return ImageRefusedError(f"{self.model} refused it: {message}")
        fix = {
            401: "check ARPO_T2I_API_KEY (or OPENAI_API_KEY)",
            403: "check that the key may use this model",
            404: f"check the model name in ARPO_T2I_MODEL ({self.name}) and ARPO_T2I_BASE_URL",
        }.get(status, "check ARPO_T2I_MODEL, ARPO_T2I_QUALITY, ARPO_T2I_STYLE and the size")
        return RenderError(
            f"{self.base_url} refused the image request (HTTP {status}: {message}); {fix}."
        )

    def _decode(self, response: httpx.Response) -> Image.Image:
        try:
            data = response.json()["data"][0]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise RenderError(
                f"{self.base_url} answered an image request with no image in it "
                f"({len(response.content)} bytes, {type(error).__name__}); is "
                "ARPO_T2I_BASE_URL an images API?"
            ) from error
        if data.get("b64_json"):
            try:
                raw = base64.b64decode(data["b64_json"], validate=True)
            except (binascii.Error, ValueError) as error:
                raise RenderError(
                    f"{self.base_url} sent image data that is not base64 ({error})."
                ) from error
        elif data.get("url"):
            raw = self._client.get(data["url"]).content
        else:
            raise RenderError(f"{self.base_url} sent an image entry with neither b64_json nor url.")
        return decode_image(raw, self.base_url)

    def close(self) -> None:
        self._client.close()


def decode_image(raw: bytes, source: str) -> Image.Image:
    """An RGB image from encoded bytes; malformed or truncated bytes are a RenderError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as opened:
            opened.load()
            return opened.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RenderError(
            f"{source} sent {len(raw)} bytes that are not a whole image ({error}): malformed or "
            "truncated; try again, and if it persists the server is at fault."
        ) from error


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, or ``Retry-After`` in seconds or
    as an HTTP date; None when it does not say."""
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" in headers:
            value = headers["retry-after"]
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return None


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {"message": str(error)}


def _error_message(response: httpx.Response) -> str:
    return str(_error_body(response).get("message") or response.text[:200] or "no message")


def _error_code(response: httpx.Response) -> str:
    return str(_error_body(response).get("code") or "")


# --------------------------------------------------------------------------- builder


def _check_images_ref(ref: str) -> None:
    if images_model(ref) is None:
        raise InvalidOptionError(
            f"ARPO_T2I_MODEL={ref!r} names no images model; write openai-images:MODEL, e.g. "
            "openai-images:gpt-image-1."
        )


def images_api_key(settings: Settings) -> str | None:
    """The images API's key: ARPO_T2I_API_KEY, else OPENAI_API_KEY, else None."""
    import os

    key = settings.t2i_api_key.get_secret_value() if settings.t2i_api_key else None
    return key or os.environ.get("OPENAI_API_KEY") or None


def build_images_renderer(
    ref: str, settings: Settings, profile: FamilyProfile | None = None
) -> ImagesApiRenderer:
    """The renderer ``ARPO_T2I_MODEL=openai-images:MODEL`` and the ARPO_T2I_* settings say."""
    _check_images_ref(ref)
    model = images_model(ref) or ""
    base_url = settings.t2i_base_url or OPENAI_BASE_URL
    key = images_api_key(settings)
    if not key and base_url.rstrip("/") == OPENAI_BASE_URL:
        raise InvalidOptionError(
            f"{ref} renders through OpenAI's images API, which needs a key: set "
            "ARPO_T2I_API_KEY (or OPENAI_API_KEY), or point ARPO_T2I_BASE_URL at another "
            "server that speaks the images API."
        )
    return ImagesApiRenderer(
        model,
        base_url=base_url,
        api_key=key,
        profile=profile or images_profile(model),
        concurrency=settings.t2i_concurrency,
        timeout_s=settings.t2i_timeout_s,
        max_retries=settings.t2i_max_retries,
        quality=settings.t2i_quality,
        style=settings.t2i_style,
        price=settings.t2i_price,
    )


def _images_family(ref: str, download: bool) -> FamilyProfile | None:
    model = images_model(ref)
    return images_profile(model) if model else None


IMAGES_BUILDER = registry.RendererBuilder(
    build=build_images_renderer, check=_check_images_ref, profile=_images_family
)
registry.register("renderer", "openai-images", IMAGES_BUILDER)
