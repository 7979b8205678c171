"""The shipped demo CLIPs (the search's and the held-out judge): both load offline through the
real scorer path and tell the world's attributes apart on held-out scenes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from arpo.demo.clip_model import demo_clip_dir, demo_judge_dir
from arpo.demo.evaluate import heldout_scene, render_scene
from arpo.demo.scenes import ATTRIBUTES, canonical_prompt, change_attribute
from arpo.tools.clip import ClipScorer

MODELS = {"search": demo_clip_dir, "judge": demo_judge_dir}
#: Share of one-object scenes whose true caption beats the caption with one attribute
#: changed, per model. Floors sit about 0.1 below what held-out scenes measured (each folder's
#: training.json, 300 scenes), a margin for the 200 drawn here. Shape and fill (and the
#: judge's position) are far below the 0.9 the project aims for: README, "The demo CLIPs".
FLOORS = {
    "search": {"colour": 0.85, "shape": 0.6, "fill": 0.6, "size": 0.85, "position": 0.9,
               "count": 0.9, "background": 0.9, "style": 0.9},
    "judge": {"colour": 0.85, "shape": 0.58, "fill": 0.6, "size": 0.85, "position": 0.55,
              "count": 0.85, "background": 0.9, "style": 0.9},
}  # fmt: skip
TRIALS = 200


@pytest.fixture(scope="module", params=list(MODELS))
def model(request: pytest.FixtureRequest) -> tuple[str, ClipScorer]:
    folder = MODELS[request.param]()
    return request.param, ClipScorer.from_pretrained(f"local-dir:{folder}", device="cpu")


@pytest.mark.parametrize("folder", [demo_clip_dir, demo_judge_dir])
def test_ships_inside_the_package_and_is_small(folder) -> None:
    path: Path = folder()
    assert (path / "open_clip_config.json").is_file()
    assert (path / "tokenizer.json").is_file()
    assert (path / "open_clip_model.safetensors").stat().st_size < 8 * 1024 * 1024


def test_the_judge_is_another_model_from_other_scenes() -> None:
    search = json.loads((demo_clip_dir() / "training.json").read_text())
    judge = json.loads((demo_judge_dir() / "training.json").read_text())
    assert (search["scenes"], search["seed"]) != (judge["scenes"], judge["seed"])
    configs = [json.loads((f() / "open_clip_config.json").read_text()) for f in MODELS.values()]
    assert configs[0]["model_cfg"]["vision_cfg"] != configs[1]["model_cfg"]["vision_cfg"]


def test_true_caption_beats_one_attribute_changed_on_held_out_scenes(
    model: tuple[str, ClipScorer],
) -> None:
    """Every attribute, on scenes drawn at random from a held-out seed range no training saw."""
    name, scorer = model
    draw = random.Random(f"quality:{name}")
    indices = draw.sample(range(50_000, 60_000), TRIALS)
    scenes = [heldout_scene(index, 1) for index in indices]
    images = scorer.encode_images(
        [render_scene(s, i) for s, i in zip(scenes, indices, strict=True)]
    )
    accuracy: dict[str, float] = {}
    for attribute in ATTRIBUTES:
        rng = random.Random(attribute)
        pairs = [(k, change_attribute(scene, attribute, rng)) for k, scene in enumerate(scenes)]
        pairs = [(k, wrong) for k, wrong in pairs if wrong is not None]
        true = scorer.encode_texts([canonical_prompt(scenes[k]) for k, _ in pairs])
        wrong = scorer.encode_texts([canonical_prompt(w) for _, w in pairs])
        wins = sum(
            float(images[k] @ true[j]) > float(images[k] @ wrong[j])
            for j, (k, _) in enumerate(pairs)
        )
        accuracy[attribute] = wins / len(pairs)
    weak = {a: round(v, 2) for a, v in accuracy.items() if v < FLOORS[name][a]}
    assert not weak, f"{name} CLIP below its floors on {weak} (all: {accuracy})"


def test_unknown_words_do_not_break_the_tokenizer(model: tuple[str, ClipScorer]) -> None:
    _, scorer = model
    image = scorer.encode_images([render_scene(heldout_scene(1, 1), 1)])[0]
    scores = scorer.text_similarity(["a zebra riding a bicycle, oil painting", ""], image)
    assert len(scores) == 2


def test_it_says_which_words_it_cannot_read(model: tuple[str, ClipScorer]) -> None:
    _, scorer = model
    assert scorer.unknown_words("a cat") == ["cat"]
    assert scorer.unknown_words("A lighthouse at dusk, red") == ["lighthouse", "dusk"]
    assert scorer.unknown_words("two red stars, on a black background, watercolor") == []
