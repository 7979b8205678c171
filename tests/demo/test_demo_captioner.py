"""The shipped demo captioner: a learned model that loads offline through the real captioner
backend and writes what held-out renders show."""

from __future__ import annotations

import json
import random

import pytest

from arpo.demo.clip_model import demo_captioner_dir
from arpo.demo.train_captioner import caption_accuracy
from arpo.tools.captioner import Captioner

#: Share of one-object scenes whose caption states the attribute rightly (among scenes whose
#: render shows it), on 150 scenes drawn from a held-out seed range no training saw. Floors
#: sit about 0.1 below what 300 held-out scenes measured (training.json); README, "The demo
#: captioner".
#: Shape (0.62 measured; chance is 0.10) and fill (0.76; chance 0.25) are still below the rest.
FLOORS = {"colour": 0.88, "shape": 0.52, "fill": 0.66, "size": 0.87, "position": 0.89,
          "count": 0.89, "background": 0.9, "style": 0.88}  # fmt: skip
F1_FLOOR = 0.78  # attribute F1 on scenes of 1-3 objects: 0.87 measured
TRIALS = 150


@pytest.fixture(scope="module")
def captioner() -> Captioner:
    return Captioner.from_pretrained(str(demo_captioner_dir()), device="cpu", batch_size=50)


def test_ships_inside_the_package_as_a_transformers_folder() -> None:
    folder = demo_captioner_dir()
    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json"):
        assert (folder / name).is_file(), name
    assert (folder / "model.safetensors").stat().st_size < 8 * 1024 * 1024
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "vision-encoder-decoder"


def test_it_was_trained_on_scenes_neither_clip_saw() -> None:
    from arpo.demo.clip_model import demo_clip_dir, demo_judge_dir

    trained = json.loads((demo_captioner_dir() / "training.json").read_text())["scenes"]
    folders = (demo_clip_dir(), demo_judge_dir())
    clips = {json.loads((f / "training.json").read_text())["scenes"] for f in folders}
    assert trained not in clips | {"heldout"}


def test_captions_state_what_held_out_renders_show(captioner: Captioner) -> None:
    indices = random.Random("captioner-quality").sample(range(60_000, 70_000), TRIALS)
    measured = caption_accuracy(captioner, indices=indices)
    accuracy = measured["attribute_accuracy_one_object"]
    low = {k: (accuracy[k], floor) for k, floor in FLOORS.items() if accuracy[k] < floor}
    assert not low, f"below the floor (measured, floor): {low}"
    assert measured["attribute_f1_mixed"] >= F1_FLOOR


#: Share of held-out one-object scenes whose true caption the captioner finds more likely than
#: the same caption with one attribute changed (its likelihood, the search's second judge):
#: 200 scenes measured shape 0.92 and fill 0.92 (the search's CLIP: 0.69 and 0.70), the rest
#: 0.99 or more. Floors with margin for 60 scenes from another seed range.
LIKELIHOOD_FLOORS = {"shape": 0.75, "fill": 0.75, "colour": 0.9, "size": 0.88}


def test_its_likelihood_tells_the_true_caption_from_one_attribute_changed(
    captioner: Captioner,
) -> None:
    from arpo.demo.evaluate import heldout_scene, render_scene
    from arpo.demo.scenes import canonical_prompt, change_attribute

    rng = random.Random("captioner-likelihood")
    indices = rng.sample(range(70_000, 80_000), 60)
    wins = dict.fromkeys(LIKELIHOOD_FLOORS, 0)
    counted = dict.fromkeys(LIKELIHOOD_FLOORS, 0)
    for index in indices:
        scene = heldout_scene(index, 1)
        image = render_scene(scene, index)
        for attribute in LIKELIHOOD_FLOORS:
            changed = change_attribute(scene, attribute, rng)
            if changed is None:
                continue
            true, wrong = captioner.likelihood(
                image, [canonical_prompt(scene), canonical_prompt(changed)]
            )
            counted[attribute] += 1
            wins[attribute] += int(true > wrong)
    share = {a: wins[a] / counted[a] for a in LIKELIHOOD_FLOORS}
    low = {a: (share[a], f) for a, f in LIKELIHOOD_FLOORS.items() if share[a] < f}
    assert not low, f"below the floor (measured, floor): {low}"


def test_captions_of_any_length_score_in_a_batch_as_alone(captioner: Captioner) -> None:
    """Padding never changes a caption's score (the decoder reads them padded on the right)."""
    from arpo.demo.evaluate import heldout_scene, render_scene
    from arpo.demo.scenes import canonical_prompt

    image = render_scene(heldout_scene(70_001, 2), 70_001)
    texts = [canonical_prompt(heldout_scene(i, i % 3 + 1)) for i in range(70_010, 70_016)]
    texts.append("a red star")  # short: most padded
    together = captioner.likelihood(image, texts)
    alone = [captioner.likelihood(image, [text])[0] for text in texts]
    assert together == pytest.approx(alone, abs=1e-4)
    assert all(score <= 0 for score in together)
