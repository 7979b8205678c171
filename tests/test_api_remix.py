"""Remixing through the API on the tiny preset: edits render with the original's seed, runs
store their decomposition and can be fused by id, variations, the LLM path, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from arpo import api
from arpo.config import Settings
from arpo.errors import InvalidImageError, InvalidOptionError, RunNotFoundError
from arpo.tools.toolbox import Toolbox

FAST = {"strategy": "offline", "iterations": 1, "candidates": 2, "patience": 0}
FOX = "a red fox, in a misty forest, oil painting, golden hour"


def test_finished_run_stores_its_decomposition_and_fuses_by_run_id(
    tiny_toolbox: Toolbox, reference_png: Path
) -> None:
    result = api.reverse_prompt(reference_png, prompt=FOX, seed=5, toolbox=tiny_toolbox, **FAST)
    stored = json.loads((result.run_dir / "result.json").read_text())["decomposition"]
    assert sorted(p for k, v in stored.items() if k != "negative" for p in v) == sorted(
        p.strip() for p in result.best_prompt.split(",")
    )

    remix = api.fuse(result.run_id, "a lighthouse, watercolor painting", toolbox=tiny_toolbox)
    assert remix.parts.medium == ["watercolor painting"]
    assert remix.parts.content == stored["content"]
    assert remix.seed == 5  # the content run's seed
    assert remix.sources[0].run_id == result.run_id
    assert remix.sources[0].prompt == result.best_prompt
    record = json.loads((remix.remix_dir / "remix.json").read_text())
    assert record["prompt"] == remix.prompt and (remix.remix_dir / "fuse.png").is_file()


def test_edit_renders_the_original_and_the_edit_with_one_seed(tiny_toolbox: Toolbox) -> None:
    remix = api.edit_prompt(FOX, {"medium": "watercolor painting"}, seed=7, toolbox=tiny_toolbox)
    assert remix.prompt == "a red fox, in a misty forest, watercolor painting, golden hour"
    assert remix.seed == 7
    (original,) = remix.sources
    assert original.prompt == FOX
    same_seed = api.generate(FOX, seed=7, toolbox=tiny_toolbox)[0]
    assert original.render == same_seed
    assert remix.render == api.generate(remix.prompt, seed=7, toolbox=tiny_toolbox)[0]
    assert remix.render != same_seed
    report = remix.report.read_text()
    assert "original.png" in report and "edit.png" in report and "watercolor painting" in report


def test_vary_renders_count_seeds_in_one_batch(tiny_toolbox: Toolbox) -> None:
    batches: list[int] = []
    backend = tiny_toolbox.backend
    original = backend.render

    def counting(prompts: Any, seeds: Any, params: Any) -> Any:
        batches.append(len(prompts))
        return original(prompts, seeds, params)

    backend.render = counting  # type: ignore[method-assign]
    try:
        result = api.vary(FOX, count=3, seed=10, toolbox=tiny_toolbox)
    finally:
        del backend.render
    assert result.seeds == [10, 11, 12]
    assert len(set(result.render_ids)) == 3
    assert batches == [3]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda tb: api.edit_prompt(FOX, {"mood": "x"}, toolbox=tb), InvalidOptionError, "mood"),
        (lambda tb: api.edit_prompt("  ", {"style": "x"}, toolbox=tb), InvalidOptionError, "empty"),
        (lambda tb: api.edit_prompt(FOX, toolbox=tb), InvalidOptionError, "nothing to change"),
        (
            lambda tb: api.edit_prompt("20990101-000000-abcdef", {"style": "x"}, toolbox=tb),
            RunNotFoundError,
            "20990101-000000-abcdef",
        ),
        (lambda tb: api.vary("", toolbox=tb), InvalidOptionError, "empty"),
        (lambda tb: api.decompose("", toolbox=tb), InvalidOptionError, "empty"),
    ],
)
def test_bad_input_is_a_clear_error(
    tiny_toolbox: Toolbox, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(tiny_toolbox)


def test_fusing_images_that_cannot_be_read_is_a_clear_error(
    tiny_toolbox: Toolbox, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InvalidImageError, match=r"broken\.png"):
        api.fuse(broken, tmp_path / "missing.png", toolbox=tiny_toolbox)
    with pytest.raises(InvalidImageError, match=r"missing\.png"):
        api.fuse(str(tmp_path / "missing.png"), FOX, toolbox=tiny_toolbox)


def llm_toolbox(tiny_settings: Settings, tiny_models: Toolbox, base_url: str) -> Toolbox:
    settings = tiny_settings.model_copy(
        update={"llm_base_url": base_url, "llm_max_retries": 0, "llm_timeout_s": 5}
    )
    return Toolbox(settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)


def test_llm_decomposes_and_edits_with_structured_output(
    tiny_settings: Settings, tiny_models: Toolbox, fake_openai: FakeOpenAI
) -> None:
    toolbox = llm_toolbox(tiny_settings, tiny_models, fake_openai.base_url)
    fake_openai.reply(
        # the LLM drops "golden hour": it is put back, so no phrase is lost
        {"content": ["a red fox"], "setting": ["in a misty forest"], "medium": ["oil painting"]},
        {
            "content": ["a red fox"],
            "setting": ["in a misty forest at night"],
            "medium": ["oil painting"],
            "lighting": ["moonlight"],
        },
    )
    remix = api.edit_prompt(FOX, instruction="make it night", seed=1, toolbox=toolbox)
    names = [r["tools"][0]["function"]["name"] for r in fake_openai.requests]
    assert names == ["PromptParts", "PromptParts"]
    assert FOX in json.dumps(fake_openai.requests[0])
    assert "make it night" in json.dumps(fake_openai.requests[1])
    assert "golden hour" in json.dumps(fake_openai.requests[1])  # restored before the edit
    assert remix.prompt == "a red fox, in a misty forest at night, oil painting, moonlight"
    assert remix.sources[0].prompt == FOX


def test_without_use_llm_nothing_is_asked(
    tiny_settings: Settings, tiny_models: Toolbox, fake_openai: FakeOpenAI
) -> None:
    toolbox = llm_toolbox(tiny_settings, tiny_models, fake_openai.base_url)
    parts = api.decompose(FOX, toolbox=toolbox, use_llm=False)
    assert parts.lighting == ["golden hour"] and fake_openai.requests == []
