"""Training the demo CLIPs: targeted hard negatives, and a run that resumes from its
checkpoint exactly where it stopped (the same weights as one that was never interrupted)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from safetensors.torch import load_file

from arpo.demo import train as training
from arpo.demo.clip_model import ARCHITECTURES, architecture
from arpo.demo.evaluate import heldout_scene
from arpo.demo.scenes import caption

TINY_ARCH = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 8},
        "text_cfg": {"width": 16, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.25] * 3, "interpolation": "bicubic"},
    "training": {"scenes": "test-train", "seed": 3, "negatives": ["shape", "fill", "any"]},
}
RECIPE = {"steps": 4, "batch": 8, "pool_size": 48, "lr": 1e-3, "evaluate_scenes": 50}


@pytest.fixture
def tiny_arch(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_ARCH))
    return path


def test_targeted_negatives_change_exactly_that_attribute() -> None:
    rng = random.Random(0)
    for index in range(40):
        scene = heldout_scene(index, 1)
        (obj,) = scene.objects
        for attribute in ("shape", "fill"):
            (changed,) = training.hard_negative(scene, rng, attribute).objects
            assert getattr(changed, attribute) != getattr(obj, attribute)
            others = {"shape", "fill"} - {attribute}
            assert all(getattr(changed, a) == getattr(obj, a) for a in others)
            assert (changed.colour, changed.position) == (obj.colour, obj.position)


def test_each_negative_kind_gives_one_caption_per_scene_in_the_same_phrasing() -> None:
    scenes = [heldout_scene(i) for i in range(5)]
    positives, negatives = training.batch_texts(scenes, random.Random(1), ("shape", "any"))
    assert len(positives) == 5 and len(negatives) == 10
    assert all(n != p for p, n in zip(positives * 2, negatives, strict=True))
    phrasing = random.Random(1).getrandbits(32)
    assert positives[0] == caption(scenes[0], random.Random(phrasing))


def test_shipped_architectures_differ_and_train_on_disjoint_scenes() -> None:
    scorer, judge = (architecture(name) for name in ARCHITECTURES)
    assert scorer["model_cfg"]["vision_cfg"] != judge["model_cfg"]["vision_cfg"]
    assert scorer["training"]["scenes"] != judge["training"]["scenes"]
    assert "heldout" not in {scorer["training"]["scenes"], judge["training"]["scenes"]}
    with pytest.raises(FileNotFoundError, match="scorer, judge"):
        architecture("no-such-arch")


def test_an_interrupted_training_resumes_to_the_same_weights(
    tiny_arch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = training.train(tmp_path / "whole", arch=str(tiny_arch), work=tmp_path / "w1",
                           checkpoint_every=2, **RECIPE)  # fmt: skip

    real_save = training.Checkpoint.save

    def save_then_die(self: training.Checkpoint, state: dict) -> None:
        real_save(self, state)
        raise KeyboardInterrupt  # killed right after the step-2 checkpoint

    monkeypatch.setattr(training.Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        training.train(tmp_path / "resumed", arch=str(tiny_arch), work=tmp_path / "w2",
                       checkpoint_every=2, **RECIPE)  # fmt: skip
    monkeypatch.setattr(training.Checkpoint, "save", real_save)
    resumed = training.train(tmp_path / "resumed", arch=str(tiny_arch), work=tmp_path / "w2",
                             checkpoint_every=2, **RECIPE)  # fmt: skip

    a = load_file(str(tmp_path / "whole" / "open_clip_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "open_clip_model.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a), "resuming changed the training"
    assert whole["scenes"] == resumed["scenes"] == "test-train"
    assert resumed["retrieval_top1_of_100"] == whole["retrieval_top1_of_100"]


def test_a_checkpoint_from_other_arguments_is_refused(tiny_arch: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    training.train(tmp_path / "a", arch=str(tiny_arch), work=work, checkpoint_every=2,
                   **{**RECIPE, "steps": 3})  # fmt: skip
    with pytest.raises(SystemExit, match="other training arguments"):
        training.train(tmp_path / "b", arch=str(tiny_arch), work=work, **{**RECIPE, "lr": 0.1})
