"""``doctor``: is this machine ready for a run? One :class:`Check` per thing a run needs.

Python and the libraries, the device and its memory, the dtype, the data directory and its
free disk, the Hugging Face cache, the text-to-image model (where it is, whether it is there
offline) and its family profile, the CLIP model, the captioner (when ARPO_CAPTION_MODEL is
set), the LLM endpoint and the structured-output method it is asked for, and the MCP server's
image folders. An images-API renderer (``openai-images:MODEL``) is checked by its model list
(free), with its price per image and that its renders are not reproducible; no image is
rendered, since a render is paid for. Nothing is downloaded and no model is loaded: the model
checks are the same cheap ones :meth:`Toolbox.load_models` runs first, so with
``HF_HUB_OFFLINE=1`` a missing model is reported in about a second. The LLM gets one tiny
structured request (and, if the configured method is refused, one per other method, to name
one that works). Heavy libraries are imported inside the checks.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from arpo.api.results import Check, Diagnosis
from arpo.config import Settings
from arpo.errors import ArpoError

if TYPE_CHECKING:
    from arpo.tools.families import FamilyProfile
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

GIB = 1024**3
MIN_FREE_DISK = GIB // 2  # below this a run cannot store its images and checkpoints safely
LLM_CONNECT_TIMEOUT_S = 3.0
LLM_ANSWER_TIMEOUT_S = 20.0  # a local server may load the model for the first request
METHODS = ("function_calling", "json_schema", "json_mode")
LIBRARIES = ("torch", "torchvision", "diffusers", "transformers", "open_clip_torch")


def doctor(settings: Settings | None = None, *, toolbox: Toolbox | None = None) -> Diagnosis:
    """Check everything a run needs, in order; nothing is downloaded or loaded. A check that
    itself fails unexpectedly is reported as a failed check, never raised."""
    from arpo.tools.toolbox import Toolbox

    toolbox = toolbox or Toolbox(settings or Settings())
    settings = toolbox.settings
    checks: list[Check] = []
    checks.append(_guard("python", check_python))
    checks.append(_guard("libraries", check_libraries))
    device_check, device = _guard_with("device", lambda: check_device(settings))
    checks.append(device_check)
    t2i_check, profile = _guard_with("t2i model", lambda: check_t2i(toolbox))
    checks.append(t2i_check)
    if toolbox.hosted_t2i:
        checks.append(_guard("t2i cost", lambda: check_images_cost(toolbox, profile)))
    checks.append(_guard("family", lambda: check_family(toolbox, profile, t2i_check.ok)))
    diffusion = None if toolbox.hosted_t2i else profile  # the images API has no dtype
    checks.append(_guard("dtype", lambda: check_dtype(settings, device, diffusion)))
    checks.append(_guard("clip model", lambda: check_clip(toolbox)))
    if toolbox.caption_model is not None:
        checks.append(_guard("captioner", lambda: check_captioner(toolbox)))
    checks.append(_guard("data", lambda: check_home(settings)))
    checks.append(_guard("hub cache", check_hub_cache))
    checks.extend(_guard_many("llm", lambda: check_llm(settings)))
    checks.append(_guard("image roots", lambda: check_roots(settings)))
    return Diagnosis(checks=checks)


# --------------------------------------------------------------------------- the checks


def check_python() -> Check:
    version = platform.python_version()
    ok = sys.version_info >= (3, 11)
    return Check(
        check="python",
        ok=ok,
        detail=f"Python {version} ({sys.executable})",
        fix=None if ok else "arpo needs Python 3.11 or newer.",
    )


def check_libraries() -> Check:
    """Installed versions, read from package metadata (importing them costs seconds)."""
    versions: list[str] = []
    missing: list[str] = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    detail = ", ".join(versions) or "none of the model libraries"
    if missing:
        return Check(
            check="libraries",
            ok=False,
            detail=f"{detail}; missing: {', '.join(missing)}",
            fix=f"install them into this environment (pip install {' '.join(missing)}), "
            "or reinstall arpo with its dependencies.",
        )
    return Check(check="libraries", ok=True, detail=detail)


def check_device(settings: Settings) -> tuple[Check, str | None]:
    """The device ARPO_DEVICE picks, with the GPU's name and memory (system memory else)."""
    from arpo.tools.devices import resolve_device

    try:
        import torch
    except Exception as error:  # a broken install raises more than ImportError
        return Check(
            check="device",
            ok=False,
            detail=f"torch does not import ({type(error).__name__}: {error})",
            fix="install a torch build for this machine (https://pytorch.org/get-started).",
        ), None
    try:
        device = resolve_device(settings.device)
    except ArpoError as error:
        return Check(
            check="device", ok=False, detail=f"ARPO_DEVICE={settings.device}", fix=str(error)
        ), None
    setting = f"ARPO_DEVICE={settings.device}"
    if device == "cuda":
        index = torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        free, total = torch.cuda.mem_get_info(index)
        detail = (
            f"cuda: {name}, {total / GIB:.1f} GiB ({free / GIB:.1f} GiB free), "
            f"CUDA {torch.version.cuda}; {setting}"
        )
    elif device == "mps":
        detail = f"mps (Apple silicon, memory shared with the system: {_ram()}); {setting}"
    else:
        detail = f"cpu, {_ram()} memory; {setting}"
        if settings.device == "auto":
            detail += " (torch sees no CUDA GPU or MPS: real models render slowly here)"
    return Check(check="device", ok=True, detail=detail), device


def check_t2i(toolbox: Toolbox) -> tuple[Check, FamilyProfile | None]:
    """Where the text-to-image model is and whether it loads offline: the renderer builder's
    own cheap check (the diffusers one: a local folder, or a hub repo in the cache)."""
    settings = toolbox.settings
    if toolbox.hosted_t2i:
        return check_images_api(toolbox)
    builder, ref = toolbox.renderer_choice()
    preset = toolbox.preset
    name = toolbox.model_identity()["t2i"] or ref
    where = f"{name} (preset {settings.preset})" if preset else ref
    renderer = preset.renderer if preset else "diffusers"
    try:
        builder.check(ref)
    except ArpoError as error:
        return Check(
            check="t2i model", ok=False, detail=f"{where}: not available", fix=str(error)
        ), None
    if renderer != "diffusers":
        return Check(check="t2i model", ok=True, detail=f"{where}: the {renderer} renderer"), None
    profile = model_family(toolbox)
    path = Path(ref).expanduser()
    if path.is_dir():
        return Check(check="t2i model", ok=True, detail=f"{where}: local folder {path}"), profile
    if _hub_file(ref, "model_index.json"):
        detail = f"{where}: in the Hugging Face cache (available offline)"
        return Check(check="t2i model", ok=True, detail=detail), profile
    return Check(
        check="t2i model",
        ok=True,
        detail=f"{where}: not in the Hugging Face cache; the first run downloads it "
        "(not available offline until then)",
    ), profile


def check_images_api(toolbox: Toolbox) -> tuple[Check, FamilyProfile | None]:
    """An images-API renderer (``openai-images:MODEL``): its base URL and key set, the
    server reachable and the model in its model list (GET /models: free; a render would be
    paid for, so none is made)."""
    from arpo.tools.images_api import build_images_renderer, images_api_key

    ref = toolbox.settings.t2i_model
    where = f"{ref} (preset {toolbox.settings.preset})" if toolbox.preset else ref
    try:
        renderer = build_images_renderer(ref, toolbox.settings)
    except ArpoError as error:
        return Check(
            check="t2i model", ok=False, detail=f"{where}: not usable", fix=str(error)
        ), None
    renderer.close()
    where = f"{where} at {renderer.base_url}"
    profile = model_family(toolbox)
    status, listed, how = _models(renderer.base_url, images_api_key(toolbox.settings))
    if status is None:
        return Check(
            check="t2i model",
            ok=False,
            detail=f"{where}: unreachable ({how})",
            fix="check ARPO_T2I_BASE_URL and the network.",
        ), profile
    if status in (401, 403):
        return Check(
            check="t2i model",
            ok=False,
            detail=f"{where}: the server refused the key ({how})",
            fix="check ARPO_T2I_API_KEY (or OPENAI_API_KEY).",
        ), profile
    if listed is None:
        detail = (
            f"{where}: reachable ({how}); it serves no model list, so the model name is "
            "checked by the first render (a check here would pay for one)"
        )
        return Check(check="t2i model", ok=True, detail=detail), profile
    if renderer.model in listed:
        detail = f"{where}: reachable ({how}), {renderer.model} in its model list"
        return Check(check="t2i model", ok=True, detail=detail), profile
    return Check(
        check="t2i model",
        ok=True,
        detail=f"{where}: reachable ({how}), but {renderer.model} is not in its model list",
        fix="check the model name in ARPO_T2I_MODEL (a render of a model the server does "
        "not serve fails with HTTP 404).",
    ), profile


def check_images_cost(toolbox: Toolbox, profile: FamilyProfile | None) -> Check:
    """What an images-API run costs: the price per image at the default size (ARPO_T2I_PRICE
    or the model's list price), the most a run at the default budget spends, and that its
    renders are not reproducible."""
    from arpo.graph.context import DEFAULT_RENDER_BUDGET
    from arpo.tools.images_api import build_images_renderer, size_text
    from arpo.tools.t2i import RenderParams

    renderer = build_images_renderer(toolbox.settings.t2i_model, toolbox.settings)
    renderer.close()
    side = profile.native_size if profile else 1024
    params = RenderParams(
        steps=renderer.profile.steps, guidance=renderer.profile.guidance, width=side, height=side
    )
    price = renderer.price_per_image(params)
    seedless = (
        "renders are not reproducible: the images API takes no seed, so a replay draws new "
        "samples (runs and reports say so)"
    )
    if price is None:
        return Check(
            check="t2i cost",
            ok=True,
            detail=f"no price known for {renderer.model}: runs are not metered; {seedless}",
            fix="set ARPO_T2I_PRICE (US dollars per image) to meter runs and use --max-cost.",
        )
    source = (
        "ARPO_T2I_PRICE"
        if toolbox.settings.t2i_price is not None
        else f"list price at quality {renderer.quality}, {size_text(renderer.served_size(params))}"
    )
    most = price * DEFAULT_RENDER_BUDGET
    return Check(
        check="t2i cost",
        ok=True,
        detail=f"${price:.3f} per image ({source}): at most ${most:.2f} per run at the default "
        f"budget of {DEFAULT_RENDER_BUDGET} renders; {seedless}",
    )


def model_family(toolbox: Toolbox) -> FamilyProfile | None:
    """The text-to-image model's family as the Toolbox renders by it (``ARPO_FAMILY``, or
    read from the model's ``model_index.json`` without loading it); None while it cannot be
    read yet (a hub model not downloaded)."""
    from arpo.tools.families import UNKNOWN

    profile = toolbox.profile
    return None if profile.name == UNKNOWN else profile


def check_family(toolbox: Toolbox, profile: FamilyProfile | None, available: bool) -> Check:
    """The family profile the model's pipeline class picks, and its key values."""
    from arpo.tools.families import UNKNOWN

    if profile is None:
        renderer = toolbox.preset.renderer if toolbox.preset else "diffusers"
        if not available:
            detail = "unknown: the model is not available (above)"
        elif renderer != "diffusers":
            detail = f"none: the {renderer} renderer is not a diffusers pipeline"
        else:
            detail = "not known until the model is downloaded (read from its model_index.json)"
        return Check(check="family", ok=True, detail=detail)
    values = _family_values(profile)
    if profile.name == UNKNOWN:
        return Check(
            check="family",
            ok=True,
            detail=f"no profile names this pipeline; SD 1.x values are used: {values}",
            fix="set ARPO_FAMILY to the family it belongs to, if one fits.",
        )
    return Check(check="family", ok=True, detail=f"{profile.name} ({profile.title}): {values}")


def check_dtype(settings: Settings, device: str | None, profile: FamilyProfile | None) -> Check:
    """The diffusion dtype for this device, against what the model's family is meant for
    (Flux and SD3 in float16 render NaN, decoded as black images)."""
    from arpo.tools.devices import resolve_dtype

    if device is None:
        return Check(check="dtype", ok=False, detail="no device", fix="fix the device first.")
    setting = f"ARPO_DTYPE={settings.dtype}"
    try:
        dtype = str(resolve_dtype(device, settings.dtype)).removeprefix("torch.")
    except ArpoError as error:
        return Check(check="dtype", ok=False, detail=setting, fix=str(error))
    detail = f"{dtype} on {device} ({setting})"
    if profile is None:
        return Check(check="dtype", ok=True, detail=detail)
    wanted = profile.dtype_for(device)
    if wanted == dtype:
        return Check(check="dtype", ok=True, detail=f"{detail}, as {profile.name} wants")
    if dtype == "float16" and wanted != "float16":
        return Check(
            check="dtype",
            ok=False,
            detail=f"{detail}, but {profile.name} is meant for {wanted} on {device}: "
            "in float16 it can render NaN (black images)",
            fix=f"set ARPO_DTYPE={wanted}.",
        )
    return Check(check="dtype", ok=True, detail=f"{detail}; {profile.name} prefers {wanted}")


def check_clip(toolbox: Toolbox) -> Check:
    from arpo.tools.clip import check_clip_ref
    from arpo.tools.loading import hub_offline

    model, pretrained = toolbox.clip_choice()
    name = toolbox.model_identity()["clip"] or model
    where = f"{name} (preset {toolbox.settings.preset})" if toolbox.preset else name
    try:
        check_clip_ref(model, pretrained)
    except ArpoError as error:
        return Check(check="clip model", ok=False, detail=f"{where}: not available", fix=str(error))
    if model.startswith("local-dir:"):
        return Check(check="clip model", ok=True, detail=f"{where}: local folder")
    if hub_offline() or _clip_cached(model, pretrained):  # offline, the check needs a cache
        return Check(check="clip model", ok=True, detail=f"{where}: available offline")
    return Check(
        check="clip model",
        ok=True,
        detail=f"{where}: not in the local cache; the first run downloads it",
    )


def check_captioner(toolbox: Toolbox) -> Check:
    """Where the captioner (ARPO_CAPTION_MODEL, else the preset's) is and whether it loads
    offline (a local folder, or a hub repo in the cache), by the captioner's own cheap check."""
    from arpo.tools.captioner import check_captioner_ref

    ref = toolbox.caption_model or ""
    setting = toolbox.settings.caption_model
    where = f"ARPO_CAPTION_MODEL={ref}" if setting else f"the preset's captioner {ref}"
    try:
        check_captioner_ref(ref)
    except ArpoError as error:
        return Check(check="captioner", ok=False, detail=f"{where}: not available", fix=str(error))
    path = Path(ref).expanduser()
    if path.is_dir():
        return Check(check="captioner", ok=True, detail=f"{where}: local folder {path}")
    if _hub_file(ref, "config.json"):
        detail = f"{where}: in the Hugging Face cache (available offline)"
        return Check(check="captioner", ok=True, detail=detail)
    return Check(
        check="captioner",
        ok=True,
        detail=f"{where}: not in the Hugging Face cache; the first caption downloads it "
        "(not available offline until then)",
    )


def check_home(settings: Settings) -> Check:
    """ARPO_HOME: writable, and the free disk where it is."""
    home = settings.home
    existing = home
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    state = "" if home.is_dir() else " (created on first use)"
    detail = f"ARPO_HOME={home}{state}, {free / GIB:.1f} GiB free"
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check(
            check="data",
            ok=False,
            detail=f"{detail}; {existing} is not writable",
            fix="set ARPO_HOME to a folder you can write to.",
        )
    if free < MIN_FREE_DISK:
        return Check(
            check="data",
            ok=False,
            detail=f"{detail}: too little for runs' images and checkpoints",
            fix="free some disk there (`arpo gc` removes unused images), or set ARPO_HOME "
            "to a disk with space.",
        )
    return Check(check="data", ok=True, detail=detail)


def check_hub_cache() -> Check:
    """Where hub models are (or would be downloaded), and whether downloading is allowed."""
    from huggingface_hub import constants

    from arpo.tools.loading import hub_offline

    cache = Path(constants.HF_HUB_CACHE)
    existing = cache
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    free = shutil.disk_usage(existing).free / GIB
    mode = (
        "HF_HUB_OFFLINE=1: nothing is downloaded"
        if hub_offline()
        else "online: a model missing from it is downloaded on first use"
    )
    return Check(check="hub cache", ok=True, detail=f"{cache} ({free:.1f} GiB free); {mode}")


def check_llm(settings: Settings) -> list[Check]:
    """The LLM endpoint: reachable (a GET of its model list, 3 s), then one tiny structured
    request with the configured method; a method it refuses gets the others tried, so the fix
    names one that works. No LLM configured is fine: the offline strategy needs none."""
    if not settings.llm_configured:
        return [
            Check(
                check="llm",
                ok=True,
                detail="none configured: runs use the offline strategy (CLIP over the phrase "
                "vocabulary); set ARPO_LLM_BASE_URL (e.g. http://localhost:11434/v1 for "
                "Ollama) or OPENAI_API_KEY for the vanilla and enhanced strategies",
            )
        ]
    endpoint = (settings.llm_base_url or "https://api.openai.com/v1").rstrip("/")
    where = f"{settings.llm_model} at {endpoint}"
    reached, how = _reachable(endpoint, settings)
    if not reached:
        return [
            Check(
                check="llm",
                ok=False,
                detail=f"{where}: unreachable ({how})",
                fix="start the server or correct ARPO_LLM_BASE_URL; or use --strategy offline.",
            )
        ]
    checks = [Check(check="llm", ok=True, detail=f"{where}: reachable ({how})")]
    method = settings.llm_structured_method
    problem = _structured(settings, method)
    if isinstance(problem, _Works):
        checks.append(
            Check(
                check="llm structured output",
                ok=True,
                detail=f"{method} works (ARPO_LLM_STRUCTURED_METHOD){problem.note}",
            )
        )
        return checks
    detail, refused = problem
    if not refused:  # not about the method: the key, the model name, a timeout...
        checks.append(
            Check(
                check="llm structured output",
                ok=False,
                detail=f"a tiny {method} request failed",
                fix=detail,
            )
        )
        return checks
    working = next(
        (m for m in METHODS if m != method and isinstance(_structured(settings, m), _Works)), None
    )
    fix = (
        f"set ARPO_LLM_STRUCTURED_METHOD={working} (it works with this server)."
        if working
        else "use a model that supports structured output, or --strategy offline."
    )
    checks.append(
        Check(
            check="llm structured output",
            ok=False,
            detail=f"{method} is refused: {detail}",
            fix=fix,
        )
    )
    return checks


def check_roots(settings: Settings) -> Check:
    """The folders ``arpo serve`` reads images from (as its start-up log says)."""
    from arpo.config import describe_roots, effective_roots

    try:
        described = describe_roots(settings)
        roots = effective_roots(settings)
    except ArpoError as error:
        return Check(check="image roots", ok=False, detail="refused", fix=str(error))
    missing = [root for root in roots if not root.is_dir()]
    if settings.allowed_roots is not None and missing:
        return Check(
            check="image roots",
            ok=False,
            detail=described,
            fix=f"create {', '.join(map(str, missing))} or correct ARPO_ALLOWED_ROOTS.",
        )
    if missing:
        described = described.replace("(missing)", "(missing: created when the server starts)")
    return Check(check="image roots", ok=True, detail=described)


# --------------------------------------------------------------------------- helpers


class _Ping(BaseModel):
    answer: str


class _Works(BaseModel):
    """A structured request that worked; ``note`` says what the probe had to leave out."""

    note: str = ""


def _structured(settings: Settings, method: str) -> _Works | tuple[str, bool]:
    """Whether the LLM answers a tiny structured request with ``method``; if not, what went
    wrong and whether it is the method that was refused (HTTP 400/422, or an answer that
    does not parse). A refused temperature is left out, as runs leave it out, and noted."""
    import openai

    from arpo.errors import LLMOutputError
    from arpo.tools.chat import StructuredChat, server_message

    quick = settings.model_copy(
        update={
            "llm_structured_method": method,
            "llm_max_retries": 0,
            "llm_timeout_s": min(settings.llm_timeout_s, LLM_ANSWER_TIMEOUT_S),
        }
    )
    chat = StructuredChat.from_settings(quick)
    try:
        chat.ask(_Ping, [chat.user_message("Reply with answer set to the word ok.")])
    except LLMOutputError:
        return "its answers do not parse as the requested structure", True
    except ArpoError as error:
        cause = error.__cause__
        if isinstance(cause, openai.APIStatusError) and cause.status_code in (400, 422):
            return f"HTTP {cause.status_code}: {server_message(cause)[:160]}", True
        return str(error), False
    if settings.llm_temperature is not None and chat.temperature is None:
        return _Works(note="; temperature left out: this model takes only its default")
    return _Works()


def _reachable(endpoint: str, settings: Settings) -> tuple[bool, str]:
    """Whether anything answers HTTP at the endpoint (GET /models, any status), quickly."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    status, _, how = _models(endpoint, key or os.environ.get("OPENAI_API_KEY"))
    return status is not None, how


def _models(endpoint: str, key: str | None) -> tuple[int | None, set[str] | None, str]:
    """GET {endpoint}/models, quickly: the HTTP status (None: no answer), the model ids it
    lists (None: no list), and what happened in words."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/models", headers={"Authorization": f"Bearer {key or 'not-needed'}"}
    )
    began = time.perf_counter()
    body = b""
    try:
        with urllib.request.urlopen(request, timeout=LLM_CONNECT_TIMEOUT_S) as response:
            status, body = response.status, response.read(1_000_000)
    except urllib.error.HTTPError as error:  # an answer, whatever it says
        status = error.code
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return None, None, f"{type(reason).__name__}: {reason}"[:200]
    how = f"HTTP {status} in {time.perf_counter() - began:.2f} s"
    try:
        entries = json.loads(body)["data"] if status == 200 else None
        listed = {str(entry["id"]) for entry in entries} if isinstance(entries, list) else None
    except (ValueError, KeyError, TypeError):
        listed = None
    return status, listed, how


def _hub_file(repo: str, filename: str) -> str | None:
    """A file of a hub repo in the local cache, or None; never touches the network."""
    from arpo.tools.loading import looks_like_path

    if looks_like_path(repo) or repo.count("/") != 1:
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename)
    except Exception:  # an invalid repo id
        return None
    return found if isinstance(found, str) else None


def _clip_cached(model: str, pretrained: str | None) -> bool:
    """Whether CLIP weights are on this machine (a local file, or in the hub cache)."""
    if model.startswith("hf-hub:"):
        return _hub_file(model.removeprefix("hf-hub:"), "open_clip_config.json") is not None
    if pretrained and Path(pretrained).expanduser().is_file():
        return True
    import open_clip

    entry = (open_clip.get_pretrained_cfg(model, pretrained or "").get("hf_hub") or "").strip("/")
    parts = entry.split("/")
    if len(parts) < 2:
        return False
    names = tuple(parts[2:]) or ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    return any(_hub_file("/".join(parts[:2]), name) for name in names)


def _family_values(profile: FamilyProfile) -> str:
    limits = "/".join(str(e.max_tokens) for e in profile.text_encoders)
    negative = {"native": "yes", "true_cfg": "via true_cfg_scale", "none": "no"}[
        profile.negative_prompt
    ]
    return (
        f"{profile.native_size} px (multiple of {profile.size_multiple}), {profile.steps} steps, "
        f"guidance {profile.guidance:g}, negative prompt {negative}, tokens {limits}, "
        f"{profile.prompt_style}"
    )


def _ram() -> str:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{total / GIB:.1f} GiB"


def _guard(name: str, check: Callable[[], Check]) -> Check:
    return _guard_many(name, lambda: [check()])[0]


def _guard_with(name: str, check: Callable[[], tuple[Check, Any]]) -> tuple[Check, Any]:
    try:
        return check()
    except Exception as error:
        return _broken(name, error), None


def _guard_many(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    try:
        return check()
    except Exception as error:
        return [_broken(name, error)]


def _broken(name: str, error: Exception) -> Check:
    log.debug("doctor check %s failed", name, exc_info=True)
    return Check(
        check=name,
        ok=False,
        detail=f"the check itself failed: {type(error).__name__}: {error}"[:300],
        fix="rerun with --verbose and report it.",
    )
