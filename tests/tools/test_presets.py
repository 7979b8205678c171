"""The tiny preset: built once per data directory, loadable like real checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from arpo.errors import InvalidOptionError
from arpo.tools import presets
from arpo.tools.presets import (
    PresetModels,
    _build_atomically,
    clip_tokenizer_offline,
    prepare_preset,
    preset_spec,
)

CAT_IDS = [49406, 320, 2368, 49407]


def model_files(root):
    return {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_preset_describes_the_built_models(presets_home):
    models = prepare_preset("tiny", presets_home / "presets")
    root = presets_home / "presets" / "tiny"
    assert isinstance(models, PresetModels)
    assert models.t2i_model == str(root / "t2i")
    assert models.clip_model == f"local-dir:{root / 'clip'}"
    assert models.clip_pretrained is None
    assert models.option_defaults == {}
    assert models.family_overrides == {"native_size": 128, "steps": 2, "guidance": 5.0}
    assert models.renderer == "diffusers" and models.provider is None
    assert (models.t2i_identity, models.clip_identity) == ("tiny/t2i", "tiny/clip")
    assert (root / "t2i" / "model_index.json").is_file()
    assert (root / "clip" / "open_clip_config.json").is_file()
    assert (root / "clip" / "open_clip_model.safetensors").is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no leftover temp dirs


def test_second_prepare_does_not_rebuild(presets_home, monkeypatch):
    root = presets_home / "presets" / "tiny"
    before = model_files(root)

    def no_build(*args):
        raise AssertionError("the preset was rebuilt")

    monkeypatch.setattr(presets, "_build_tiny_t2i", no_build)
    monkeypatch.setattr(presets, "_build_tiny_clip", no_build)
    again = prepare_preset("tiny", presets_home / "presets")
    assert again == prepare_preset("tiny", presets_home / "presets")
    assert model_files(root) == before


def test_missing_half_is_rebuilt_alone(tmp_path, presets_home, monkeypatch):
    import shutil

    target = tmp_path / "presets" / "tiny"
    shutil.copytree(presets_home / "presets" / "tiny" / "t2i", target / "t2i")
    built = []

    def fake_clip(spec, seed, out):
        built.append("clip")
        (out / "open_clip_config.json").write_text("{}")

    monkeypatch.setattr(presets, "_build_tiny_t2i", lambda *a: built.append("t2i"))
    monkeypatch.setattr(presets, "_build_tiny_clip", fake_clip)
    prepare_preset("tiny", tmp_path / "presets")
    assert built == ["clip"]
    assert (target / "clip" / "open_clip_config.json").is_file()


def test_t2i_output_loads_through_auto_pipeline(tiny_models):
    # tiny_models loaded the folder with AutoPipelineForText2Image.from_pretrained
    pipeline = tiny_models.backend.pipeline
    spec = preset_spec("tiny")["t2i"]
    assert type(pipeline).__name__ == "StableDiffusionPipeline"
    assert list(pipeline.unet.config.block_out_channels) == spec["unet"]["block_out_channels"]
    assert pipeline.text_encoder.config.hidden_size == spec["text_encoder"]["hidden_size"]
    assert pipeline.safety_checker is None
    saved = load_file(f"{tiny_models.preset.t2i_model}/unet/diffusion_pytorch_model.safetensors")
    loaded = pipeline.unet.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_clip_output_loads_through_open_clip_local_dir(tiny_models):
    import open_clip

    folder = tiny_models.preset.clip_model.removeprefix("local-dir:")
    model = open_clip.create_model(f"local-dir:{folder}", device="cpu")
    saved = load_file(f"{folder}/open_clip_model.safetensors")
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    # the session scorer has the same weights, so it was loaded from the folder too
    scorer_state = tiny_models.scorer.model.state_dict()
    assert all(torch.equal(saved[k], scorer_state[k]) for k in saved)
    with open(f"{folder}/open_clip_config.json") as handle:
        assert json.load(handle) == preset_spec("tiny")["clip"]


def test_tokenizers_encode_a_cat(tiny_models):
    assert clip_tokenizer_offline()("a cat").input_ids == CAT_IDS
    assert tiny_models.backend.pipeline.tokenizer("a cat").input_ids == CAT_IDS
    tokens = tiny_models.scorer.tokenizer(["a cat"])[0].tolist()
    assert tokens[:4] == CAT_IDS
    assert set(tokens[4:]) == {0}


@pytest.mark.parametrize("name", ["huge", "none", ""])
def test_unknown_preset_is_an_option_error(tmp_path, name):
    with pytest.raises(InvalidOptionError) as info:
        prepare_preset(name, tmp_path)
    assert f"unknown preset '{name}'" in str(info.value)
    assert "tiny" in str(info.value)
    assert not any(tmp_path.iterdir())


def test_failed_build_leaves_nothing_behind(tmp_path):
    def broken(out):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        _build_atomically(tmp_path / "models" / "t2i", broken)
    assert list((tmp_path / "models").iterdir()) == []


def test_build_that_loses_a_race_keeps_the_winner(tmp_path):
    target = tmp_path / "t2i"

    def build(out):
        (out / "mine").write_text("loser")
        target.mkdir()
        (target / "winner").write_text("first")

    _build_atomically(target, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t2i"]
    assert [p.name for p in target.iterdir()] == ["winner"]
