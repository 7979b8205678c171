"""The token budget in the loop: what is scored, rendered and reported is what the model's text
encoders read; long-encoder families are scored past CLIP's 77 tokens and asked for sentences.

The LLM is the real ChatOpenAI client against the scripted fake server; the models are the
session's tiny ones (an SD 1.x pipeline: family sd1). A T5 family is had by a Toolbox whose
profile says FLUX.1-dev: the tiny pipeline has no T5 tokenizer, so its T5 tokens are estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from arpo import api
from arpo.config import Settings
from arpo.graph import prompts
from arpo.remix.compose import fit_prompt
from arpo.remix.decompose import component_of
from arpo.tools.families import FamilyProfile, profile_named
from arpo.tools.t2i import RenderParams
from arpo.tools.tokens import budget_for, clip_token_count, estimated_tokens
from arpo.tools.toolbox import Toolbox

FAST = {"width": 64, "height": 64, "steps": 1}
# quality tags of the packaged vocabulary's detail category, the kind an LLM piles on
DETAILS = [
    "highly detailed", "extremely detailed", "ultra detailed", "intricate details", "intricate",
    "fine details", "finely detailed", "hyper detailed", "insanely detailed", "sharp focus",
    "crisp", "tack sharp", "in focus", "high resolution", "ultra high resolution", "4k", "8k",
    "hd", "uhd", "high quality", "best quality", "masterpiece", "award-winning",
    "professional photography", "trending on artstation", "featured on behance",
]  # fmt: skip
LONG = ", ".join(["a red square", "on a blue background", *DETAILS])
SHARED = ", ".join(f"a small shape number {k}" for k in range(16))  # about 96 CLIP tokens


class Recording:
    """The tiny renderer, remembering every prompt the pipeline was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.pipeline = inner.pipeline
        self.prompts: list[str] = []

    def render(self, prompts_: Sequence[str], seeds: Sequence[int], params: RenderParams) -> Any:
        self.prompts += list(prompts_)
        return self.inner.render(prompts_, seeds, params)


class FluxToolbox(Toolbox):
    """The tiny models, read as if they were a FLUX.1-dev pipeline (CLIP 77 + T5 512)."""

    @property
    def profile(self) -> FamilyProfile:
        return profile_named("flux-dev")


@pytest.fixture
def home(presets_home: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    return home


def toolbox_for(
    home: Path, tiny_models: Toolbox, base_url: str | None, kind: type[Toolbox] = Toolbox
) -> Toolbox:
    llm = {"llm_base_url": base_url, "llm_api_key": "test"} if base_url else {}
    settings = Settings(home=home, preset="tiny", llm_max_retries=0, llm_timeout_s=5, **llm)
    renderer = Recording(tiny_models.backend)
    return kind(settings, renderer=renderer, scorer=tiny_models.scorer)  # type: ignore[arg-type]


def reference_of(toolbox: Toolbox, result: api.Result) -> Any:
    return toolbox.scorer.encode_stored([result.reference_id], toolbox.store.get_image)[0]


def cut_for_sd1(prompt: str, toolbox: Toolbox) -> str:
    return fit_prompt(
        prompt,
        75,
        count_tokens=clip_token_count,
        component_of=lambda phrase: component_of(phrase, toolbox.vocabulary),
    ).prompt


def test_the_tiny_pipeline_is_an_sd1_model(tiny_settings: Settings) -> None:
    assert Toolbox(tiny_settings).profile.name == "sd1"


def test_llm_candidates_past_clip_limit_are_cut_before_scoring(
    home: Path, tiny_models: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    toolbox = toolbox_for(home, tiny_models, fake_openai.base_url)
    assert clip_token_count(LONG) > 75
    fake_openai.reply({"prompts": [LONG, "a red square, blue"]}, {"prompts": [LONG]})

    result = api.reverse_prompt(
        reference_png,
        prompt="a red square",
        toolbox=toolbox,
        strategy="vanilla",
        iterations=2,
        candidates=2,
        **FAST,
    )

    asked = FakeOpenAI.text_in(fake_openai.requests[0])
    assert "comma-separated phrases" in asked and "75 CLIP tokens" in asked
    cut = cut_for_sd1(LONG, toolbox)
    # detail phrases go first, from the end: subject and setting stay, in their order
    assert cut.startswith("a red square, on a blue background, highly detailed")
    assert DETAILS[-1] not in cut
    first = result.history[0]
    scored = {c["prompt"]: c for c in first["candidates"]}
    assert LONG not in scored and cut in scored
    # what is scored is what the model reads: the cut text, scored as the cut text
    reference = reference_of(toolbox, result)
    expected = toolbox.scorer.text_similarity([cut], reference)[0]
    assert scored[cut]["text_score"] == pytest.approx(expected, abs=1e-6)
    assert scored[cut]["tokens"] == {"clip": clip_token_count(cut)}
    assert first["note"].startswith("1 of 2 candidates cut to 75 CLIP tokens: ")
    assert DETAILS[-1] in first["note"] and "blue background" not in first["note"]
    # every prompt scored, reported or rendered fits what CLIP reads
    everything = [c["prompt"] for r in result.history for c in r["candidates"]]
    everything += [r["prompt"] for r in result.history] + toolbox.backend.prompts
    assert everything and max(clip_token_count(p) for p in everything) <= 75


def test_a_starting_prompt_past_the_limit_is_cut_and_noted(
    home: Path, tiny_models: Toolbox, reference_png: Path
) -> None:
    toolbox = toolbox_for(home, tiny_models, None)
    result = api.reverse_prompt(
        reference_png, prompt=LONG, toolbox=toolbox, strategy="offline", iterations=1, **FAST
    )
    cut = cut_for_sd1(LONG, toolbox)
    assert result.initial_prompt == result.history[0]["prompt"] == cut
    assert result.history[0]["text_score"] == pytest.approx(
        toolbox.scorer.text_similarity([cut], reference_of(toolbox, result))[0], abs=1e-6
    )
    assert result.history[0]["note"].startswith("starting prompt cut to 75 CLIP tokens: ")
    offline = [c["prompt"] for c in result.history[0]["candidates"]]
    assert offline and max(clip_token_count(p) for p in offline) <= 75  # the proposer kept it
    assert max(clip_token_count(p) for p in toolbox.backend.prompts) <= 75


def test_t5_family_scores_past_clip_and_keeps_within_t5(
    home: Path, tiny_models: Toolbox, fake_openai: FakeOpenAI, reference_png: Path
) -> None:
    toolbox = toolbox_for(home, tiny_models, fake_openai.base_url, FluxToolbox)
    red, blue = f"{SHARED}, a red square", f"{SHARED}, a blue circle at night"
    huge = ". ".join(f"Sentence {k} tells of a small shape in a large room" for k in range(60))
    assert estimated_tokens(huge) > 511 and clip_token_count(red) > 77
    caption = "A red square sits on a blue background. It is a flat graphic."
    fake_openai.reply({"prompt": caption}, {"prompts": [red, blue, huge]})

    result = api.reverse_prompt(
        reference_png, toolbox=toolbox, strategy="vanilla", iterations=1, candidates=3, **FAST
    )

    for request in fake_openai.requests:  # the caption and the candidates: sentences
        asked = FakeOpenAI.text_in(request)
        assert "natural language" in asked and "descriptive sentences" in asked
        assert "511 T5 tokens (estimated)" in asked and "comma-separated" not in asked
    first = result.history[0]
    scored = {c["prompt"]: c for c in first["candidates"]}
    # both kept whole (T5 reads them), and told apart by words past CLIP's 77 tokens
    assert red in scored and blue in scored
    assert scored[red]["text_score"] != pytest.approx(scored[blue]["text_score"], abs=1e-6)
    assert set(scored[red]["tokens"]) == {"clip", "t5"}
    # the one past T5's limit was cut at a sentence boundary to what T5 reads
    assert huge not in scored
    (long_one,) = [p for p in scored if p.startswith("Sentence 0")]
    assert estimated_tokens(long_one) <= 511 and long_one.endswith(".")
    assert "1 of 3 candidates cut to 511 T5 tokens (estimated)" in first["note"]


def test_the_style_follows_the_family() -> None:
    tags = prompts.style_for(budget_for(profile_named("sd1")))
    assert "comma-separated phrases" in tags and "75 CLIP tokens" in tags
    assert "about 60 words" in tags
    sentences = prompts.style_for(budget_for(profile_named("sd3")))
    assert "descriptive sentences" in sentences and "not a list of tags" in sentences
    assert "255 T5 tokens (estimated)" in sentences
    assert prompts.style_for(budget_for(profile_named("sdxl"))) == tags
