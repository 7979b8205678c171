"""Model families as data: every profile loads, detection picks the right one per pipeline
class and hint, overrides are checked."""

from __future__ import annotations

import json

import pytest

from arpo.errors import InvalidOptionError
from arpo.tools.families import (
    UNKNOWN,
    check_negative_prompt,
    check_size,
    detect_family,
    profile_named,
    profiles,
    read_model_index,
    size_for,
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


def test_overrides_are_checked_and_coerced() -> None:
    sd1 = profile_named("sd1")
    assert sd1.with_overrides({"steps": 4.0, "guidance": 2}).steps == 4
    assert sd1.with_overrides({"dtype": {"cuda": "bfloat16"}}).dtype_for("cpu") == "float32"
    for bad, words in [
        ({"steps": 0}, "steps 0 must be at least 1"),
        ({"steps": 2.5}, "whole number"),
        ({"negative_prompt": "sometimes"}, "native, true_cfg or none"),
        ({"dtype": {"cuda": "int8"}}, "float16, bfloat16 or float32"),
        ({"native_size": 4, "size_multiple": 8}, "at least the multiple"),
    ]:
        with pytest.raises(InvalidOptionError, match="ARPO_FAMILY_OVERRIDES") as info:
            sd1.with_overrides(bad)
        assert words in str(info.value)


def test_summary_names_the_values_a_run_uses() -> None:
    assert profile_named("flux-dev").summary() == "FLUX.1 [dev] (1024 px, 28 steps, guidance 3.5)"
    assert profile_named("sdxl-turbo").summary().endswith("(512 px, 4 steps, guidance 0)")


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("family", "reference", "size"),
    [
        ("sdxl", (1600, 900), (1368, 768)),
        ("sd1", (1600, 900), (680, 384)),
        ("flux-dev", (1600, 900), (1360, 768)),
        ("sd1", (900, 1600), (384, 680)),
        ("sdxl", (640, 640), (1024, 1024)),
        ("sd1", None, (512, 512)),
        ("sana", (1000, 750), (1184, 896)),
        ("sd1", (5000, 100), (1024, 256)),  # wider than 4:1 is rendered at 4:1
    ],
)
def test_size_follows_the_native_area_and_the_reference_aspect(family, reference, size) -> None:
    profile = profile_named(family)
    width, height = size_for(profile, reference)
    assert (width, height) == size
    assert width % profile.size_multiple == 0 and height % profile.size_multiple == 0
    area = profile.native_size**2
    if reference and max(reference) / min(reference) <= 4:
        assert abs(width * height - area) / area < 0.05
        assert abs(width / height - reference[0] / reference[1]) < 0.05


def test_size_keeps_what_the_user_set() -> None:
    sdxl = profile_named("sdxl")
    assert size_for(sdxl, (1600, 900), width=800, height=600) == (800, 600)
    assert size_for(sdxl, (1600, 900), width=1024) == (1024, 576)  # the other side follows
    assert size_for(sdxl, (1600, 900), height=512) == (912, 512)
    assert size_for(sdxl, None, width=640) == (640, 640)


def test_sizes_off_the_family_multiple_are_refused_naming_it() -> None:
    flux = profile_named("flux-dev")
    check_size(flux, 1024, 768)
    with pytest.raises(InvalidOptionError) as info:
        check_size(flux, 1000, 768)
    message = str(info.value)
    assert "width=1000" in message and "multiples of 16" in message and "FLUX.1 [dev]" in message
    check_size(profile_named("sd1"), 1000, 768)  # 8 divides 1000
    with pytest.raises(InvalidOptionError, match=r"height=20.*multiples of 8"):
        check_size(profile_named("sd1"), 512, 20)


def test_a_negative_prompt_the_family_ignores_is_refused() -> None:
    check_negative_prompt(profile_named("sdxl"), "blurry")
    check_negative_prompt(profile_named("flux-dev"), "blurry")  # true CFG takes one
    check_negative_prompt(profile_named("sdxl-turbo"), "")
    with pytest.raises(InvalidOptionError) as info:
        check_negative_prompt(profile_named("sdxl-turbo"), "blurry")
    message = str(info.value)
    assert "SDXL-Turbo" in message or "sdxl-turbo" in message
    assert "--negative-prompt" in message and "ARPO_FAMILY_OVERRIDES" in message
