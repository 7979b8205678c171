"""``arpo doctor`` / ``api.doctor``: the tiny preset passes every check; a missing model offline
is named with its setting, fast; the LLM endpoint is reached or not and its structured-output
method accepted or refused (the fake OpenAI server); the dtype is checked against the family;
an images-API renderer is checked by its model list, never by a paid render (the fake images
server), with its price and its not reproducible renders."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from fake_images import FakeImages
from fake_openai import FakeOpenAI, Status
from pydantic import SecretStr
from typer.testing import CliRunner

from arpo import api
from arpo.api.doctor import check_dtype, model_family
from arpo.cli import app
from arpo.config import Settings
from arpo.tools.families import profile_named
from arpo.tools.toolbox import Toolbox

NAMES = [
    "python",
    "libraries",
    "device",
    "t2i model",
    "family",
    "dtype",
    "clip model",
    "data",
    "hub cache",
    "llm",
    "image roots",
]


def by_name(diagnosis: api.Diagnosis) -> dict[str, api.Check]:
    return {check.check: check for check in diagnosis.checks}


def test_the_tiny_preset_passes_every_check(tiny_settings: Settings) -> None:
    diagnosis = api.doctor(tiny_settings)
    assert diagnosis.ok, [c for c in diagnosis.checks if not c.ok]
    assert [check.check for check in diagnosis.checks] == NAMES
    checks = by_name(diagnosis)
    assert "tiny/t2i (preset tiny): local folder" in checks["t2i model"].detail
    assert checks["family"].detail.startswith("sd1 (Stable Diffusion 1.x): 128 px")  # tiny's own
    assert "tokens 77" in checks["family"].detail
    assert checks["device"].detail.startswith(("cpu", "cuda", "mps"))
    assert "ARPO_DTYPE=auto" in checks["dtype"].detail
    assert "tiny/clip" in checks["clip model"].detail
    assert "GiB free" in checks["data"].detail
    assert "none configured" in checks["llm"].detail
    assert "image paths confined to" in checks["image roots"].detail
    assert all(check.fix is None for check in diagnosis.checks)


def test_a_missing_model_offline_is_named_with_its_setting_fast(
    tmp_path: Path, presets_home: Path, empty_hub_cache: Path
) -> None:
    tiny_clip = presets_home / "presets" / "tiny" / "clip"
    settings = Settings(
        home=tmp_path / "home",
        t2i_model="nobody/missing-model",
        clip_model=f"local-dir:{tiny_clip}",
    )
    began = time.perf_counter()
    diagnosis = api.doctor(settings)
    elapsed = time.perf_counter() - began
    assert not diagnosis.ok
    t2i = by_name(diagnosis)["t2i model"]
    assert not t2i.ok and t2i.fix
    assert "nobody/missing-model" in t2i.fix and "ARPO_T2I_MODEL" in t2i.fix
    assert "HF_HUB_OFFLINE" in t2i.fix
    assert [c.check for c in diagnosis.checks if not c.ok] == ["t2i model"]
    assert elapsed < 5, elapsed


def test_a_missing_clip_folder_is_named_with_its_setting(tiny_settings: Settings) -> None:
    settings = tiny_settings.model_copy(
        update={"preset": "none", "t2i_model": str(tiny_settings.presets_dir / "tiny" / "t2i")}
    )
    settings = settings.model_copy(update={"clip_model": "local-dir:/nowhere/clip"})
    clip = by_name(api.doctor(settings))["clip model"]
    assert not clip.ok and "ARPO_CLIP_MODEL" in (clip.fix or "")


def test_the_captioner_is_checked_only_when_set(
    tiny_settings: Settings, tmp_path: Path, empty_hub_cache: Path
) -> None:
    missing = tiny_settings.model_copy(update={"caption_model": "nobody/missing-captioner"})
    diagnosis = api.doctor(missing)
    names = [check.check for check in diagnosis.checks]
    assert names == [*NAMES[: NAMES.index("clip model") + 1], "captioner", *NAMES[7:]]
    captioner = by_name(diagnosis)["captioner"]
    assert not captioner.ok and captioner.fix
    assert "nobody/missing-captioner" in captioner.fix and "ARPO_CAPTION_MODEL" in captioner.fix
    assert "HF_HUB_OFFLINE" in captioner.fix
    assert [c.check for c in diagnosis.checks if not c.ok] == ["captioner"]
    folder = tmp_path / "blip"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "blip"}')
    local = by_name(api.doctor(missing.model_copy(update={"caption_model": str(folder)})))
    assert local["captioner"].ok and "local folder" in local["captioner"].detail


def test_the_family_of_a_cached_hub_model_is_read_from_the_cache(
    tmp_path: Path, empty_hub_cache: Path
) -> None:
    snapshot = empty_hub_cache / "models--someone--flux-thing" / "snapshots" / "abc123"
    (snapshot / "transformer").mkdir(parents=True)
    (snapshot / "model_index.json").write_text(
        json.dumps({"_class_name": "FluxPipeline", "transformer": ["diffusers", "X"]})
    )
    (snapshot / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": False}))
    refs = empty_hub_cache / "models--someone--flux-thing" / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123")
    toolbox = Toolbox(Settings(home=tmp_path / "home", t2i_model="someone/flux-thing"))
    profile = model_family(toolbox)
    assert profile is not None and profile.name == "flux-schnell"
    diagnosis = api.doctor(toolbox=toolbox)
    checks = by_name(diagnosis)
    assert checks["t2i model"].ok, checks["t2i model"]
    assert "in the Hugging Face cache (available offline)" in checks["t2i model"].detail
    assert checks["family"].detail.startswith("flux-schnell")
    assert "negative prompt via true_cfg_scale" in checks["family"].detail


def test_dtype_is_checked_against_the_family() -> None:
    settings = Settings()
    flux = profile_named("flux-dev")
    bad = check_dtype(settings, "cuda", flux)  # auto picks float16 on CUDA today
    assert not bad.ok and bad.fix == "set ARPO_DTYPE=bfloat16."
    assert "NaN" in bad.detail
    good = check_dtype(settings.model_copy(update={"dtype": "bfloat16"}), "cuda", flux)
    assert good.ok and "as flux-dev wants" in good.detail
    assert check_dtype(settings, "cuda", profile_named("sdxl")).ok
    assert check_dtype(settings, "cpu", flux).ok  # float32 on the CPU


# --------------------------------------------------------------------------- the LLM


def llm_settings(tiny_settings: Settings, base_url: str, **more: Any) -> Settings:
    return tiny_settings.model_copy(
        update={"llm_base_url": base_url, "llm_api_key": SecretStr("x"), **more}
    )


def test_a_working_llm_endpoint_and_method(
    tiny_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply({"answer": "ok"})
    diagnosis = api.doctor(llm_settings(tiny_settings, fake_openai.base_url))
    assert diagnosis.ok, diagnosis.checks
    checks = by_name(diagnosis)
    assert "reachable (HTTP 200" in checks["llm"].detail
    assert checks["llm structured output"].detail.startswith("function_calling works")
    assert len(fake_openai.requests) == 1 and fake_openai.last_request["tools"]


def test_an_unreachable_llm_is_reported_fast(tiny_settings: Settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = time.perf_counter()
    diagnosis = api.doctor(llm_settings(tiny_settings, f"http://127.0.0.1:{port}/v1"))
    assert time.perf_counter() - began < 5
    assert not diagnosis.ok
    llm = by_name(diagnosis)["llm"]
    assert not llm.ok and "unreachable" in llm.detail and "ARPO_LLM_BASE_URL" in (llm.fix or "")
    assert "llm structured output" not in by_name(diagnosis)


def test_a_server_refusing_function_calling_gets_a_method_that_works(
    tiny_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    def no_tools(request: dict[str, Any]) -> Any:  # like Ollama with a vision model
        if request.get("tools"):
            return Status(400, "registry.ollama.ai/library/llava does not support tools")
        return {"answer": "ok"}

    fake_openai.default = no_tools
    diagnosis = api.doctor(llm_settings(tiny_settings, fake_openai.base_url))
    assert not diagnosis.ok
    checks = by_name(diagnosis)
    assert checks["llm"].ok
    structured = checks["llm structured output"]
    assert not structured.ok
    assert "function_calling is refused: HTTP 400" in structured.detail
    assert "does not support tools" in structured.detail
    assert structured.fix == (
        "set ARPO_LLM_STRUCTURED_METHOD=json_schema (it works with this server)."
    )
    # and with that method set, it passes
    fixed = llm_settings(tiny_settings, fake_openai.base_url, llm_structured_method="json_schema")
    assert api.doctor(fixed).ok


def test_a_rejected_key_is_not_blamed_on_the_method(
    tiny_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Status(401, "bad key", error_code="invalid_api_key")
    checks = by_name(api.doctor(llm_settings(tiny_settings, fake_openai.base_url)))
    structured = checks["llm structured output"]
    assert not structured.ok and "ARPO_LLM_API_KEY" in (structured.fix or "")
    assert len(fake_openai.requests) == 1  # no other method tried


# --------------------------------------------------------------------------- the command


def images_settings(tiny_settings: Settings, base_url: str, **settings: Any) -> Settings:
    options = {"t2i_model": "openai-images:arpo-demo", "t2i_api_key": SecretStr("test")}
    options.update(settings)
    return Settings(home=tiny_settings.home, preset="tiny", t2i_base_url=base_url, **options)


def test_an_images_api_model_is_checked_by_its_model_list_without_a_render(
    tiny_settings: Settings,
) -> None:
    with FakeImages(key="test") as server:
        checks = by_name(
            api.doctor(images_settings(tiny_settings, server.base_url, t2i_price=0.04))
        )
        assert server.model_lists == 1 and server.requests == []  # nothing paid for

    t2i = checks["t2i model"]
    assert t2i.ok and t2i.fix is None, t2i
    assert f"openai-images:arpo-demo (preset tiny) at {server.base_url}: reachable" in t2i.detail
    assert "arpo-demo in its model list" in t2i.detail
    cost = checks["t2i cost"]
    assert cost.ok
    assert "$0.040 per image (ARPO_T2I_PRICE): at most $1.28 per run" in cost.detail
    assert "not reproducible" in cost.detail
    assert "no dtype" not in checks["dtype"].detail and "wants" not in checks["dtype"].detail


def test_an_images_api_with_a_list_price_and_a_wrong_model_or_key(
    tiny_settings: Settings,
) -> None:
    with FakeImages(key="test", models=("dall-e-3",)) as server:
        listed = by_name(api.doctor(images_settings(tiny_settings, server.base_url)))
        wrong_key = images_settings(tiny_settings, server.base_url, t2i_api_key=SecretStr("x"))
        refused = by_name(api.doctor(wrong_key))["t2i model"]
        server.models = None
        unlisted = by_name(api.doctor(images_settings(tiny_settings, server.base_url)))
        assert server.requests == []

    assert "arpo-demo is not in its model list" in listed["t2i model"].detail
    assert "ARPO_T2I_MODEL" in (listed["t2i model"].fix or "")
    assert "no price known for arpo-demo" in listed["t2i cost"].detail
    assert "ARPO_T2I_PRICE" in (listed["t2i cost"].fix or "")
    assert not refused.ok and "refused the key (HTTP 401" in refused.detail
    assert "ARPO_T2I_API_KEY" in (refused.fix or "")
    assert unlisted["t2i model"].ok and "serves no model list" in unlisted["t2i model"].detail

    dalle = images_settings(
        tiny_settings, "http://127.0.0.1:9/v1", t2i_model="openai-images:dall-e-3"
    )
    checks = by_name(api.doctor(dalle))
    assert not checks["t2i model"].ok and "unreachable" in checks["t2i model"].detail
    assert "ARPO_T2I_BASE_URL" in (checks["t2i model"].fix or "")
    assert (
        "$0.040 per image (list price at quality standard, 1024x1024)" in checks["t2i cost"].detail
    )


def test_cli_doctor_lines_json_and_exit_codes(
    tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch, empty_hub_cache: Path
) -> None:
    env = {"ARPO_HOME": str(tiny_settings.home), "HF_HUB_OFFLINE": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    done = runner.invoke(app, ["doctor", "--preset", "tiny"], env=env)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert len(lines) == len(NAMES)
    assert all(line.startswith("ok ") for line in lines)

    done = runner.invoke(app, ["doctor", "--preset", "tiny", "--json"], env=env)
    assert done.exit_code == 0
    rows = json.loads(done.stdout)
    assert [row["check"] for row in rows] == NAMES
    assert all(set(row) == {"check", "ok", "detail", "fix"} for row in rows)

    missing = {**env, "ARPO_T2I_MODEL": "nobody/missing-model"}
    monkeypatch.setenv("ARPO_T2I_MODEL", "nobody/missing-model")
    done = runner.invoke(app, ["doctor"], env=missing)
    assert done.exit_code == 1
    (line,) = [line for line in done.stdout.splitlines() if "t2i model" in line]
    assert line.startswith("FAIL") and "-> fix:" in line and "ARPO_T2I_MODEL" in line
