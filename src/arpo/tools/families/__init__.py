"""Model families as data: what each text-to-image family needs to render right.

One JSON file per family beside this module (the way open_clip keeps architectures): native
size and size multiple, default steps and guidance, the dtype per device, how it takes a
negative prompt, its text encoders' token limits, the prompt style the LLM and remix should
write, and whether its pipeline ships a safety checker. :func:`detect_family` picks one from a
diffusers model's ``model_index.json`` (the pipeline class) and, where one class serves several
families, from hints in the JSON (``detect``: words in the model's name, values in a component's
config). Nothing here imports torch or diffusers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from arpo.errors import InvalidOptionError

NegativePrompt = Literal["native", "true_cfg", "none"]
PromptStyle = Literal["tags", "sentences"]

# the profile for a pipeline class no family names: SD 1.x-like defaults, said so in the run
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TextEncoder:
    kind: str  # clip, t5, gemma, word (a word-level vocabulary: the demo CLIP's) ...
    max_tokens: int  # what the pipeline feeds it; the rest of a prompt is cut or unseen


@dataclass(frozen=True)
class FamilyProfile:
    name: str
    title: str
    pipelines: tuple[str, ...]
    native_size: int  # side of the square whose area the family is trained at
    size_multiple: int
    steps: int
    guidance: float
    dtype: dict[str, str]  # device -> float16 | bfloat16 | float32
    negative_prompt: NegativePrompt  # native; true_cfg (Flux: needs true_cfg_scale > 1); none
    text_encoders: tuple[TextEncoder, ...]
    prompt_style: PromptStyle
    safety_checker: bool  # whether the pipeline ships one (arpo loads it without)
    detect: dict[str, Any] = field(default_factory=dict)

    @property
    def token_limit(self) -> int:
        """The fewest tokens any of its text encoders reads: a prompt within it is read whole."""
        return min(encoder.max_tokens for encoder in self.text_encoders)

    def dtype_for(self, device: str) -> str:
        return self.dtype.get(device, "float32")

    def with_overrides(self, overrides: dict[str, Any]) -> FamilyProfile:
        """This profile with some values replaced (``ARPO_FAMILY_OVERRIDES``); unknown names
        are an error naming the known ones."""
        known = {f.name for f in fields(self)} - {"name", "pipelines", "detect"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidOptionError(
                f"unknown family value(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        values = dict(overrides)
        try:
            if "text_encoders" in values:
                values["text_encoders"] = _encoders(values["text_encoders"])
            for name in ("native_size", "size_multiple", "steps"):
                if name in values:
                    values[name] = _whole(values[name], name)
            if "guidance" in values:
                values["guidance"] = float(values["guidance"])
            if "dtype" in values:
                values["dtype"] = {**self.dtype, **dict(values["dtype"])}
            if "pipelines" in values:
                values["pipelines"] = tuple(values["pipelines"])
        except (TypeError, ValueError, KeyError) as error:
            raise InvalidOptionError(
                f"family value(s) {json.dumps(overrides)} (ARPO_FAMILY_OVERRIDES) are not "
                f"usable: {error}."
            ) from error
        profile = replace(self, **values)
        profile.validate("ARPO_FAMILY_OVERRIDES")
        return profile

    def validate(self, source: str = "the family profile") -> None:
        """Refuse values no render could use, naming where they came from."""
        problems = []
        if self.size_multiple < 1 or self.native_size < self.size_multiple:
            problems.append(
                f"native_size {self.native_size} and size_multiple {self.size_multiple} must "
                "be positive, the size at least the multiple"
            )
        if self.steps < 1:
            problems.append(f"steps {self.steps} must be at least 1")
        if self.guidance < 0:
            problems.append(f"guidance {self.guidance} must not be negative")
        if self.negative_prompt not in ("native", "true_cfg", "none"):
            problems.append(
                f"negative_prompt '{self.negative_prompt}' must be native, true_cfg or none"
            )
        if self.prompt_style not in ("tags", "sentences"):
            problems.append(f"prompt_style '{self.prompt_style}' must be tags or sentences")
        bad = {k: v for k, v in self.dtype.items() if v not in ("float16", "bfloat16", "float32")}
        if bad:
            problems.append(f"dtype {bad} must be float16, bfloat16 or float32")
        if problems:
            raise InvalidOptionError(f"{source}: " + "; ".join(problems) + ".")

    def summary(self) -> str:
        """One line for people: ``FLUX.1 [dev] (1024 px, 28 steps, guidance 3.5)``."""
        return summarize(self.describe())

    def describe(self) -> dict[str, Any]:
        """The values a run records and a report shows."""
        return {
            "family": self.name,
            "title": self.title,
            "native_size": self.native_size,
            "size_multiple": self.size_multiple,
            "steps": self.steps,
            "guidance": self.guidance,
            "negative_prompt": self.negative_prompt,
            "token_limits": [e.max_tokens for e in self.text_encoders],
            "prompt_style": self.prompt_style,
        }


def summarize(described: dict[str, Any]) -> str:
    """:meth:`FamilyProfile.summary` from a recorded :meth:`FamilyProfile.describe`."""
    title = described.get("title") or described.get("family") or "unknown family"
    return (
        f"{title} ({described.get('native_size')} px, {described.get('steps')} steps, "
        f"guidance {float(described.get('guidance') or 0):g})"
    )


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def _encoders(items: Any) -> tuple[TextEncoder, ...]:
    return tuple(
        TextEncoder(kind=item["kind"], max_tokens=int(item["max_tokens"])) for item in items
    )


def _profile(data: dict[str, Any]) -> FamilyProfile:
    return FamilyProfile(
        name=data["name"],
        title=data["title"],
        pipelines=tuple(data["pipelines"]),
        native_size=int(data["native_size"]),
        size_multiple=int(data["size_multiple"]),
        steps=int(data["steps"]),
        guidance=float(data["guidance"]),
        dtype=dict(data["dtype"]),
        negative_prompt=data["negative_prompt"],
        text_encoders=_encoders(data["text_encoders"]),
        prompt_style=data["prompt_style"],
        safety_checker=bool(data["safety_checker"]),
        detect=dict(data.get("detect") or {}),
    )


@cache
def profiles() -> dict[str, FamilyProfile]:
    """Every packaged family by name, plus :data:`UNKNOWN`."""
    found = {}
    for entry in files(__name__).iterdir():
        if entry.name.endswith(".json"):
            profile = _profile(json.loads(entry.read_text()))
            found[profile.name] = profile
    sd1 = found["sd1"]
    found[UNKNOWN] = replace(
        sd1, name=UNKNOWN, title="a pipeline no family profile names", pipelines=(), detect={}
    )
    return found


def profile_named(name: str) -> FamilyProfile:
    known = profiles()
    if name not in known:
        raise InvalidOptionError(
            f"unknown model family '{name}' (ARPO_FAMILY); known: {', '.join(sorted(known))}."
        )
    return known[name]


def detect_family(
    model_index: dict[str, Any], ref: str = "", configs: dict[str, dict[str, Any]] | None = None
) -> FamilyProfile:
    """The family of a diffusers model from its ``model_index.json`` (``_class_name``), its name
    ``ref`` and its components' configs (``{"transformer": {...}}``, read on demand by the
    caller). Among the families of one pipeline class, the one whose ``detect`` hints all hold
    and are the most specific wins; a class no family names gets :data:`UNKNOWN`."""
    pipeline = str(model_index.get("_class_name", ""))
    candidates = [p for p in profiles().values() if pipeline in p.pipelines]
    matching = [p for p in candidates if _hints_hold(p.detect, ref, configs or {})]
    if not matching:
        return profiles()[UNKNOWN]
    return max(matching, key=lambda p: _specificity(p.detect))


def _hints_hold(detect: dict[str, Any], ref: str, configs: dict[str, dict[str, Any]]) -> bool:
    words = detect.get("name_contains") or []
    if words and not any(word in ref.lower() for word in words):
        return False
    for component, wanted in (detect.get("config") or {}).items():
        config = configs.get(component) or {}
        if any(config.get(key) != value for key, value in wanted.items()):
            return False
    return True


def _specificity(detect: dict[str, Any]) -> int:
    """A name hint beats config hints (a "turbo" SDXL is still an SDXL by its configs)."""
    names = 10 if detect.get("name_contains") else 0
    return names + sum(len(wanted) for wanted in (detect.get("config") or {}).values())


def detect_folder(model_dir: Path, ref: str = "") -> FamilyProfile:
    """The family of a saved diffusers folder (or cached hub snapshot) named ``ref``."""
    index, configs = read_model_index(model_dir)
    return detect_family(index, ref or str(model_dir), configs)


def read_model_index(model_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``model_index.json`` of a local diffusers folder and its components' ``config.json``."""
    index = json.loads((model_dir / "model_index.json").read_text())
    configs: dict[str, dict[str, Any]] = {}
    for component in index:
        config = model_dir / component / "config.json"
        if not component.startswith("_") and config.is_file():
            configs[component] = json.loads(config.read_text())
    return index, configs


# --------------------------------------------------------------------------- sizes and options

#: The widest aspect ratio a default size follows (4:1 either way); a wider reference is
#: rendered at this ratio, since text-to-image models compose badly far from their training.
MAX_ASPECT = 4.0


def size_for(
    profile: FamilyProfile,
    reference_size: tuple[int, int] | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> tuple[int, int]:
    """The render size for a family: the user's ``width``/``height`` where given; else the
    family's native area (``native_size`` squared) at the reference's aspect ratio, each side
    rounded to the family's ``size_multiple`` (a 1600x900 reference: 1368x768 on SDXL, 680x384
    on SD 1.5); the native square without a reference. With one side given, the other
    follows the reference's aspect ratio (or makes a square)."""
    if width is not None and height is not None:
        return width, height
    aspect = _aspect(reference_size)
    multiple = profile.size_multiple
    if width is not None:
        return width, _round_to(width / aspect, multiple)
    if height is not None:
        return _round_to(height * aspect, multiple), height
    side, stretch = profile.native_size, math.sqrt(aspect)
    return _round_to(side * stretch, multiple), _round_to(side / stretch, multiple)


def _aspect(reference_size: tuple[int, int] | None) -> float:
    if not reference_size or min(reference_size) <= 0:
        return 1.0
    ratio = reference_size[0] / reference_size[1]
    return min(max(ratio, 1 / MAX_ASPECT), MAX_ASPECT)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def check_size(profile: FamilyProfile, width: int, height: int) -> None:
    """Refuse a size the family cannot render, naming its multiple."""
    multiple = profile.size_multiple
    for name, value in (("width", width), ("height", height)):
        if value < multiple or value % multiple:
            near = max(multiple, round(value / multiple) * multiple)
            raise InvalidOptionError(
                f"{name}={value} is not usable: image sizes must be positive multiples of "
                f"{multiple} for {profile.title} (family {profile.name}), e.g. {near} or "
                f"{profile.native_size}."
            )


def check_negative_prompt(profile: FamilyProfile, negative_prompt: str) -> None:
    """Refuse a negative prompt the family would silently ignore."""
    if negative_prompt.strip() and profile.negative_prompt == "none":
        raise InvalidOptionError(
            f"{profile.title} ({profile.name}) renders without classifier-free guidance and "
            "ignores a negative prompt; drop the negative prompt (--negative-prompt, option "
            "negative_prompt), or, if your model does use one, set ARPO_FAMILY_OVERRIDES="
            '\'{"negative_prompt": "native", "guidance": 5.0}\'.'
        )


def check_render_options(
    profile: FamilyProfile, *, width: int, height: int, negative_prompt: str = ""
) -> None:
    """What a family refuses before any render: sizes off its multiple, a negative prompt it
    would ignore."""
    check_size(profile, width, height)
    check_negative_prompt(profile, negative_prompt)


# --------------------------------------------------------------------------- documentation

_NEGATIVE_TEXT = {"native": "yes", "true_cfg": "via true CFG", "none": "no (refused)"}


def markdown_table() -> str:
    """The README's table of families, made from the profiles (a test keeps them equal)."""
    rows = [
        "| family | model | detected from | size | multiple | steps | guidance "
        "| dtype CUDA / MPS / CPU | negative prompt | token limits | prompt style |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for profile in sorted(profiles().values(), key=lambda p: p.name):
        if profile.name == UNKNOWN:
            continue
        detected = ", ".join(f"`{pipeline}`" for pipeline in profile.pipelines)
        hints = _hint_text(profile.detect)
        dtypes = " / ".join(profile.dtype_for(device) for device in ("cuda", "mps", "cpu"))
        tokens = " + ".join(f"{e.kind} {e.max_tokens}" for e in profile.text_encoders)
        rows.append(
            f"| `{profile.name}` | {profile.title} | {detected}{hints} | {profile.native_size} "
            f"| {profile.size_multiple} | {profile.steps} | {profile.guidance:g} | {dtypes} "
            f"| {_NEGATIVE_TEXT[profile.negative_prompt]} | {tokens} | {profile.prompt_style} |"
        )
    return "\n".join(rows)


def _hint_text(detect: dict[str, Any]) -> str:
    hints = []
    if detect.get("name_contains"):
        hints.append("name has " + " or ".join(f"`{w}`" for w in detect["name_contains"]))
    for component, wanted in (detect.get("config") or {}).items():
        for key, value in wanted.items():
            hints.append(f"`{component}.{key}={json.dumps(value)}`")
    return f" ({'; '.join(hints)})" if hints else ""
