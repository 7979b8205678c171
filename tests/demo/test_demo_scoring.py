"""Honest attribute scores on hand-made scenes: precision, recall and F1, objects matched one
to one, claims about what the render does not show left unjudged."""

from __future__ import annotations

import pytest

from arpo.demo import Background, Scene, SceneObject, attribute_recall, attribute_score
from arpo.demo.scenes import hidden_slots, visible_attributes

STAR = SceneObject("star", "red", "striped", "large", "top left", 1)
HEART = SceneObject("heart", "green", "solid", "medium", "bottom right", 1)
SCENE = Scene((STAR, HEART), Background("blue"), "flat")
TRUE = "a large red striped star in the top left, a medium green solid heart in the bottom right"
TRUE += ", on a blue background, flat"  # 6 + 6 object facts, background, style: 14


def test_the_true_prompt_scores_one() -> None:
    score = attribute_score(SCENE, TRUE)
    assert (score.precision, score.recall, score.f1) == (1.0, 1.0, 1.0)
    assert len(score.hits) == 14 and not score.misses and not score.wrong and not score.hidden


def test_one_wrong_attribute_costs_precision_and_recall() -> None:
    score = attribute_score(SCENE, TRUE.replace("red", "yellow"))
    assert score.wrong == ("colour yellow",) and score.misses == ("colour red",)
    assert score.precision == pytest.approx(13 / 14) and score.recall == pytest.approx(13 / 14)


def test_an_extra_object_costs_precision_only() -> None:
    score = attribute_score(SCENE, TRUE + ", a small purple outlined ring")
    # every claim of the extra object is wrong: its shape, colour, fill, size and count
    assert len(score.wrong) == 5 and all(w.startswith("extra object") for w in score.wrong)
    assert score.recall == 1.0 and score.precision == pytest.approx(14 / 19)
    assert score.f1 == pytest.approx(2 * (14 / 19) / (14 / 19 + 1))


def test_a_missing_object_costs_recall_only() -> None:
    score = attribute_score(SCENE, "a large red striped star in the top left, blue background")
    assert score.precision == 1.0 and score.recall == pytest.approx(7 / 14)
    assert set(score.misses) == {
        "count 1", "shape heart", "colour green", "fill solid", "size medium",
        "position bottom right", "style flat",
    }  # fmt: skip


def test_objects_are_matched_one_to_one_in_any_order() -> None:
    swapped = "a medium green solid heart in the bottom right, a large red striped star in the "
    swapped += "top left, on a blue background, flat"
    assert attribute_score(SCENE, swapped).f1 == 1.0
    # two stars cannot both take the scene's one star: the second is extra
    doubled = attribute_score(SCENE, "a red star, a red star")
    assert doubled.hits == ("count 1", "shape star", "colour red")
    assert doubled.wrong == ("extra object: shape star", "extra object: colour red",
                             "extra object: count 1")  # fmt: skip
    # the best assignment, not the greedy one: the heart below shares 4 facts with the star
    # and 3 with the heart; the star shares 3 with the star only. Greedy (star to star first)
    # would leave 4 hits; the best assignment finds 3 + 3.
    crossed = attribute_score(SCENE, "a large red striped heart in the bottom right, a red star")
    assert crossed.precision == pytest.approx(6 / 9) and crossed.recall == pytest.approx(6 / 14)
    assert {"shape heart", "position bottom right", "shape star", "colour red"} <= set(crossed.hits)


def test_naming_an_object_does_not_earn_its_count() -> None:
    bare = attribute_score(SCENE, "red star")
    assert bare.hits == ("shape star", "colour red") and "count 1" in bare.misses
    assert "count 1" in attribute_score(SCENE, "a red star").hits
    wrong_count = attribute_score(SCENE, "two red stars")
    assert "count 2" in wrong_count.wrong and wrong_count.precision == pytest.approx(2 / 3)


def test_a_colour_the_sketch_does_not_show_is_not_judged() -> None:
    small = SceneObject("circle", "orange", "dotted", "small", "center", 1)
    sketch = Scene((small,), Background("white"), "pencil sketch")
    assert hidden_slots(sketch) == {("object", 0, "colour")}
    assert ("object", 0, "colour", "orange") not in visible_attributes(sketch)
    right = "a small orange dotted circle in the center, white background, pencil sketch"
    for prompt in (right, right.replace("orange", "purple"), right.replace("orange ", "")):
        score = attribute_score(sketch, prompt)
        assert (score.precision, score.recall) == (1.0, 1.0), prompt
        assert score.hidden == ("colour orange",)
    # a large object's colour shows through the wash, and so does every colour in flat style
    large = Scene((SceneObject("circle", "orange", "dotted", "large", "center", 1),),
                  Background("white"), "pencil sketch")  # fmt: skip
    flat = Scene((small,), Background("white"), "flat")
    assert not hidden_slots(large) and not hidden_slots(flat)


def test_an_object_in_the_background_colour_is_not_judged() -> None:
    scene = Scene((STAR, SceneObject("heart", "blue", "solid", "small", "left", 1)),
                  Background("blue"), "flat")  # fmt: skip
    score = attribute_score(scene, TRUE.split(", a medium")[0] + ", on a blue background, flat")
    assert score.recall == 1.0 and len(score.hidden) == 6
    assert attribute_recall(scene, "") == 0.0


# --------------------------------------------------------------------------- the user's prompt


def test_what_the_seed_chose_is_marked_and_not_judged() -> None:
    """`arpo demo --prompt "a red star"`: the seed chose the size, fill, position, background
    and style; a run is judged on the count, shape and colour the user wrote."""
    from arpo.demo.parse import parse_prompt
    from arpo.demo.render import scene_for_prompt
    from arpo.demo.scenes import canonical_parts, canonical_prompt, described_facts, seed_slots

    scene = scene_for_prompt("a red star", 0)
    chosen = seed_slots(parse_prompt("a red star"), scene)
    assert chosen == {
        ("object", 0, "fill"),
        ("object", 0, "size"),
        ("object", 0, "position"),
        ("background", "colour"),
        ("style",),
    }
    assert [f.split()[0] for f in described_facts(scene, chosen)] == [
        "fill", "size", "position", "background", "style"
    ]  # fmt: skip
    parts = canonical_parts(scene, chosen)
    assert "".join(text for text, _ in parts) == canonical_prompt(scene)
    assert [text for text, seed in parts if not seed] == ["a ", " red ", " star "]

    exact = attribute_score(scene, "a red star", chosen)
    assert (exact.recall, exact.precision) == (1.0, 1.0)  # nothing the user wrote is missing
    assert not exact.misses and not exact.seed_hits
    everything = attribute_score(scene, canonical_prompt(scene), chosen)
    assert everything.hits == exact.hits and len(everything.seed_hits) == 5
    wrong = attribute_score(scene, "a blue star on a purple background, pixel art", chosen)
    assert wrong.misses == ("colour red",) and wrong.wrong == ("colour blue",)  # style unjudged


def test_a_plural_without_a_count_leaves_the_count_to_the_seed() -> None:
    from arpo.demo.parse import parse_prompt
    from arpo.demo.render import scene_for_prompt
    from arpo.demo.scenes import seed_slots

    prompt = "stars on a white background, pixel art"
    chosen = seed_slots(parse_prompt(prompt), scene_for_prompt(prompt, 0))
    assert ("count", 0) in chosen and ("object", 0, "shape") not in chosen
    assert ("background", "colour") not in chosen and ("style",) not in chosen
    two = "two stars on a white background, pixel art"
    assert ("count", 0) not in seed_slots(parse_prompt(two), scene_for_prompt(two, 0))
