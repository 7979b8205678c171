"""Training the demo captioner: targets the image decides, a model saved in the format the real
captioner backend loads, and a run that resumes to the same weights."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from safetensors.torch import load_file

from arpo.demo import train_captioner as training
from arpo.demo.evaluate import heldout_scene
from arpo.demo.parse import parse_prompt
from arpo.demo.scenes import scene_from_partial
from arpo.demo.world import POSITION_ANCHORS
from arpo.tools.captioner import Captioner

TINY_ARCH = {
    "image_size": 32,
    "encoder": {
        "model_type": "swin",
        "patch_size": 4,
        "embed_dim": 8,
        "depths": [1, 1],
        "num_heads": [1, 2],
        "window_size": 4,
        "mlp_ratio": 1.0,
    },
    "decoder": {
        "model_type": "bert",
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
    },
    "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.25] * 3},
    "training": {"scenes": "test-caption-train", "seed": 5},
}
RECIPE = {"steps": 4, "batch": 8, "pool_size": 40, "lr": 1e-3, "evaluate_scenes": 6}


@pytest.fixture
def tiny_arch(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-captioner.json"
    path.write_text(json.dumps(TINY_ARCH))
    return path


def test_targets_list_objects_in_reading_order_whatever_order_the_scene_has() -> None:
    scene = next(s for i in range(200) if len((s := heldout_scene(i, 3)).objects) == 3)
    shuffled = replace(scene, objects=tuple(reversed(scene.objects)))
    target = training.caption_target(scene)
    assert training.caption_target(shuffled) == target
    assert scene_from_partial(parse_prompt(target)) is not None  # the target parses back
    singles = [o for o in scene.objects if o.position]
    top_to_bottom = sorted(singles, key=lambda o: POSITION_ANCHORS[o.position][::-1])
    spoken = [target.index(f"{o.colour} ") for o in top_to_bottom]
    assert spoken == sorted(spoken)


def test_the_shipped_recipe_trains_on_scenes_no_clip_and_no_evaluation_uses() -> None:
    from arpo.demo.clip_model import ARCHITECTURES, architecture

    spec = training.architecture_spec()
    clip_scenes = {architecture(name)["training"]["scenes"] for name in ARCHITECTURES}
    assert spec["training"]["scenes"] not in clip_scenes | {"heldout"}


def test_a_trained_captioner_loads_through_the_real_backend(
    tiny_arch: Path, tmp_path: Path
) -> None:
    report = training.train(tmp_path / "cap", arch=tiny_arch, work=tmp_path / "w", **RECIPE)
    assert set(report["attribute_accuracy_one_object"]) >= {"shape", "colour", "style"}
    assert (tmp_path / "cap" / "training.json").is_file()
    captioner = Captioner.from_pretrained(str(tmp_path / "cap"), device="cpu")
    assert type(captioner.model).__name__ == "VisionEncoderDecoderModel"
    from arpo.demo.evaluate import render_scene

    captions = captioner.caption([render_scene(heldout_scene(i), i) for i in range(3)])
    assert len(captions) == 3 and all(isinstance(text, str) for text in captions)
    assert not any("[" in text for text in captions)  # special tokens are not written out
    text = "a red star in the top left, on a blue background"
    ids = captioner.processor.tokenizer(text)["input_ids"]
    assert captioner.processor.batch_decode([ids], skip_special_tokens=True) == [text]


def test_an_interrupted_training_resumes_to_the_same_weights(
    tiny_arch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    training.train(tmp_path / "whole", arch=tiny_arch, work=tmp_path / "w1", checkpoint_every=2,
                   **RECIPE)  # fmt: skip
    real_save = training.Checkpoint.save

    def save_then_die(self: training.Checkpoint, state: dict) -> None:
        real_save(self, state)
        raise KeyboardInterrupt  # killed right after the step-2 checkpoint

    monkeypatch.setattr(training.Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        training.train(tmp_path / "cut", arch=tiny_arch, work=tmp_path / "w2", checkpoint_every=2,
                       **RECIPE)  # fmt: skip
    monkeypatch.setattr(training.Checkpoint, "save", real_save)
    training.train(tmp_path / "cut", arch=tiny_arch, work=tmp_path / "w2", checkpoint_every=2,
                   **RECIPE)  # fmt: skip
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert whole.keys() == resumed.keys()
    assert all(bool((whole[k] == resumed[k]).all()) for k in whole)


def test_a_training_stopped_early_saves_there_and_a_later_run_goes_on(
    tiny_arch: Path, tmp_path: Path
) -> None:
    """``until`` stops on the full schedule: the model saved at step 3 of 4 is not a 3-step
    training, and going on from it gives the full run's weights."""
    training.train(tmp_path / "whole", arch=tiny_arch, work=tmp_path / "w1", **RECIPE)
    early = training.train(tmp_path / "early", arch=tiny_arch, work=tmp_path / "w2", until=3,
                           **RECIPE)  # fmt: skip
    assert early["until"] == 3 and early["steps"] == 4
    short = training.train(tmp_path / "short", arch=tiny_arch, work=tmp_path / "w3",
                           **{**RECIPE, "steps": 3})  # fmt: skip
    stopped = load_file(str(tmp_path / "early" / "model.safetensors"))
    three = load_file(str(tmp_path / "short" / "model.safetensors"))
    assert any(bool((stopped[k] != three[k]).any()) for k in stopped)  # another schedule
    training.train(tmp_path / "rest", arch=tiny_arch, work=tmp_path / "w2", **RECIPE)
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    rest = load_file(str(tmp_path / "rest" / "model.safetensors"))
    assert all(bool((whole[k] == rest[k]).all()) for k in whole)
    assert short["until"] == 3


def test_a_checkpoint_of_another_recipe_is_refused(tiny_arch: Path, tmp_path: Path) -> None:
    training.train(tmp_path / "a", arch=tiny_arch, work=tmp_path / "w", checkpoint_every=2,
                   **{**RECIPE, "steps": 3})  # fmt: skip
    with pytest.raises(SystemExit, match="other training arguments"):
        training.train(tmp_path / "b", arch=tiny_arch, work=tmp_path / "w", checkpoint_every=2,
                       **{**RECIPE, "steps": 3, "lr": 2e-3})  # fmt: skip
