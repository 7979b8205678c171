"""Process-wide settings, read from ``ARPO_*`` environment variables and a ``.env`` file.

Settings say *where* things are (models, endpoints, the data directory); per-run choices
(strategy, iterations, sizes) are :class:`arpo.graph.context.RunOptions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from arpo.errors import InvalidOptionError, InvalidSettingError, SettingProblem

Device = Literal["auto", "cpu", "cuda", "mps"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ARPO_", env_file=".env", extra="ignore", validate_default=True
    )

    def __init__(self, **values: Any) -> None:
        """Read the environment (and ``.env``) with ``values`` on top. A value arpo cannot use
        raises :class:`~arpo.errors.InvalidSettingError` naming the setting (``ARPO_DEVICE``,
        or the keyword it was given as), the value and what it may be."""
        try:
            super().__init__(**values)
        except ValidationError as error:
            problems = setting_problems(error, given=values)
            raise InvalidSettingError(describe_setting_problems(problems), problems) from None
        except SettingsError as error:  # a JSON-valued variable that is not JSON
            problems = [_unparsed(error)]
            raise InvalidSettingError(describe_setting_problems(problems), problems) from None

    home: Path = Field(
        default_factory=lambda: Path(user_data_dir("arpo", appauthor=False)),
        description="Data directory: runs, the artifact store, checkpoints, built presets.",
    )
    preset: str = Field(
        "none",
        description="'demo': the offline demo world (procedural renderer, small trained CLIP); "
        "'tiny': tiny random-weight models (a smoke test: its images are noise); 'tiny-sdxl', "
        "'tiny-sd3', 'tiny-flux': the same for those model families; 'none': the configured "
        "models. Any preset JSON in arpo/tools/presets is a valid name.",
    )

    t2i_model: str = Field(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        description="Text-to-image model: a Hugging Face hub id or a local diffusers directory.",
    )
    clip_model: str = Field("ViT-L-14", description="open_clip architecture name.")
    clip_pretrained: str = Field(
        "openai", description="open_clip pretrained tag, or a path to a local checkpoint file."
    )
    device: Device = Field("auto", description="Torch device; auto picks cuda, then mps, then cpu.")
    threads: int | None = Field(
        None,
        ge=1,
        description="Torch CPU threads; unset: OMP_NUM_THREADS when set, else the cores free for "
        "this process (one on a busy machine: oversubscribed threads wait for each other).",
    )
    dtype: Dtype = Field(
        "auto",
        description="Diffusion dtype; auto takes the model family's for the device (bfloat16 "
        "for SD3 and Flux, float16 for SD 1/2 and SDXL on a GPU; float32 on the CPU).",
    )
    family: str | None = Field(
        None,
        description="Model family profile to render by (sd1, sdxl, flux-dev, ...); unset: "
        "detected from the model's model_index.json.",
    )
    family_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='Family profile values to replace, a JSON object, e.g. {"steps": 8, '
        '"guidance": 2.0}.',
    )
    true_cfg_scale: float = Field(
        4.0,
        gt=1.0,
        description="True-CFG scale for families that need it to use a negative prompt (Flux); "
        "applied only when a negative prompt is given.",
    )
    offload: Literal["none", "model", "sequential"] = Field(
        "none",
        description="CPU offload: model (one component on the GPU at a time), sequential "
        "(layer by layer: least memory, slowest), none.",
    )
    vae_slicing: bool = Field(False, description="Decode a batch one image at a time.")
    vae_tiling: bool = Field(False, description="Decode large images in tiles.")
    attention_slicing: bool = Field(
        False, description="Compute attention in slices (less memory, slower)."
    )
    variant: Literal["auto", "fp16", "none"] = Field(
        "auto",
        description="Weight variant: auto loads fp16 weights when rendering in float16 and the "
        "model has them; fp16 requires them; none never.",
    )
    clip_dtype: Dtype = Field(
        "auto", description="CLIP dtype; auto: float16 on CUDA, float32 on the CPU and MPS."
    )

    caption_model: str | None = Field(
        None,
        description="Image-to-text model for the first prompt when no LLM captions it: a "
        "Hugging Face hub id or a local transformers folder (BLIP, e.g. "
        "Salesforce/blip-image-captioning-large, or an AutoModelForImageTextToText model); "
        "its caption is completed with vocabulary phrases. Unset: the preset's captioner (the "
        "demo preset ships one), else CLIP interrogation alone; 'none': no captioner at all.",
    )
    caption_prompt: str | None = Field(
        None,
        description="Text given to the captioner with the image: BLIP continues it (e.g. 'a "
        "picture of'); a chat model with a chat template gets it as its instruction. Unset: "
        "none (BLIP captions unconditionally).",
    )
    caption_max_new_tokens: int = Field(
        60, ge=1, le=512, description="Most tokens the captioner writes per caption."
    )
    caption_dtype: Dtype = Field(
        "auto", description="Captioner dtype; auto: float16 on CUDA and MPS, float32 on the CPU."
    )

    llm_model: str = Field("gpt-4o-mini", description="Chat model name (must accept images).")
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (Ollama)."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="API key; OPENAI_API_KEY is used when this is unset."
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for one LLM reply.")
    llm_max_retries: int = Field(2, ge=0, description="Retries on connection errors and 5xx.")
    llm_structured_method: Literal["function_calling", "json_schema", "json_mode"] = Field(
        "function_calling",
        description="How structured output is requested; function_calling works on most servers.",
    )
    llm_temperature: float | None = Field(
        0.7,
        ge=0,
        le=2,
        description="Sampling temperature sent with each LLM request; 'none' leaves it out. It "
        "is left out anyway for models that take only their default (OpenAI o-series and "
        "gpt-5 reasoning models), and once a server has refused it.",
    )
    llm_image_max_side: int = Field(
        768,
        ge=64,
        le=4096,
        description="Longest side in pixels of the images sent to the LLM (JPEG, quality 90); "
        "smaller costs fewer tokens.",
    )

    # -- hosted text-to-image (ARPO_T2I_MODEL=openai-images:MODEL, arpo.tools.images_api) ----
    t2i_base_url: str | None = Field(
        None,
        description="Images API endpoint for ARPO_T2I_MODEL=openai-images:MODEL; unset: "
        "OpenAI's (https://api.openai.com/v1).",
    )
    t2i_api_key: SecretStr | None = Field(
        None, description="Images API key; OPENAI_API_KEY is used when this is unset."
    )
    t2i_concurrency: int = Field(
        4, ge=1, description="Images API requests in flight at once (one iteration's renders)."
    )
    t2i_timeout_s: float = Field(
        120.0, gt=0, description="Seconds to wait for one image from the images API."
    )
    t2i_max_retries: int = Field(
        4,
        ge=0,
        description="Retries of an image request answered 429 or 5xx (backoff, "
        "Retry-After honoured).",
    )
    t2i_quality: str | None = Field(
        None,
        description="Images API quality (gpt-image-1: low, medium, high; dall-e-3: standard, "
        "hd); unset: medium for gpt-image-1, standard for dall-e-3.",
    )
    t2i_style: str | None = Field(None, description="Images API style (dall-e-3: vivid, natural).")
    t2i_price: float | None = Field(
        None,
        ge=0,
        description="US dollars per image from the images API, for cost metering and "
        "--max-cost; unset: the list price of gpt-image-1, dall-e-3 or dall-e-2 at the quality "
        "and size rendered (other models: not metered).",
    )

    render_batch_size: int = Field(
        4, ge=1, description="Images per diffusion call; lower it if the GPU runs out of memory."
    )
    vocabulary_dir: Path | None = Field(
        None,
        description="Folder of <category>.txt phrase lists replacing the packaged vocabulary.",
    )

    max_image_pixels: int = Field(
        40_000_000, gt=0, description="Refuse input images with more pixels (decompression bombs)."
    )

    # -- batches on a Ray cluster ----------------------------------------------------------
    ray_address: str | None = Field(
        None,
        description="Ray cluster that batch work runs on with --ray: 'auto' (the cluster "
        "`ray start --head` started on this machine) or ray://HOST:10001 / HOST:6379; unset: "
        "a local Ray instance for the batch alone.",
    )

    # -- MCP server (arpo serve) ----------------------------------------------------------
    allowed_roots: Annotated[list[Path] | None, NoDecode] = Field(
        None,
        description="Folders whose images the MCP server may read (a JSON list, or paths "
        "separated by the OS path separator); unset: ARPO_HOME/inbox only. Relative entries "
        "are taken from the working directory at startup.",
    )
    allow_urls: bool = Field(
        False, description="Let the MCP server fetch http(s) image URLs (public addresses only)."
    )
    app_view: bool = Field(
        True,
        description="Offer the MCP server's interactive view (MCP Apps, ui://arpo/run) to "
        "clients that negotiate it; false: no client sees it.",
    )
    auth_token: SecretStr | None = Field(
        None,
        description="Bearer token the MCP server's HTTP transport requires; needed to bind an "
        "address other than 127.0.0.1.",
    )

    @field_validator("preset", mode="after")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        """'none' or the name of a packaged preset (a JSON file in arpo/tools/presets)."""
        from arpo.tools.presets import PRESETS  # light: no torch, no diffusers

        if value != "none" and value not in PRESETS:
            raise ValueError(f"not a preset; choose one of none, {', '.join(PRESETS)}")
        return value

    @field_validator("auth_token", mode="after")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Empty means unset; a token of spaces could never match (clients' tokens are read
        stripped), so it is refused; spaces around a token are dropped, as clients' are."""
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw and not raw.strip():
            raise ValueError(
                "the token is only whitespace, which no client can send; set a real token "
                "(e.g. ARPO_AUTH_TOKEN=$(openssl rand -hex 32)) or leave it unset"
            )
        return SecretStr(raw.strip()) if raw.strip() else None

    @field_validator("caption_model", "caption_prompt", "ray_address", mode="after")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        """``ARPO_CAPTION_MODEL=`` (empty) means no captioner, as leaving it unset does."""
        return (value.strip() or None) if value is not None else None

    @field_validator("llm_temperature", mode="before")
    @classmethod
    def _temperature_none(cls, value: object) -> object:
        """``ARPO_LLM_TEMPERATURE=none`` (or empty) leaves the temperature out of requests."""
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        """Accept a JSON list or an os.pathsep-separated string from the environment."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            import json

            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(
                    'not a JSON list; write ["/a/folder", "/another"], or folders separated '
                    f"by {os.pathsep!r}"
                ) from None
        return [part for part in text.split(os.pathsep) if part.strip()]

    @field_validator("allowed_roots", mode="after")
    @classmethod
    def _expand_roots(cls, value: list[Path] | None) -> list[Path] | None:
        return None if value is None else [root.expanduser() for root in value]

    @property
    def image_roots(self) -> list[Path]:
        """The image folders as configured: ARPO_ALLOWED_ROOTS, else ``inbox_dir``. Not yet
        resolved or checked: the server confines paths to :func:`effective_roots`."""
        if self.allowed_roots is not None:
            return list(self.allowed_roots)
        return [self.inbox_dir]

    @property
    def inbox_dir(self) -> Path:
        """ARPO_HOME/inbox: the one folder the MCP server reads images from by default."""
        return self.home / "inbox"

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def llm_configured(self) -> bool:
        """True when an LLM endpoint or key is set, so LLM strategies can run."""
        return bool(self.llm_base_url or self.llm_api_key or os.environ.get("OPENAI_API_KEY"))

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def store_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def remixes_dir(self) -> Path:
        return self.home / "remixes"

    @property
    def checkpoint_db(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def presets_dir(self) -> Path:
        return self.home / "presets"


# --------------------------------------------------------------------------- bad values

_SECRET_FIELDS = frozenset({"llm_api_key", "auth_token"})


def setting_problems(error: ValidationError, given: Mapping[str, Any]) -> list[SettingProblem]:
    """Each failed setting of ``error``: its field, the value as given (None for secrets),
    why it is refused (with the valid values of a choice), and whether it came from
    ``given`` (keywords, options) rather than the environment."""
    problems: list[SettingProblem] = []
    for item in error.errors():
        name = str(item["loc"][0]) if item.get("loc") else "setting"
        if any(problem.name == name for problem in problems):
            continue
        value = None if name in _SECRET_FIELDS else item.get("input")
        problems.append(SettingProblem(name, value, _reason(name, item), name in given))
    return problems


def _unparsed(error: SettingsError) -> SettingProblem:
    """pydantic-settings says only 'error parsing value for field "x" from source "..."'."""
    import re

    found = re.search(r'field "(\w+)"', str(error))
    name = found.group(1) if found else "setting"
    value = None if name in _SECRET_FIELDS else os.environ.get(f"ARPO_{name.upper()}")
    return SettingProblem(name, value, "not valid JSON; this setting takes a JSON value", False)


def describe_setting_problems(
    problems: list[SettingProblem], labels: Mapping[str, str] | None = None
) -> str:
    """One line: ``ARPO_DEVICE='gpu': choose one of auto, cpu, cuda, mps``; a setting given
    as a keyword is named by ``labels`` (a CLI option: ``--preset 'bogus': ...``), else by
    its keyword."""
    return "; ".join(_describe(problem, labels or {}) for problem in problems)


def _describe(problem: SettingProblem, labels: Mapping[str, str]) -> str:
    if problem.given:
        label = labels.get(problem.name, problem.name)
    else:
        label = f"ARPO_{problem.name.upper()}"
    joiner = " " if label.startswith("-") else "="
    value = problem.value
    shown = "" if value is None else joiner + repr(str(value) if isinstance(value, Path) else value)
    return f"{label}{shown}: {problem.reason}"


def _reason(name: str, item: Mapping[str, Any]) -> str:
    choices = _choices(name)
    if item.get("type") == "literal_error" and choices:
        return f"not a valid {name.replace('_', ' ')}; choose one of {', '.join(choices)}"
    message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _choices(name: str) -> tuple[str, ...]:
    """The values a Literal-typed setting accepts (empty for other types)."""
    field = Settings.model_fields.get(name)
    annotation = field.annotation if field else None
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is Literal:
            return tuple(str(choice) for choice in get_args(candidate))
    return ()


# --------------------------------------------------------------------------- image roots


def effective_roots(settings: Settings) -> list[Path]:
    """The real, absolute folders a remote caller's image paths are confined to.

    ARPO_ALLOWED_ROOTS when set, else ``ARPO_HOME/inbox``. Relative entries (and a relative
    ARPO_HOME) are taken from the working directory at the time of the call: the server calls
    this once, at startup. A root that is the filesystem root, the user's home directory or a
    folder containing it is refused with :class:`InvalidOptionError`, unless the user wrote
    exactly such a path in ARPO_ALLOWED_ROOTS as an absolute path (``/``, ``~``, ``/home``):
    that is an explicit choice, whereas ``.`` started from ``/`` (MCP clients such as Claude
    Desktop start servers there), a ``..`` or a symbolic link reaching one is not.
    """
    explicit = settings.allowed_roots is not None
    entries = list(settings.allowed_roots) if explicit else [settings.inbox_dir]
    cwd = Path.cwd()
    homes = _home_dirs()
    roots: list[Path] = []
    for entry in entries:
        absolute = entry if entry.is_absolute() else cwd / entry
        real = Path(os.path.realpath(absolute))
        what = _broad(real, homes)
        named = (
            explicit
            and entry.is_absolute()
            and ".." not in entry.parts
            and _broad(Path(os.path.normpath(entry)), homes) is not None
        )
        if what is not None and not named:
            raise InvalidOptionError(_broad_root_message(entry, real, what, explicit, cwd))
        if real not in roots:
            roots.append(real)
    return roots


def describe_roots(settings: Settings) -> str:
    """One line for the server's startup log: where image paths may point, whether URLs are
    fetched. Raises like :func:`effective_roots`."""
    roots = effective_roots(settings)
    listed = ", ".join(f"{root}{'' if root.is_dir() else ' (missing)'}" for root in roots)
    source = "ARPO_ALLOWED_ROOTS" if settings.allowed_roots is not None else "default"
    urls = (
        "on (public addresses only)"
        if settings.allow_urls
        else "off (ARPO_ALLOW_URLS=true fetches public ones)"
    )
    return f"image paths confined to: {listed or '(none)'} [{source}]; image URLs: {urls}"


def _home_dirs() -> list[Path]:
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no password entry
        return []
    return list(dict.fromkeys([home, Path(os.path.realpath(home))]))


def _broad(path: Path, homes: list[Path]) -> str | None:
    """What makes ``path`` too broad a root to take implicitly, or None."""
    if path.parent == path:
        return "the filesystem root"
    if path in homes:
        return "your home directory"
    if any(path in home.parents for home in homes):
        return "a folder that contains your home directory"
    return None


def _broad_root_message(entry: Path, real: Path, what: str, explicit: bool, cwd: Path) -> str:
    if not explicit:
        how = f"the default image folder ARPO_HOME/inbox ({entry}) resolves to {real}"
    elif not entry.is_absolute():
        how = (
            f"the ARPO_ALLOWED_ROOTS entry {str(entry)!r} is relative, and from the working "
            f"directory {cwd} (where the server was started) it resolves to {real}"
        )
    else:
        how = f"the ARPO_ALLOWED_ROOTS entry {str(entry)!r} resolves to {real}"
    return (
        f"refusing to serve images from {real}: {how}, {what}, so any file under it could be "
        "read. Name the folder you mean in ARPO_ALLOWED_ROOTS as an absolute path, e.g. "
        "ARPO_ALLOWED_ROOTS=~/Pictures (writing such a broad folder itself, e.g. "
        "ARPO_ALLOWED_ROOTS=/, is taken as your explicit choice)."
    )
