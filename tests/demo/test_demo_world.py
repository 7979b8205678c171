"""The demo world's grammar: sampling, captions, parsing, scoring and the demo vocabulary."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from arpo.demo import (
    Background,
    PartialObject,
    Scene,
    SceneObject,
    attribute_hits,
    attribute_recall,
    attributes,
    canonical_prompt,
    caption,
    demo_vocabulary_dir,
    demo_vocabulary_phrases,
    parse_prompt,
    sample_scene,
    scene_from_partial,
    write_demo_vocabulary,
)
from arpo.demo.world import COLOURS, FILLS, MAX_OBJECTS, POSITIONS, SHAPES, SIZES, STYLES
from arpo.tools.vocabulary import load_vocabulary

STAR = SceneObject("star", "red", "striped", "large", "top left", 1)
CIRCLES = SceneObject("circle", "blue", "solid", "small", None, 2)
SCENE = Scene((STAR, CIRCLES), Background("white", "pink"), "pixel art")


def test_sample_scene_covers_the_world() -> None:
    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(1500)]
    seen: dict[str, set[object]] = {k: set() for k in ("shape", "colour", "fill", "size", "pos")}
    for scene in scenes:
        assert 1 <= scene.total_objects <= MAX_OBJECTS and len(scene.objects) <= 3
        for obj in scene.objects:
            assert (obj.position is None) == (obj.count > 1)
            seen["shape"].add(obj.shape)
            seen["colour"].add(obj.colour)
            seen["fill"].add(obj.fill)
            seen["size"].add(obj.size)
            seen["pos"].add(obj.position)
        pairs = [(obj.shape, obj.colour) for obj in scene.objects]
        assert len(set(pairs)) == len(pairs)
    assert seen["shape"] == set(SHAPES) and seen["colour"] == set(COLOURS)
    assert seen["fill"] == set(FILLS) and seen["size"] == set(SIZES)
    assert seen["pos"] == {*POSITIONS, None}
    assert {scene.style for scene in scenes} == set(STYLES)
    assert {scene.total_objects for scene in scenes} == {1, 2, 3}
    assert any(scene.background.is_gradient for scene in scenes)
    assert sample_scene(random.Random(1), n_objects=3).total_objects == 3
    with pytest.raises(ValueError):
        sample_scene(rng, n_objects=4)


def test_captions_parse_back_to_their_scene() -> None:
    wordings = set()
    for seed in range(500):
        rng = random.Random(seed)
        scene = sample_scene(rng)
        text = caption(scene, rng)
        wordings.add(text)
        assert scene_from_partial(parse_prompt(text)) == scene, text
        assert scene_from_partial(parse_prompt(canonical_prompt(scene))) == scene
    assert len(wordings) == 500


def test_canonical_prompt() -> None:
    assert canonical_prompt(SCENE) == (
        "a large red striped star in the top left, two small blue solid circles, "
        "on a white to pink gradient background, pixel art"
    )


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a gray star", PartialObject("star", colour="grey", count=1)),
        ("violet hexagon, upper left", PartialObject("hexagon", "purple", position="top left")),
        ("a polka-dot heart", PartialObject("heart", fill="dotted", count=1)),
        ("Two BIG hollow donuts!", PartialObject("ring", fill="outlined", size="large", count=2,
                                                plural=True)),
        ("tiny moon, centre", PartialObject("crescent", size="small", position="center")),
        ("a plus sign with stripes", PartialObject("cross", fill="striped", count=1)),
        ("stars", PartialObject("star", plural=True)),
        ("a red shape", PartialObject(None, colour="red", count=1)),
    ],
)  # fmt: skip
def test_synonyms_plurals_and_hyphens(prompt: str, expected: PartialObject) -> None:
    assert parse_prompt(prompt).objects == (expected,)


def test_parse_styles_and_backgrounds() -> None:
    assert parse_prompt("watercolor painting of a cat").style == "watercolour"
    assert parse_prompt("8-bit").style == "pixel art"
    assert parse_prompt("blurry, out of focus").style == "blurred"
    assert parse_prompt("a pencil drawing").style == "pencil sketch"
    assert parse_prompt("grainy photo").style == "film grain"
    assert parse_prompt("a red star on a gray background").background == Background("grey")
    assert parse_prompt("background: blue").background == Background("blue")
    red_to_white = Background("red", "white")
    for text in ("red to white gradient", "gradient from red to white", "a red-to-white gradient"):
        assert parse_prompt(text).background == red_to_white, text
    scene = parse_prompt("a red star on a blue background")
    assert scene.objects == (PartialObject("star", "red", count=1),)


def test_parse_sd_style_prompt_with_extra_words() -> None:
    prompt = (
        "masterpiece, best quality, a huge crimson star with stripes in the upper-left corner and "
        "3 tiny cyan discs, highly detailed, (gradient background from white to pink), pixelated"
    )
    scene = parse_prompt(prompt)
    assert scene.objects == (
        PartialObject("star", "red", "striped", "large", "top left", 1),
        PartialObject("circle", "cyan", None, "small", None, 3, plural=True),
    )
    assert scene.background == Background("white", "pink")
    assert scene.style == "pixel art"


def test_loose_attributes_attach_to_the_nearest_object() -> None:
    scene = parse_prompt("a star, red, striped, in the bottom right, large")
    assert scene.objects == (PartialObject("star", "red", "striped", "large", "bottom right", 1),)
    assert parse_prompt("nothing here at all").objects == ()
    assert parse_prompt("red, striped").objects == (PartialObject(None, "red", "striped"),)


def test_attributes_and_recall() -> None:
    facts = attributes(SCENE)
    assert ("object", 0, "colour", "red") in facts and ("count", 1, 2) in facts
    assert ("style", "pixel art") in facts and ("background", "to", "pink") in facts
    assert not any(f[:3] == ("object", 1, "position") for f in facts)
    assert attribute_recall(SCENE, canonical_prompt(SCENE)) == 1.0
    assert attribute_recall(SCENE, "") == 0.0
    wrong = canonical_prompt(SCENE).replace("red", "green")
    assert 0.8 < attribute_recall(SCENE, wrong) < 1.0
    hits, misses = attribute_hits(SCENE, wrong)
    assert misses == ["colour red"] and "shape star" in hits
    # Objects are matched by shape and colour, in whatever order the prompt names them.
    swapped = "two small blue solid circles, a large red striped star in the top left"
    hits, misses = attribute_hits(SCENE, swapped)
    gradient = ["background gradient from white", "background gradient to pink"]
    assert sorted(misses) == [*gradient, "style pixel art"]


def test_committed_vocabulary_matches_the_generator(tmp_path: Path) -> None:
    written = write_demo_vocabulary(tmp_path)
    committed = demo_vocabulary_dir()
    assert sorted(p.name for p in committed.glob("*.txt")) == sorted(p.name for p in written)
    for path in written:
        assert (committed / path.name).read_text(encoding="utf-8") == path.read_text("utf-8")


def test_demo_vocabulary_loads_and_parses() -> None:
    vocab = load_vocabulary(demo_vocabulary_dir())
    assert set(vocab.categories) == set(demo_vocabulary_phrases())
    assert 3000 <= len(vocab) <= 6000
    assert vocab.one_per_prompt == {"position", "background", "style"}
    for category, phrases in vocab.categories.items():
        for phrase in phrases:
            assert phrase == phrase.lower() and "," not in phrase
            parsed = parse_prompt(phrase)
            if category == "subject":  # whole objects: every attribute inside one phrase
                (obj,) = parsed.objects
                assert None not in (obj.shape, obj.colour, obj.fill, obj.size), phrase
            elif category == "background":
                assert parsed.background is not None, phrase
            elif category == "style":
                assert parsed.style is not None, phrase
            else:
                assert parsed.objects, phrase
