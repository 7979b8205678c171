"""Offline edits and fusion, including the demo world: a fused prompt draws one scene's shapes
and colours in another scene's style."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from arpo import api
from arpo.config import Settings
from arpo.demo import (
    canonical_prompt,
    demo_vocabulary_dir,
    parse_prompt,
    render_prompt,
    sample_scene,
)
from arpo.remix import apply_instruction_offline, decompose_offline, fuse_parts
from arpo.tools.vocabulary import load_vocabulary


def test_instruction_offline_replaces_the_component_it_names() -> None:
    vocabulary = load_vocabulary()
    parts = decompose_offline("a red fox, oil painting, golden hour", vocabulary)
    edited, notes = apply_instruction_offline(parts, "make it a watercolor painting", vocabulary)
    assert edited.medium == ["watercolor painting"]
    assert edited.content == ["a red fox"] and edited.lighting == ["golden hour"]
    assert notes == ["medium replaced by: watercolor painting"]


@pytest.mark.parametrize(
    ("instruction", "component", "spelled"),
    [
        ("make it a watercolour painting", "medium", "watercolor painting"),  # packaged: US
        ("in pastel colours", "palette", "pastel colors"),
        ("make it greyscale", "palette", None),
    ],
)
def test_instruction_offline_finds_a_phrase_under_another_spelling(
    instruction, component, spelled
) -> None:
    vocabulary = load_vocabulary()
    spelled = spelled or vocabulary.spelled(instruction.split()[-1])
    assert spelled is not None
    parts = decompose_offline("a red fox, oil painting, golden hour", vocabulary)
    edited, notes = apply_instruction_offline(parts, instruction, vocabulary)
    assert getattr(edited, component) == [spelled]
    assert edited.content == ["a red fox"]  # replaced, not appended to the content
    assert not any("added to content" in note for note in notes)


def test_demo_instruction_in_american_spelling_replaces_the_demo_style() -> None:
    vocabulary = load_vocabulary(demo_vocabulary_dir())
    parts = decompose_offline("two red stars, on a black background, pencil sketch", vocabulary)
    edited, notes = apply_instruction_offline(parts, "make it watercolor", vocabulary)
    assert edited.style == ["watercolour"]  # the demo vocabulary's spelling
    assert "pencil sketch" not in edited.phrases() and "watercolor" not in edited.content
    assert notes == [
        "style replaced by: watercolour",
        "written as the vocabulary spells it: 'watercolor' as 'watercolour'",
    ]


def test_instruction_offline_adds_what_it_cannot_place_to_the_content() -> None:
    vocabulary = load_vocabulary()
    parts = decompose_offline("a red fox, oil painting", vocabulary)
    edited, notes = apply_instruction_offline(parts, "make it night and moonlight", vocabulary)
    assert edited.content == ["a red fox", "night"]
    assert edited.lighting == ["moonlight"]
    assert any("added to content" in note for note in notes)


def test_fuse_parts_takes_content_of_one_and_style_of_the_other() -> None:
    vocabulary = load_vocabulary()
    a = decompose_offline("a red fox, in a misty forest, close-up, oil painting", vocabulary)
    b = decompose_offline("a lighthouse, watercolor painting, moonlight, pastel colors", vocabulary)
    fused = fuse_parts(a, b)
    assert fused.content == ["a red fox"] and fused.setting == ["in a misty forest"]
    assert fused.composition == ["close-up"]
    assert fused.medium == ["watercolor painting"] and fused.lighting == ["moonlight"]
    assert fused.palette == ["pastel colors"]


def _scene_prompts() -> tuple[object, object]:
    a = sample_scene(random.Random(11), 2)
    seed = 12
    b = sample_scene(random.Random(seed), 1)
    while b.style == a.style or b.background == a.background:
        seed += 1
        b = sample_scene(random.Random(seed), 1)
    return a, b


def test_demo_fuse_draws_first_scene_in_second_scenes_style(tmp_path) -> None:
    toolbox = api.get_toolbox(Settings(home=tmp_path / "home", preset="demo"))
    a, b = _scene_prompts()
    remix = api.fuse(canonical_prompt(a), canonical_prompt(b), seed=3, toolbox=toolbox)

    stated = parse_prompt(remix.prompt)
    assert stated.style == b.style
    assert stated.background == a.background
    assert sorted((o.shape, o.colour) for o in stated.objects) == sorted(
        (o.shape, o.colour) for o in a.objects
    )
    # the render is the demo renderer's drawing of the fused prompt, with that seed
    drawn = np.asarray(render_prompt(remix.prompt, 3))
    assert np.array_equal(np.asarray(Image.open(remix.render).convert("RGB")), drawn)
    assert [s.role for s in remix.sources] == ["content", "style"]
    report = remix.report.read_text()
    assert "content.png" in report and "style.png" in report and "fuse.png" in report
