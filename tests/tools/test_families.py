"""Model families as data: every profile loads, detection picks the right one per pipeline
class and hint, overrides are checked."""

from __future__ import annotations

import json

import pytest

from arpo.errors import InvalidOptionError
from arpo.tools.families import (
    UNKNOWN,
    detect_family,
    profile_named,
    profiles,
    read_model_index,
)


def test_every_profile_is_complete_and_consistent() -> None:
    for name, profile in profiles().items():
        assert profile.name == name
        assert profile.native_size % profile.size_multiple == 0, name
        assert profile.steps >= 1 and profile.guidance >= 0, name
        assert profile.text_encoders and profile.token_limit >= 1, name
        assert set(profile.dtype) >= {"cuda", "mps", "cpu"}, name
        assert profile.dtype_for("cpu") == "float32", name
        assert profile.prompt_style in ("tags", "sentences"), name
        assert profile.negative_prompt in ("native", "true_cfg", "none"), name


FLUX_DEV = {"transformer": {"guidance_embeds": True}}
FLUX_SCHNELL = {"transformer": {"guidance_embeds": False}}
SD3 = "StableDiffusion3Pipeline"


@pytest.mark.parametrize(
    ("pipeline", "ref", "configs", "family"),
    [
        ("StableDiffusionPipeline", "stable-diffusion-v1-5/stable-diffusion-v1-5", {}, "sd1"),
        ("StableDiffusionPipeline", "x/y", {"text_encoder": {"hidden_size": 1024}}, "sd2"),
        ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0", {}, "sdxl"),
        ("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo", {}, "sdxl-turbo"),
        ("StableDiffusionXLPipeline", "ByteDance/SDXL-Lightning", {}, "sdxl-lightning"),
        (SD3, "stabilityai/stable-diffusion-3.5-large", {}, "sd3"),
        (SD3, "stabilityai/stable-diffusion-3.5-large-turbo", {}, "sd3-turbo"),
        ("FluxPipeline", "black-forest-labs/FLUX.1-dev", FLUX_DEV, "flux-dev"),
        ("FluxPipeline", "black-forest-labs/FLUX.1-schnell", FLUX_SCHNELL, "flux-schnell"),
        ("PixArtSigmaPipeline", "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", {}, "pixart-sigma"),
        ("SanaPipeline", "Efficient-Large-Model/Sana_1600M_1024px_diffusers", {}, "sana"),
        ("KandinskyV22Pipeline", "kandinsky-community/kandinsky-2-2-decoder", {}, UNKNOWN),
    ],
)  # fmt: skip
def test_detection(pipeline: str, ref: str, configs: dict, family: str) -> None:
    assert detect_family({"_class_name": pipeline}, ref, configs).name == family


def test_detection_reads_a_saved_model_folder(tmp_path) -> None:
    (tmp_path / "transformer").mkdir()
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "FluxPipeline", "transformer": ["diffusers", "X"]})
    )
    (tmp_path / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": True}))
    index, configs = read_model_index(tmp_path)
    assert detect_family(index, str(tmp_path), configs).name == "flux-dev"


def test_overrides_replace_values_and_refuse_unknown_names() -> None:
    flux = profile_named("flux-dev").with_overrides({"steps": 8, "guidance": 2.0})
    assert (flux.steps, flux.guidance, flux.native_size) == (8, 2.0, 1024)
    with pytest.raises(InvalidOptionError, match=r"unknown family value.*stepz"):
        profile_named("sd1").with_overrides({"stepz": 3})
    with pytest.raises(InvalidOptionError, match="unknown model family 'sd9'"):
        profile_named("sd9")
