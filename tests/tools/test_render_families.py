"""Rendering by family profile: what reaches the pipeline, what is refused, NaN/black renders,
out of memory, loading (dtype, safety checker, weight variant, memory settings).

The tiny SD 1.5 pipeline is real (wrapped to record its calls); SDXL, SD3 and Flux are fakes
whose ``__call__`` has the real diffusers class's signature, so every argument arpo passes is
bound against what that pipeline takes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from render_fakes import FakePipeline, Recording, pipeline_class

from arpo.errors import InvalidOptionError, ModelNotAvailableError, RenderError
from arpo.tools.devices import clip_dtype_name, dtype_name
from arpo.tools.families import profile_named
from arpo.tools.pipelines import MemoryOptions, choose_variant, is_out_of_memory, place_pipeline
from arpo.tools.t2i import DiffusersRenderer, RenderParams

FAMILIES = {
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-turbo": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux-dev": "FluxPipeline",
    "flux-schnell": "FluxPipeline",
}


def fake_renderer(family: str, batch_size: int = 4, **fake) -> DiffusersRenderer:
    pipeline = FakePipeline(pipeline_class(FAMILIES[family]), **fake)
    return DiffusersRenderer(
        pipeline, name=f"fake/{family}", device="cpu", batch_size=batch_size,
        profile=profile_named(family),
    )  # fmt: skip


def params_for(family: str, **changes) -> RenderParams:
    profile = profile_named(family)
    base = RenderParams(steps=profile.steps, guidance=profile.guidance, width=64, height=64)
    return replace(base, **changes)


# --------------------------------------------------------------------------- what reaches it


@pytest.mark.parametrize("family", ["sdxl", "sd3", "flux-dev", "flux-schnell"])
def test_steps_guidance_and_size_reach_the_pipeline(family):
    renderer = fake_renderer(family)
    profile = profile_named(family)
    images = renderer.render(["a cat", "a dog"], [0, 1], params_for(family, width=96, height=64))
    call = renderer.pipeline.last
    assert call["num_inference_steps"] == profile.steps
    assert call["guidance_scale"] == profile.guidance  # Flux: distilled guidance
    assert (call["width"], call["height"]) == (96, 64)
    assert call["prompt"] == ["a cat", "a dog"] and len(call["generator"]) == 2
    assert call["output_type"] == "np"
    assert "negative_prompt" not in call and "true_cfg_scale" not in call
    assert [image.size for image in images] == [(96, 64), (96, 64)]


@pytest.mark.parametrize("family", ["sdxl", "sd3"])
def test_native_negative_prompt_is_passed_as_is(family):
    renderer = fake_renderer(family)
    renderer.render(["a cat"], [0], params_for(family, negative_prompt="blurry"))
    call = renderer.pipeline.last
    assert call["negative_prompt"] == ["blurry"]
    assert "true_cfg_scale" not in call


def test_flux_negative_prompt_switches_true_cfg_on():
    renderer = fake_renderer("flux-dev")
    renderer.render(["a cat"], [0], params_for("flux-dev", negative_prompt="blurry"))
    call = renderer.pipeline.last
    assert call["negative_prompt"] == ["blurry"]
    assert call["true_cfg_scale"] == 4.0  # > 1, else Flux ignores the negative prompt
    assert call["guidance_scale"] == 3.5
    assert "true_cfg=4" in renderer.cache_id  # the scale changes pixels: part of the key


def test_flux_without_true_cfg_refuses_a_negative_prompt_naming_it():
    renderer = fake_renderer("flux-dev", drop=("true_cfg_scale",))
    with pytest.raises(InvalidOptionError) as info:
        renderer.render(["a cat"], [0], params_for("flux-dev", negative_prompt="blurry"))
    message = str(info.value)
    assert "`true_cfg_scale`" in message and "family flux-dev" in message
    assert renderer.pipeline.calls == []
    renderer.render(["a cat"], [0], params_for("flux-dev"))  # no negative prompt: fine


def test_family_without_negative_prompt_refuses_one_before_rendering():
    renderer = fake_renderer("sdxl-turbo")
    with pytest.raises(InvalidOptionError) as info:
        renderer.render(["a cat"], [0], params_for("sdxl-turbo", negative_prompt="blurry"))
    message = str(info.value)
    assert "SDXL-Turbo" in message and "--negative-prompt" in message
    assert renderer.pipeline.calls == []


def test_an_argument_the_pipeline_lacks_is_named_not_a_type_error():
    renderer = fake_renderer("sdxl", drop=("guidance_scale",))
    with pytest.raises(InvalidOptionError) as info:
        renderer.render(["a cat"], [0], params_for("sdxl"))
    assert "`guidance_scale`" in str(info.value) and "--guidance" in str(info.value)
    assert renderer.pipeline.calls == []


def test_sizes_off_the_family_multiple_are_refused_before_rendering():
    renderer = fake_renderer("flux-dev")
    with pytest.raises(InvalidOptionError, match=r"width=72 is not usable.*multiples of 16"):
        renderer.render(["a cat"], [0], params_for("flux-dev", width=72))
    assert renderer.pipeline.calls == []
    fake_renderer("sdxl").render(["a cat"], [0], params_for("sdxl", width=72))  # 8 divides 72


def test_tiny_sd15_receives_what_its_profile_says(tiny_models):
    pipeline = Recording(tiny_models.backend.pipeline)
    renderer = DiffusersRenderer(
        pipeline, name="tiny", device="cpu", profile=tiny_models.backend.profile
    )
    renderer.render(["a cat"], [0], RenderParams(steps=2, guidance=5.0, width=64, height=48))
    call = pipeline.last
    assert (call["width"], call["height"], call["num_inference_steps"]) == (64, 48, 2)
    assert call["guidance_scale"] == 5.0 and call["output_type"] == "np"
    assert "negative_prompt" not in call
    renderer.render(
        ["a cat"], [0], RenderParams(negative_prompt="blurry", steps=1, width=64, height=64)
    )
    assert pipeline.last["negative_prompt"] == ["blurry"]


def test_float_output_gives_the_same_pixels_as_the_pipelines_pil(tiny_models):
    pipeline = tiny_models.backend.pipeline
    import torch

    params = RenderParams(steps=1, guidance=5.0, width=64, height=64)
    ours = tiny_models.backend.render(["a cat"], [3], params)[0]
    theirs = pipeline(
        prompt=["a cat"], num_inference_steps=1, guidance_scale=5.0, width=64, height=64,
        generator=[torch.Generator("cpu").manual_seed(3)],
    ).images[0]  # fmt: skip
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


# --------------------------------------------------------------------------- NaN and black


@pytest.mark.parametrize(
    ("dtype", "fix"), [("float16", "ARPO_DTYPE=bfloat16"), ("bfloat16", "ARPO_DTYPE=float32")]
)
def test_nan_render_stops_naming_the_dtype_setting(dtype, fix):
    import torch

    renderer = fake_renderer("flux-dev", mode="nan", dtype=getattr(torch, dtype))
    with pytest.raises(RenderError) as info:
        renderer.render(["a cat"], [0], params_for("flux-dev"))
    message = str(info.value)
    assert "NaN" in message and f"in {dtype}" in message and fix in message


def test_black_render_stops_but_a_dark_one_does_not():
    import torch

    black = fake_renderer("sdxl", mode="black", dtype=torch.float16)
    with pytest.raises(RenderError, match=r"all-black.*ARPO_DTYPE=bfloat16"):
        black.render(["a cat", "a dog"], [0, 1], params_for("sdxl"))
    dark = fake_renderer("sdxl", mode="dark")
    [image] = dark.render(["night"], [0], params_for("sdxl"))
    assert np.asarray(image).max() == 1


def test_pil_output_is_checked_for_black_too():
    renderer = fake_renderer("sdxl", mode="black", drop=("output_type",))
    with pytest.raises(RenderError, match="all-black"):
        renderer.render(["a cat"], [0], params_for("sdxl"))
    assert "output_type" not in renderer.pipeline.last


def test_nan_from_the_tiny_pipeline_stops_with_the_dtype_message(tiny_models):
    inner = tiny_models.backend.pipeline

    def poisoned(**kwargs):
        output = inner(**kwargs)
        return SimpleNamespace(images=output.images * np.nan)

    poisoned.__signature__ = Recording(inner).__signature__
    renderer = DiffusersRenderer(poisoned, name="tiny", device="cpu", profile=profile_named("sd1"))
    renderer.dtype = "float16"  # as if loaded in half precision on a GPU
    with pytest.raises(RenderError) as info:
        renderer.render(["a cat"], [0], RenderParams(steps=1, width=64, height=64))
    assert "rendered NaN images (1 of 1" in str(info.value)
    assert "ARPO_DTYPE=bfloat16" in str(info.value)


# --------------------------------------------------------------------------- out of memory


def test_out_of_memory_halves_the_batch_and_retries():
    renderer = fake_renderer("sdxl", oom_above=1)
    reference = fake_renderer("sdxl", batch_size=1)
    prompts, seeds = ["a", "b", "c", "d", "e"], [0, 1, 2, 3, 4]
    images = renderer.render(prompts, seeds, params_for("sdxl"))
    assert renderer.pipeline.batch_sizes() == [4, 2, 1, 1, 1, 1, 1]
    assert renderer.batch_size == 1  # later renders start at the size that fits
    alone = reference.render(prompts, seeds, params_for("sdxl"))
    assert [np.asarray(i).tolist() for i in images] == [np.asarray(i).tolist() for i in alone]


def test_out_of_memory_at_one_image_names_the_settings_that_help():
    renderer = fake_renderer("flux-dev", oom_above=0)
    with pytest.raises(RenderError) as info:
        renderer.render(["a", "b", "c", "d"], [0, 1, 2, 3], params_for("flux-dev"))
    assert renderer.pipeline.batch_sizes() == [4, 2, 1]
    message = str(info.value)
    for setting in ("ARPO_OFFLOAD=model", "ARPO_VAE_TILING", "--width/--height"):
        assert setting in message
    assert "ARPO_RENDER_BATCH_SIZE" in message and "out of memory" in message


@pytest.mark.parametrize("error", [RuntimeError, MemoryError])
def test_other_out_of_memory_errors_back_off_too(error):
    renderer = fake_renderer("sd3", oom_above=1, oom_error=error)
    renderer.render(["a", "b"], [0, 1], params_for("sd3"))
    assert renderer.pipeline.batch_sizes() == [2, 1, 1]


def test_other_errors_are_not_taken_for_out_of_memory():
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Half but found Float"))
    assert not is_out_of_memory(ValueError("out of memory"))


# --------------------------------------------------------------------------- dtype and loading


@pytest.mark.parametrize(
    ("family", "device", "setting", "dtype"),
    [
        ("flux-dev", "cuda", "auto", "bfloat16"),  # never float16: it renders NaN
        ("sd3", "cuda", "auto", "bfloat16"),
        ("sdxl", "cuda", "auto", "float16"),
        ("sd1", "mps", "auto", "float16"),
        ("flux-dev", "cpu", "auto", "float32"),
        ("flux-dev", "cuda", "float32", "float32"),  # ARPO_DTYPE overrides
        ("sd1", "cpu", "bfloat16", "bfloat16"),
    ],
)
def test_the_profile_decides_the_dtype_and_the_setting_overrides(family, device, setting, dtype):
    assert dtype_name(device, setting, profile_named(family)) == dtype


def test_float16_on_the_cpu_is_refused():
    with pytest.raises(InvalidOptionError, match="ARPO_DTYPE=float16"):
        dtype_name("cpu", "float16", profile_named("sd1"))


def test_clip_dtype_is_half_on_cuda_only():
    assert clip_dtype_name("cuda") == "float16"
    assert clip_dtype_name("cpu") == clip_dtype_name("mps") == "float32"
    assert clip_dtype_name("cuda", "bfloat16") == "bfloat16"
    with pytest.raises(InvalidOptionError, match="ARPO_CLIP_DTYPE"):
        clip_dtype_name("cpu", "float16")


def test_loading_detects_the_family_and_turns_the_safety_checker_off(
    tiny_models, monkeypatch, caplog
):
    from diffusers import AutoPipelineForText2Image

    folder = tiny_models.preset.t2i_model
    seen: dict = {}
    real = AutoPipelineForText2Image.from_pretrained.__func__

    def spy(cls, source, **kwargs):
        seen.update(kwargs)
        return real(cls, source, **kwargs)

    monkeypatch.setattr(AutoPipelineForText2Image, "from_pretrained", classmethod(spy))
    renderer = DiffusersRenderer.from_pretrained(folder, device="cpu")
    assert renderer.profile.name == "sd1"  # detected: no profile given
    assert renderer.dtype == "float32"
    assert seen["safety_checker"] is None and seen["requires_safety_checker"] is False
    assert "variant" not in seen  # float32: full weights


def test_the_fp16_variant_is_asked_for_only_where_it_exists(tiny_models, tmp_path):
    folder = tmp_path / "with-fp16"
    tiny_models.backend.pipeline.save_pretrained(folder)
    plain = tmp_path / "plain"
    tiny_models.backend.pipeline.save_pretrained(plain)
    tiny_models.backend.pipeline.save_pretrained(folder, variant="fp16")
    assert choose_variant("auto", "float16", folder) == "fp16"
    assert choose_variant("auto", "float16", plain) is None
    assert choose_variant("auto", "float32", folder) is None
    assert choose_variant("none", "float16", folder) is None
    assert choose_variant("fp16", "float32", plain) == "fp16"
    loaded = DiffusersRenderer.from_pretrained(
        str(folder), device="cpu", memory=MemoryOptions(variant="fp16")
    )
    assert loaded.profile.name == "sd1"
    with pytest.raises(ModelNotAvailableError, match="ARPO_VARIANT"):
        DiffusersRenderer.from_pretrained(
            str(plain), device="cpu", memory=MemoryOptions(variant="fp16")
        )


class Placed:
    """A pipeline stand-in that records how it was placed."""

    def __init__(self, vae=None):
        self.calls = []
        self.vae = vae

    def to(self, device):
        self.calls.append(("to", device))

    def enable_model_cpu_offload(self, device=None):
        self.calls.append(("model_offload", device))

    def enable_sequential_cpu_offload(self, device=None):
        self.calls.append(("sequential_offload", device))

    def enable_attention_slicing(self):
        self.calls.append(("attention_slicing",))


class Vae:
    def __init__(self):
        self.calls = []

    def enable_slicing(self):
        self.calls.append("slicing")

    def enable_tiling(self):
        self.calls.append("tiling")


def test_memory_settings_place_the_pipeline(caplog):
    vae = Vae()
    pipeline = Placed(vae)
    applied = place_pipeline(
        pipeline,
        "cuda",
        MemoryOptions(offload="model", vae_slicing=True, vae_tiling=True, attention_slicing=True),
    )
    assert pipeline.calls == [("model_offload", "cuda"), ("attention_slicing",)]
    assert vae.calls == ["slicing", "tiling"]
    assert applied == ["model CPU offload", "VAE slicing", "VAE tiling", "attention slicing"]
    sequential = Placed()
    place_pipeline(sequential, "cuda", MemoryOptions(offload="sequential"))
    assert sequential.calls == [("sequential_offload", "cuda")]
    on_cpu = Placed(vae=object())  # a VAE without slicing: warned about, not fatal
    with caplog.at_level(logging.WARNING):
        applied = place_pipeline(on_cpu, "cpu", MemoryOptions(offload="model", vae_slicing=True))
    assert on_cpu.calls == [("to", "cpu")] and applied == []
    assert (
        "does nothing on the CPU" in caplog.text and "VAE slicing is not available" in caplog.text
    )


def test_memory_settings_reach_the_loaded_tiny_pipeline(tiny_settings):
    from arpo.tools.toolbox import Toolbox

    settings = tiny_settings.model_copy(update={"vae_slicing": True, "vae_tiling": True})
    backend = Toolbox(settings).backend
    assert backend.pipeline.vae.use_slicing and backend.pipeline.vae.use_tiling
    assert backend.memory.vae_slicing and backend.profile.native_size == 128


def test_recorded_settings_in_a_model_index_are_read_without_torch(tmp_path):
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "FluxPipeline", "transformer": ["diffusers", "X"]})
    )
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text('{"guidance_embeds": false}')
    from arpo.tools.registry import renderer_builder

    assert renderer_builder("diffusers").family(str(tmp_path)).name == "flux-schnell"
