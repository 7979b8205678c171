"""Which Toolbox a call uses: the process-wide one for the settings, or, for anything that
continues a run (resume, edit, vary, fuse by run id), the models that run was made with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arpo.config import Settings
from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    from arpo.api.records import RunRecord
    from arpo.tools.toolbox import Toolbox

# The settings that pick the models; a run records them so that its models travel with it.
MODEL_SETTINGS = (
    "preset",
    "t2i_model",
    "clip_model",
    "clip_pretrained",
    "family",
    "family_overrides",
)

_toolboxes: dict[str, Toolbox] = {}


def get_toolbox(settings: Settings | None = None) -> Toolbox:
    """The process-wide Toolbox for these settings (built once, models loaded lazily)."""
    from arpo.tools.toolbox import Toolbox

    settings = settings or Settings()
    secret = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    key = settings.model_dump_json() + secret
    if key not in _toolboxes:
        _toolboxes[key] = Toolbox(settings)
    return _toolboxes[key]


def model_settings(settings: Settings) -> dict[str, Any]:
    """The model-picking settings, as a run records them."""
    return {name: getattr(settings, name) for name in MODEL_SETTINGS}


def toolbox_for_run(
    record: RunRecord, toolbox: Toolbox | None = None, settings: Settings | None = None
) -> Toolbox:
    """The Toolbox to continue ``record`` with: its own models.

    A given ``toolbox`` (the MCP server's, or the CLI's with ``--preset``) must hold the same
    models; without one, the run's recorded model settings are used, and a model setting the
    user set explicitly (environment or argument) to something else is refused."""
    if toolbox is not None:
        _check_same_models(record, toolbox)
        return toolbox
    base = settings or Settings()
    recorded = record.model_settings or {}
    conflicts = [
        name
        for name, value in recorded.items()
        if name in base.model_fields_set and getattr(base, name) != value
    ]
    if conflicts:
        asked = ", ".join(f"{name}={getattr(base, name)}" for name in conflicts)
        made = ", ".join(f"{name}={recorded[name]}" for name in conflicts)
        raise InvalidOptionError(
            f"run '{record.run_id}' was made with {made}, but {asked} is set; a run continues "
            "with the models that made it. Unset it (ARPO_* variables, --preset), or start a "
            "new run with those models."
        )
    chosen = get_toolbox(base.model_copy(update=recorded)) if recorded else get_toolbox(base)
    _check_same_models(record, chosen)
    return chosen


def check_same_models(records: list[RunRecord], toolbox: Toolbox) -> None:
    """Refuse when the runs were not all made with ``toolbox``'s models."""
    for record in records:
        _check_same_models(record, toolbox)


def _check_same_models(record: RunRecord, toolbox: Toolbox) -> None:
    if record.identity is None:  # a run recorded before models were recorded: trust it
        return
    have = toolbox.model_identity()
    if have != record.identity:
        raise InvalidOptionError(
            f"run '{record.run_id}' was made with {describe_models(record.identity)}, but "
            f"these models are {describe_models(have)}; a run continues with the models that "
            "made it. Use the run's models (drop --preset, or serve with them), or start a new "
            "run."
        )


def describe_models(identity: dict[str, Any]) -> str:
    preset = identity.get("preset")
    models = f"t2i {identity.get('t2i')}, clip {identity.get('clip')}"
    return f"the {preset} preset ({models})" if preset else models
