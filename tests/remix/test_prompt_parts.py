"""Decompose and compose: components from the phrase vocabulary, round trips, token limits."""

from __future__ import annotations

import pytest

from arpo.demo import demo_vocabulary_dir
from arpo.errors import InvalidOptionError
from arpo.remix import (
    COMPONENTS,
    PromptParts,
    PromptTarget,
    check_component,
    compose,
    decompose_offline,
    target_for,
)
from arpo.tools.families import profile_named
from arpo.tools.tokens import budget_for, estimated_tokens
from arpo.tools.vocabulary import load_vocabulary, split_phrases

PROMPT = (
    "a red fox, in a misty forest, close-up, oil painting, in the style of art nouveau, "
    "golden hour, pastel colors, highly detailed"
)


def test_offline_decomposition_files_phrases_by_vocabulary_category() -> None:
    parts = decompose_offline(PROMPT, load_vocabulary(), negative_prompt="blurry")
    assert parts.content == ["a red fox"]
    assert parts.setting == ["in a misty forest"]  # unknown, but reads like a place
    assert parts.composition == ["close-up"]
    assert parts.medium == ["oil painting"]
    assert parts.style == ["in the style of art nouveau"]
    assert parts.lighting == ["golden hour"]
    assert parts.palette == ["pastel colors"]
    assert parts.detail == ["highly detailed"]
    assert parts.negative == "blurry"


def test_unknown_phrases_are_content() -> None:
    parts = decompose_offline("a zorblax eating noodles, oil painting", load_vocabulary())
    assert parts.content == ["a zorblax eating noodles"]
    assert parts.medium == ["oil painting"]


@pytest.mark.parametrize(
    "prompt",
    [
        PROMPT,
        "watercolor painting, a lighthouse, dramatic lighting, wide shot",
        "a large red striped star in the top left, on a blue background, pixel art",
    ],
)
def test_decompose_then_compose_keeps_every_phrase(prompt: str) -> None:
    parts = decompose_offline(prompt, load_vocabulary())
    composed = compose(parts)
    assert sorted(split_phrases(composed.prompt)) == sorted(split_phrases(prompt))
    assert composed.cut == []
    assert composed.tokens is not None and composed.tokens <= 75


def test_composed_prompt_states_content_first_and_detail_last() -> None:
    shuffled = "highly detailed, oil painting, a red fox, golden hour"
    composed = compose(decompose_offline(shuffled, load_vocabulary()))
    assert composed.prompt == "a red fox, oil painting, golden hour, highly detailed"


def test_too_long_prompt_is_cut_least_important_first_and_reported() -> None:
    details = [f"detail number {k}" for k in range(20)]
    parts = PromptParts(
        content=["a red fox"], medium=["oil painting"], detail=["highly detailed", *details]
    )
    composed = compose(parts)
    assert composed.tokens is not None and composed.tokens <= 75
    assert composed.cut and set(composed.cut) <= {"highly detailed", *details}
    assert composed.prompt.startswith("a red fox, oil painting")
    kept = split_phrases(composed.prompt)
    assert sorted(kept + composed.cut) == sorted(parts.phrases())
    assert not composed.over_limit


def test_a_single_phrase_over_the_limit_is_kept_and_flagged() -> None:
    composed = compose(PromptParts(content=["fox " * 100]))
    assert composed.cut == [] and composed.over_limit


def test_long_text_encoders_get_sentences_within_their_t5_limit() -> None:
    budget = budget_for(profile_named("flux-dev"))
    target = target_for(budget)
    assert target == PromptTarget(form="sentences", max_tokens=511)  # T5 512, less its </s>
    assert not budget.limit.exact  # no pipeline tokenizer at hand: T5 tokens estimated
    assert target.count_tokens("a red fox") == estimated_tokens("a red fox")
    assert target_for(budget_for(profile_named("sd1"))) == PromptTarget("tags", 75)
    assert target_for(budget_for(profile_named("sdxl"))) == PromptTarget("tags", 75)
    assert target_for(budget_for(profile_named("sd3"))) == PromptTarget("sentences", 255)
    parts = decompose_offline(PROMPT, load_vocabulary())
    composed = compose(parts, target)
    assert composed.prompt.startswith("A red fox, in a misty forest, close-up. Oil painting")
    assert composed.prompt.endswith("Highly detailed.")
    assert composed.cut == [] and composed.max_tokens == 511


def test_sentences_past_the_t5_limit_are_cut_least_important_first() -> None:
    details = [f"intricate detail number {k}" for k in range(120)]
    parts = PromptParts(content=["a red fox"], medium=["oil painting"], detail=details)
    composed = compose(parts, target_for(budget_for(profile_named("sd3"))))
    assert estimated_tokens(composed.prompt) == composed.tokens <= 255
    assert composed.cut and set(composed.cut) <= set(details)
    assert composed.prompt.startswith("A red fox. Oil painting.")


def test_demo_world_words_map_to_content_style_and_setting() -> None:
    vocabulary = load_vocabulary(demo_vocabulary_dir())
    prompt = "a small green dotted star at the top, red, on a black background, watercolour"
    parts = decompose_offline(prompt, vocabulary, overrides={"colour": "content"})
    assert parts.content == ["a small green dotted star at the top", "red"]
    assert parts.setting == ["on a black background"]
    assert parts.style == ["watercolour"]


def test_with_changes_replaces_clears_and_rejects_unknown_components() -> None:
    parts = decompose_offline(PROMPT, load_vocabulary())
    changed = parts.with_changes({"Style": "ukiyo-e, flat colours", "detail": "", "negative": "x"})
    assert changed.style == ["ukiyo-e", "flat colours"]
    assert changed.detail == [] and changed.negative == "x"
    assert changed.content == parts.content
    with pytest.raises(InvalidOptionError, match=r"unknown prompt component 'mood'.*content"):
        parts.with_changes({"mood": "gloomy"})
    assert check_component("colour") == "palette"


def test_empty_inputs_are_clear_errors() -> None:
    with pytest.raises(InvalidOptionError, match="prompt is empty"):
        decompose_offline("  ", load_vocabulary())
    with pytest.raises(InvalidOptionError, match="every prompt component is empty"):
        compose(PromptParts())
    assert set(PromptParts.model_fields) == {*COMPONENTS, "negative"}


def test_a_components_other_name_is_noted_with_where_it_went() -> None:
    from arpo.remix.parts import alias_notes

    assert alias_notes(["colour", "style", "Subject", "palette"]) == [
        "'colour' went to the palette component (arpo's name for it)",
        "'Subject' went to the content component (arpo's name for it)",
    ]
