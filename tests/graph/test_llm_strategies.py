"""The LLM strategies through the real ChatOpenAI client, against a scripted fake server,
on the session's tiny models."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fake_openai import Delay, FakeOpenAI, Raw, Status
from PIL import Image
from synthetic import Events, run_record

from arpo import api
from arpo.config import Settings
from arpo.errors import LLMUnavailableError
from arpo.tools.chat import IMAGE_QUALITY
from arpo.tools.images import decode_data_url, image_to_data_url
from arpo.tools.toolbox import Toolbox

FAST = {"width": 64, "height": 64, "steps": 1}
CAPTION = "a red square on a blue background"


@pytest.fixture
def home(presets_home: Path, tmp_path: Path) -> Path:
    """A fresh data directory sharing the session's built tiny preset."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    return home


def llm_toolbox(home: Path, tiny_models: Toolbox, base_url: str, **settings: Any) -> Toolbox:
    """The tiny models with an LLM at ``base_url`` (no client retries)."""
    options = {"llm_api_key": "test", "llm_max_retries": 0, "llm_timeout_s": 5, **settings}
    llm_settings = Settings(home=home, preset="tiny", llm_base_url=base_url, **options)
    return Toolbox(llm_settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)


@pytest.fixture
def toolbox(home: Path, tiny_models: Toolbox, fake_openai: FakeOpenAI) -> Toolbox:
    return llm_toolbox(home, tiny_models, fake_openai.base_url)


def tool_names(server: FakeOpenAI) -> list[str]:
    """The structured answer each request asked for (Caption, Critique, Candidates)."""
    return [request["tools"][0]["function"]["name"] for request in server.requests]


def requests_for(server: FakeOpenAI, tool: str) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["tools"][0]["function"]["name"] == tool]


def pixels(image: Image.Image) -> bytes:
    return image.convert("RGB").tobytes()


def sent_images(request: dict[str, Any]) -> list[bytes]:
    """The pixels of the images a request carries: JPEG data URLs, decoded."""
    urls = FakeOpenAI.images_in(request)
    assert all(url.startswith("data:image/jpeg;base64,") for url in urls)
    return [pixels(Image.open(io.BytesIO(decode_data_url(url)))) for url in urls]


def as_sent(image: Image.Image) -> bytes:
    """The pixels the LLM sees of ``image``: encoded as the chat model sends it, decoded."""
    url = image_to_data_url(image, fmt="JPEG", max_side=768, quality=IMAGE_QUALITY)
    return pixels(Image.open(io.BytesIO(decode_data_url(url))))


def test_vanilla_captions_then_asks_for_candidates_with_both_images(
    toolbox: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    proposals = [["a red square", "a blue square"], ["a red block", "a red square, flat"]]
    fake_openai.reply({"prompt": CAPTION}, *({"prompts": p} for p in proposals))

    result = api.reverse_prompt(
        reference_png, toolbox=toolbox, strategy="vanilla", iterations=2, candidates=2, **FAST
    )

    assert tool_names(fake_openai) == ["Caption", "Candidates", "Candidates"]
    assert result.initial_prompt == CAPTION
    reference = as_sent(Image.open(reference_png))
    for request, record, proposed in zip(
        requests_for(fake_openai, "Candidates"), result.history, proposals, strict=False
    ):
        render = as_sent(Image.open(result.run_dir / record["render"]))
        assert sent_images(request) == [reference, render]
        assert record["prompt"] in FakeOpenAI.text_in(request)
        assert set(proposed) <= {c["prompt"] for c in record["candidates"]}
        assert record["proposer"] == "llm"
        assert record["critique"] is None
    assert result.stop_reason == "max_iterations"


def test_enhanced_critiques_then_proposes_with_critique_and_history(
    toolbox: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    critiques = [["reference is red, render is grey noise"], ["render lacks the blue border"]]
    fake_openai.reply(
        {"prompt": CAPTION},
        {"differences": critiques[0]},
        {"prompts": ["a red square", "a red square, grey"]},
        {"differences": critiques[1]},
        {"prompts": ["a red square, blue border", "red, blue"]},
    )

    result = api.reverse_prompt(
        reference_png, toolbox=toolbox, strategy="enhanced", iterations=2, candidates=2, **FAST
    )

    assert tool_names(fake_openai) == ["Caption", *["Critique", "Candidates"] * 2]
    first, second = requests_for(fake_openai, "Candidates")
    assert critiques[0][0] in FakeOpenAI.text_in(first)
    assert critiques[1][0] in FakeOpenAI.text_in(second)
    tried = result.history[0]
    assert f"{tried['text_score']:.4f}  {tried['prompt']}" in FakeOpenAI.text_in(second)
    assert [r["critique"] for r in result.history[:2]] == critiques
    assert [r["proposer"] for r in result.history[:2]] == ["llm", "llm"]
    assert len(sent_images(requests_for(fake_openai, "Critique")[0])) == 2


def test_malformed_proposals_fall_back_to_offline_or_are_retried_once(
    toolbox: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    fake_openai.reply(
        Raw("not json"),
        Raw("not json"),  # iteration 0: malformed twice -> offline proposer
        Raw("not json"),
        {"prompts": ["a red square"]},  # iteration 1: malformed once, then fine
    )

    result = api.reverse_prompt(
        reference_png,
        prompt="a photo",
        toolbox=toolbox,
        strategy="vanilla",
        iterations=2,
        candidates=3,
        **FAST,
    )

    assert tool_names(fake_openai) == ["Candidates"] * 4
    fallback, retried = result.history[:2]
    assert fallback["proposer"] == "offline (LLM fallback)"
    assert "malformed" in fallback["note"]
    assert len(fallback["candidates"]) > 1, "the offline proposer proposed something"
    assert retried["proposer"] == "llm"
    assert "a red square" in {c["prompt"] for c in retried["candidates"]}
    assert result.stop_reason == "max_iterations"


def test_unreachable_llm_fails_the_run_naming_the_endpoint(
    home: Path, tiny_models: Toolbox, reference_png: Path
) -> None:
    with FakeOpenAI() as stopped:
        base_url = stopped.base_url
    toolbox = llm_toolbox(home, tiny_models, base_url)
    events = Events()

    with pytest.raises(LLMUnavailableError) as caught:
        api.reverse_prompt(reference_png, toolbox=toolbox, strategy="vanilla", on_progress=events)

    assert base_url in str(caught.value)
    assert "--strategy offline" in str(caught.value)
    record = run_record(toolbox, events.run_id)
    assert record["status"] == "failed"
    assert base_url in record["error"]


def test_slow_llm_times_out_with_a_hint(
    home: Path, tiny_models: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    toolbox = llm_toolbox(home, tiny_models, fake_openai.base_url, llm_timeout_s=0.5)
    fake_openai.reply(Delay(5, {"prompt": CAPTION}))
    events = Events()

    with pytest.raises(LLMUnavailableError, match="ARPO_LLM_TIMEOUT_S"):
        api.reverse_prompt(reference_png, toolbox=toolbox, strategy="vanilla", on_progress=events)

    assert run_record(toolbox, events.run_id)["status"] == "failed"


def test_server_error_fails_the_run_and_resume_finishes_it(
    toolbox: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    fake_openai.reply(Status(500, "overloaded"))
    events = Events()

    with pytest.raises(LLMUnavailableError, match="HTTP 500"):
        api.reverse_prompt(
            reference_png,
            prompt="a photo",
            toolbox=toolbox,
            strategy="vanilla",
            iterations=2,
            candidates=2,
            on_progress=events,
            **FAST,
        )
    assert run_record(toolbox, events.run_id)["status"] == "failed"

    fake_openai.reply({"prompts": ["a red square"]}, {"prompts": ["a red square, blue"]})
    result = api.resume(events.run_id, toolbox=toolbox)

    assert result.run_id == events.run_id
    assert result.stop_reason == "max_iterations"
    assert [r["iteration"] for r in result.history] == [0, 1, 2]
    assert [r["proposer"] for r in result.history[:2]] == ["llm", "llm"]
    assert tool_names(fake_openai) == ["Candidates"] * 3
    assert run_record(toolbox, events.run_id)["status"] == "finished"


@pytest.mark.parametrize("strategy", ["vanilla", "enhanced"])
def test_llm_proposals_share_the_budget_and_the_dedupe_of_offline_ones(
    toolbox: Toolbox, fake_openai: FakeOpenAI, reference_png: Path, strategy: str
) -> None:
    """Repeats (and the current prompt) are dropped before scoring; the rerank renders what
    is left, and the render budget stops an LLM run exactly as it stops an offline one."""
    critique = [{"differences": ["the square is too small"]}] if strategy == "enhanced" else []
    rounds = [
        *critique,
        {"prompts": ["a red square", "a red square", CAPTION, "a blue square"]},
        *critique,
        {"prompts": ["a green square", "a red square, flat", "a red circle"]},
    ] * 3
    fake_openai.reply({"prompt": CAPTION}, *rounds)

    result = api.reverse_prompt(
        reference_png,
        toolbox=toolbox,
        strategy=strategy,
        iterations=6,
        candidates=4,
        patience=0,
        budget=6,
        rerank_top_k=3,
        **FAST,
    )

    first = result.history[0]
    assert sorted(c["prompt"] for c in first["candidates"]) == sorted(
        [CAPTION, "a red square", "a blue square"]
    )  # the current prompt once, each repeat once
    assert result.renders_spent <= 6
    assert result.stop_reason == "budget"
