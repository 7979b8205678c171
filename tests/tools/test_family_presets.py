"""The tiny SDXL, SD3 and Flux presets: built offline from their JSON, loadable like real
checkpoints, read as their families, with tokenizers that tokenize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from arpo.config import Settings
from arpo.tools.families import detect_family, read_model_index
from arpo.tools.presets import PresetModels, prepare_preset, preset_spec
from arpo.tools.presets.tiny_families import TINY_FAMILIES, t5_tokenizer_offline
from arpo.tools.t2i import RenderParams
from arpo.tools.toolbox import Toolbox

FAMILY = {"tiny-sdxl": "sdxl", "tiny-sd3": "sd3", "tiny-flux": "flux-dev"}
PIPELINE = {
    "tiny-sdxl": "StableDiffusionXLPipeline",
    "tiny-sd3": "StableDiffusion3Pipeline",
    "tiny-flux": "FluxPipeline",
}
# tokenizer attribute -> what it is, per preset
TOKENIZERS = {
    "tiny-sdxl": {"tokenizer": "clip", "tokenizer_2": "clip"},
    "tiny-sd3": {"tokenizer": "clip", "tokenizer_2": "clip", "tokenizer_3": "t5"},
    "tiny-flux": {"tokenizer": "clip", "tokenizer_2": "t5"},
}
T5_ENCODER = {"tiny-sd3": "text_encoder_3", "tiny-flux": "text_encoder_2"}
RED_FOX_CLIP = [49406, 320, 736, 3240, 49407]

presets = pytest.mark.parametrize("name", TINY_FAMILIES)


def test_every_family_preset_is_tested():
    assert set(TINY_FAMILIES) == set(FAMILY) == set(PIPELINE) == set(TOKENIZERS)


@pytest.fixture(scope="module")
def pipelines(family_presets_home: Path) -> dict:
    """Each preset's saved folder, loaded back once through AutoPipelineForText2Image."""
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    loaded = {}
    for name in TINY_FAMILIES:
        folder = family_presets_home / "presets" / name / "t2i"
        pipeline = AutoPipelineForText2Image.from_pretrained(folder)
        pipeline.set_progress_bar_config(disable=True)
        loaded[name] = pipeline
    return loaded


@presets
def test_preset_says_where_its_models_are(family_presets_home, name):
    root = family_presets_home / "presets"
    models = prepare_preset(name, root)
    assert isinstance(models, PresetModels)
    assert models.t2i_model == str(root / name / "t2i")
    assert (root / name / "t2i" / "model_index.json").is_file()
    # the scorer is tiny's, shared rather than built again
    assert models.clip_model == f"local-dir:{root / 'tiny' / 'clip'}"
    assert not (root / name / "clip").exists()
    assert (models.t2i_identity, models.clip_identity) == (f"{name}/t2i", "tiny/clip")
    assert models.renderer == "diffusers"
    assert models.provider == "arpo.tools.presets.tiny_families"
    # small and fast, stated as the family's values so runs follow the family's size rules
    family = preset_spec(name)["family_overrides"]
    assert family["steps"] == 2 and family["native_size"] == 64
    assert family["native_size"] % 16 == 0  # every family's multiple (SD3 and Flux: 16)
    assert not [p for p in (root / name).iterdir() if p.name.startswith(".")]


@presets
def test_saved_folder_is_detected_as_its_family(family_presets_home, name):
    folder = family_presets_home / "presets" / name / "t2i"
    index, configs = read_model_index(folder)
    assert index["_class_name"] == PIPELINE[name]
    assert detect_family(index, str(folder), configs).name == FAMILY[name]


@presets
def test_loads_through_auto_pipeline_and_renders(pipelines, name):
    pipeline = pipelines[name]
    assert type(pipeline).__name__ == PIPELINE[name]
    family = preset_spec(name)["family_overrides"]
    side = family["native_size"]
    image = pipeline(
        "a red fox",
        width=side,
        height=side,
        num_inference_steps=family["steps"],
        guidance_scale=family["guidance"],
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.size == (side, side)
    pixels = np.asarray(image, dtype=np.float32)
    assert np.isfinite(pixels).all() and pixels.std() > 1.0  # noise, not a black or flat image


@presets
def test_weights_are_the_saved_ones(family_presets_home, pipelines, name):
    pipeline = pipelines[name]
    main = "unet" if name == "tiny-sdxl" else "transformer"
    folder = family_presets_home / "presets" / name / "t2i" / main
    saved = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    loaded = getattr(pipeline, main).state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


@presets
def test_loaded_tokenizers_tokenize(pipelines, name):
    pipeline = pipelines[name]
    for attribute, kind in TOKENIZERS[name].items():
        tokenizer = getattr(pipeline, attribute)
        ids = tokenizer("a red fox").input_ids
        if kind == "clip":
            assert ids == RED_FOX_CLIP
            assert tokenizer.model_max_length == 77
            continue
        encoder = getattr(pipeline, T5_ENCODER[name])
        assert len(tokenizer) <= encoder.config.vocab_size
        assert type(tokenizer).__name__ == "T5Tokenizer"
        tokens = tokenizer.convert_ids_to_tokens(ids)
        assert tokens == ["▁a", "▁red", "▁fox", "</s>"]
        assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
        # a word the vocabulary lacks is spelled out, never <unk>; the encoder reads the ids
        odd = tokenizer("Zyxwv, 42!").input_ids
        assert tokenizer.unk_token_id not in odd and len(odd) > 5
        padded = tokenizer("a red fox", padding="max_length", max_length=16, return_tensors="pt")
        assert padded.input_ids[0, 4:].tolist() == [0] * 12
        with torch.no_grad():
            hidden = encoder(padded.input_ids).last_hidden_state
        assert hidden.shape == (1, 16, encoder.config.d_model)


def test_t5_tokenizer_fits_the_vocabulary_it_is_given():
    small = t5_tokenizer_offline(120)
    assert len(small) <= 120
    assert small.convert_ids_to_tokens(small("a red fox").input_ids)[-1] == "</s>"
    assert small.unk_token_id not in small("a red fox").input_ids  # spelled out
    with pytest.raises(ValueError, match="at least"):
        t5_tokenizer_offline(10)


@presets
def test_model_identity_does_not_depend_on_the_data_directory(family_presets_home, tmp_path, name):
    expected = {"preset": name, "t2i": f"{name}/t2i", "clip": "tiny/clip"}
    assert Toolbox(Settings(home=family_presets_home, preset=name)).model_identity() == expected
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(family_presets_home / "presets")
    assert Toolbox(Settings(home=home, preset=name)).model_identity() == expected


def test_toolbox_renders_a_family_preset_with_its_defaults(family_presets_home, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(family_presets_home / "presets")
    toolbox = Toolbox(Settings(home=home, preset="tiny-flux", device="cpu"))
    toolbox.load_models()
    options = toolbox.option_defaults
    params = RenderParams(
        steps=options["steps"],
        guidance=options["guidance"],
        width=options["width"],
        height=options["height"],
    )
    images = toolbox.backend.render(["a red fox", "a blue cat"], [0, 1], params)
    assert [image.size for image in images] == [(64, 64)] * 2
    assert type(toolbox.backend.pipeline).__name__ == "FluxPipeline"


def test_a_fresh_build_is_the_same_model_and_shares_tiny_clip(family_presets_home, tmp_path):
    """Fixed seeds: building again elsewhere gives the same weights, and the shared scorer
    built by a family preset is bit for bit the one the tiny preset builds."""
    root = tmp_path / "presets"
    models = prepare_preset("tiny-flux", root)
    assert models.clip_model == f"local-dir:{root / 'tiny' / 'clip'}"
    assert not (root / "tiny" / "t2i").exists()  # only the scorer half of tiny
    session = family_presets_home / "presets"
    parts = [
        "tiny-flux/t2i/transformer/diffusion_pytorch_model.safetensors",
        "tiny-flux/t2i/text_encoder_2/model.safetensors",
        "tiny/clip/open_clip_model.safetensors",
    ]
    for part in parts:
        fresh, built = load_file(str(root / part)), load_file(str(session / part))
        assert fresh.keys() == built.keys()
        assert all(torch.equal(fresh[k], built[k]) for k in built), part
    tokenizer = "tiny-flux/t2i/tokenizer_2/tokenizer.json"
    assert (root / tokenizer).read_text() == (session / tokenizer).read_text()


def test_settings_accept_every_packaged_preset(tmp_path):
    for name in ("none", "tiny", "demo", *TINY_FAMILIES):
        assert Settings(home=tmp_path, preset=name).preset == name
    with pytest.raises(ValueError, match="tiny-flux"):
        Settings(home=tmp_path, preset="tiny-sd4")
