"""Settings: ARPO_* environment variables, a .env file, validation, derived paths, and the
image roots the MCP server confines paths to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arpo.config import Settings, describe_roots, describe_setting_problems, effective_roots
from arpo.errors import InvalidOptionError, InvalidSettingError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults(tmp_path):
    settings = Settings(home=tmp_path)
    assert settings.preset == "none"
    assert settings.t2i_model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert (settings.clip_model, settings.clip_pretrained) == ("ViT-L-14", "openai")
    assert settings.llm_base_url is None
    assert settings.llm_api_key is None
    assert settings.llm_structured_method == "function_calling"


def test_reads_arpo_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_PRESET", "tiny")
    monkeypatch.setenv("ARPO_T2I_MODEL", "/models/sd")
    monkeypatch.setenv("ARPO_CLIP_MODEL", "local-dir:/models/clip")
    monkeypatch.setenv("ARPO_LLM_MODEL", "llava")
    monkeypatch.setenv("ARPO_LLM_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("ARPO_LLM_API_KEY", "secret-key")
    monkeypatch.setenv("ARPO_LLM_TIMEOUT_S", "12.5")
    monkeypatch.setenv("ARPO_LLM_STRUCTURED_METHOD", "json_mode")
    monkeypatch.setenv("ARPO_RENDER_BATCH_SIZE", "2")
    monkeypatch.setenv("ARPO_DEVICE", "cpu")
    settings = Settings(home=tmp_path)
    assert settings.preset == "tiny"
    assert settings.t2i_model == "/models/sd"
    assert settings.clip_model == "local-dir:/models/clip"
    assert settings.llm_model == "llava"
    assert settings.llm_base_url == "http://localhost:11434/v1"
    assert settings.llm_api_key.get_secret_value() == "secret-key"
    assert "secret-key" not in repr(settings)
    assert settings.llm_timeout_s == 12.5
    assert settings.llm_structured_method == "json_mode"
    assert settings.render_batch_size == 2
    assert settings.device == "cpu"


def test_arpo_home_overrides_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_HOME", str(tmp_path / "data"))
    settings = Settings()
    assert settings.home == tmp_path / "data"
    assert settings.runs_dir == tmp_path / "data" / "runs"
    assert settings.store_dir == tmp_path / "data" / "artifacts"
    assert settings.checkpoint_db == tmp_path / "data" / "checkpoints.sqlite"
    assert settings.presets_dir == tmp_path / "data" / "presets"


def test_home_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ARPO_HOME", "~/arpo-data")
    assert Settings().home == tmp_path / "arpo-data"


def test_default_home_is_a_user_data_dir(monkeypatch):
    monkeypatch.delenv("ARPO_HOME", raising=False)
    home = Settings().home
    assert home.is_absolute()
    assert home.name == "arpo"


def test_env_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    Path(".env").write_text("ARPO_LLM_MODEL=from-dotenv\nARPO_CLIP_PRETRAINED=laion\n")
    monkeypatch.setenv("ARPO_CLIP_PRETRAINED", "from-env")
    settings = Settings(home=tmp_path)
    assert settings.llm_model == "from-dotenv"
    assert settings.clip_pretrained == "from-env"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("ARPO_PRESET", "bogus", "preset"),
        ("ARPO_LLM_TIMEOUT_S", "-1", "llm_timeout_s"),
        ("ARPO_LLM_TIMEOUT_S", "0", "llm_timeout_s"),
        ("ARPO_LLM_MAX_RETRIES", "-1", "llm_max_retries"),
        ("ARPO_DEVICE", "tpu", "device"),
        ("ARPO_DTYPE", "int8", "dtype"),
        ("ARPO_RENDER_BATCH_SIZE", "0", "render_batch_size"),
        ("ARPO_LLM_STRUCTURED_METHOD", "xml", "llm_structured_method"),
        ("ARPO_MAX_IMAGE_PIXELS", "many", "max_image_pixels"),
        ("ARPO_LLM_TEMPERATURE", "3", "llm_temperature"),
        ("ARPO_LLM_TEMPERATURE", "hot", "llm_temperature"),
        ("ARPO_LLM_IMAGE_MAX_SIDE", "10", "llm_image_max_side"),
    ],
)
def test_invalid_values_name_the_variable_and_the_value(monkeypatch, tmp_path, name, value, field):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettingError) as info:
        Settings(home=tmp_path)
    assert [problem.name for problem in info.value.problems] == [field]
    assert str(info.value).startswith(f"{name}={value!r}: ")
    assert "pydantic" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "choices"),
    [
        ("ARPO_PRESET", "bogus", "none, demo, tiny"),
        ("ARPO_DEVICE", "gpu", "auto, cpu, cuda, mps"),
        ("ARPO_DTYPE", "int8", "auto, float32, float16, bfloat16"),
        ("ARPO_OFFLOAD", "all", "none, model, sequential"),
    ],
)
def test_a_bad_choice_lists_the_valid_ones(monkeypatch, tmp_path, name, value, choices):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettingError, match=f"{name}='{value}': .*choose one of {choices}"):
        Settings(home=tmp_path)


def test_a_keyword_is_named_as_given_and_a_face_can_rename_it(tmp_path):
    with pytest.raises(InvalidSettingError) as info:
        Settings(home=tmp_path, preset="bogus", device="tpu")
    assert str(info.value) == (
        "preset='bogus': not a preset; choose one of none, demo, tiny, tiny-flux, tiny-sd3, "
        "tiny-sdxl; device='tpu': not a valid device; choose one of auto, cpu, cuda, mps"
    )
    assert describe_setting_problems(info.value.problems, {"preset": "--preset"}).startswith(
        "--preset 'bogus': not a preset"
    )


def test_a_variable_that_is_not_json_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_FAMILY_OVERRIDES", "steps=8")
    with pytest.raises(
        InvalidSettingError, match="ARPO_FAMILY_OVERRIDES='steps=8': not valid JSON"
    ):
        Settings(home=tmp_path)
    monkeypatch.delenv("ARPO_FAMILY_OVERRIDES")
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", "[/photos")
    with pytest.raises(InvalidSettingError, match="ARPO_ALLOWED_ROOTS='\\[/photos': not a JSON"):
        Settings(home=tmp_path)


def test_a_secret_value_is_never_echoed(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_AUTH_TOKEN", " \t ")
    with pytest.raises(InvalidSettingError) as info:
        Settings(home=tmp_path)
    assert str(info.value).startswith("ARPO_AUTH_TOKEN: the token is only whitespace")
    assert "openssl rand" in str(info.value)  # says what to do


def test_auth_token_spaces_around_are_dropped_and_empty_is_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_AUTH_TOKEN", "  s3cret\n")
    assert Settings(home=tmp_path).auth_token.get_secret_value() == "s3cret"
    monkeypatch.setenv("ARPO_AUTH_TOKEN", "")
    assert Settings(home=tmp_path).auth_token is None


def test_unknown_arpo_variables_are_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_NOT_A_SETTING", "x")
    assert not hasattr(Settings(home=tmp_path), "not_a_setting")


def test_llm_not_configured_by_default(tmp_path):
    assert Settings(home=tmp_path).llm_configured is False


def test_llm_configured_by_base_url(tmp_path):
    assert Settings(home=tmp_path, llm_base_url="http://localhost:8080/v1").llm_configured


def test_llm_configured_by_api_key(monkeypatch, tmp_path):
    monkeypatch.setenv("ARPO_LLM_API_KEY", "k")
    assert Settings(home=tmp_path).llm_configured


def test_llm_configured_by_openai_api_key(monkeypatch, tmp_path):
    settings = Settings(home=tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert settings.llm_configured
    monkeypatch.setenv("OPENAI_API_KEY", "")
    assert not settings.llm_configured


def test_env_example_documents_every_setting() -> None:
    documented = (Path(__file__).parents[1] / ".env.example").read_text()
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in Settings.model_fields:
        variable = f"ARPO_{name.upper()}"
        assert variable in documented, f"{variable} is missing from .env.example"
        assert variable in readme, f"{variable} is missing from the README's settings table"


# --------------------------------------------------------------------------- image roots


def real(path: Path) -> Path:
    return Path(os.path.realpath(path))


@pytest.fixture
def user_home(monkeypatch, tmp_path) -> Path:
    """A home directory of the user's own, under tmp_path."""
    home = tmp_path / "users" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ARPO_ALLOWED_ROOTS", raising=False)
    return home


def test_default_roots_are_the_inbox_only(tmp_path, user_home):
    settings = Settings(home=tmp_path / "data")
    assert settings.inbox_dir == tmp_path / "data" / "inbox"
    assert settings.image_roots == [settings.inbox_dir]
    assert effective_roots(settings) == [real(tmp_path / "data" / "inbox")]


def test_started_from_the_filesystem_root_the_default_is_still_the_inbox(
    monkeypatch, tmp_path, user_home
):
    monkeypatch.chdir("/")  # how Claude Desktop starts MCP servers
    settings = Settings(home=tmp_path / "data")
    assert effective_roots(settings) == [real(tmp_path / "data" / "inbox")]


def test_a_default_inbox_under_the_home_directory_is_fine(user_home):
    settings = Settings(home=user_home)  # ARPO_HOME=~
    assert effective_roots(settings) == [real(user_home / "inbox")]


def test_dot_from_the_filesystem_root_is_refused(monkeypatch, tmp_path, user_home):
    monkeypatch.chdir("/")
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", ".")
    with pytest.raises(InvalidOptionError) as info:
        effective_roots(Settings(home=tmp_path / "data"))
    message = str(info.value)
    assert "'.'" in message and "relative" in message and "the filesystem root" in message
    assert "ARPO_ALLOWED_ROOTS=~/Pictures" in message


def test_an_explicit_filesystem_root_is_the_users_choice(monkeypatch, tmp_path, user_home):
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", "/")
    assert effective_roots(Settings(home=tmp_path / "data")) == [Path("/")]


@pytest.mark.parametrize(("entry", "what"), [(".", "your home directory"), ("..", "contains")])
def test_implicit_home_or_above_is_refused(monkeypatch, tmp_path, user_home, entry, what):
    monkeypatch.chdir(user_home)
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", entry)
    with pytest.raises(InvalidOptionError, match=what):
        effective_roots(Settings(home=tmp_path / "data"))


def test_home_reached_through_dotdot_or_a_link_is_refused(monkeypatch, tmp_path, user_home):
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", str(user_home / "Pictures" / ".."))
    with pytest.raises(InvalidOptionError, match="your home directory"):
        effective_roots(Settings(home=tmp_path / "data"))
    (tmp_path / "pics").symlink_to(user_home)
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", str(tmp_path / "pics"))
    with pytest.raises(InvalidOptionError, match=r"resolves to .*your home directory"):
        effective_roots(Settings(home=tmp_path / "data"))


def test_home_named_explicitly_is_accepted(monkeypatch, tmp_path, user_home):
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", "~")
    assert effective_roots(Settings(home=tmp_path / "data")) == [real(user_home)]
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", str(user_home.parent))
    assert effective_roots(Settings(home=tmp_path / "data")) == [real(user_home.parent)]


def test_folders_below_home_are_fine_and_relative_ones_use_the_cwd(
    monkeypatch, tmp_path, user_home
):
    (user_home / "Pictures").mkdir()
    monkeypatch.chdir(user_home)
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", os.pathsep.join(["Pictures", "~/Pictures", "/srv"]))
    roots = effective_roots(Settings(home=tmp_path / "data"))
    assert roots == [real(user_home / "Pictures"), real(Path("/srv"))], "duplicates dropped"


def test_a_default_inbox_that_is_broad_is_refused(monkeypatch, tmp_path, user_home):
    # ARPO_HOME/inbox is the home directory itself (a user whose home is named 'inbox')
    inbox_home = tmp_path / "inbox"
    inbox_home.mkdir()
    monkeypatch.setenv("HOME", str(inbox_home))
    with pytest.raises(InvalidOptionError, match="default image folder ARPO_HOME/inbox"):
        effective_roots(Settings(home=tmp_path))


def test_describe_roots(monkeypatch, tmp_path, user_home):
    settings = Settings(home=tmp_path / "data")
    line = describe_roots(settings)
    assert "\n" not in line
    assert str(real(tmp_path / "data" / "inbox")) in line and "(missing)" in line
    assert "[default]" in line and "image URLs: off" in line
    (tmp_path / "pics").mkdir()
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", str(tmp_path / "pics"))
    monkeypatch.setenv("ARPO_ALLOW_URLS", "true")
    line = describe_roots(Settings(home=tmp_path / "data"))
    assert f"{real(tmp_path / 'pics')} [ARPO_ALLOWED_ROOTS]" in line
    assert "image URLs: on" in line
