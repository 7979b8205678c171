"""Runs and renders through the api follow the model's family: sizes from the reference's
aspect ratio, the family's steps and guidance, refusals before any run is recorded, NaN
renders that stop the run, and the profile in result.json and the report."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from render_fakes import FakePipeline, Recording, pipeline_class

from arpo import api
from arpo.errors import InvalidOptionError, RenderError
from arpo.tools.families import profile_named
from arpo.tools.t2i import DiffusersRenderer
from arpo.tools.toolbox import Toolbox

FAMILY_PIPELINES = {
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-turbo": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux-dev": "FluxPipeline",
    "flux-schnell": "FluxPipeline",
}


@pytest.fixture
def wide_reference(tmp_path):
    """A 160x90 (16:9) reference."""
    path = tmp_path / "wide.png"
    Image.new("RGB", (160, 90), (40, 90, 200)).save(path)
    return path


def toolbox_with(tiny_settings, tiny_models, pipeline, profile) -> Toolbox:
    renderer = DiffusersRenderer(pipeline, name="under-test", device="cpu", profile=profile)
    return Toolbox(tiny_settings, renderer=renderer, scorer=tiny_models.scorer)


@pytest.fixture
def recorded_tiny(tiny_settings, tiny_models):
    """The tiny SD 1.5 pipeline, recording its calls, in a Toolbox."""
    pipeline = Recording(tiny_models.backend.pipeline)
    toolbox = toolbox_with(tiny_settings, tiny_models, pipeline, tiny_models.backend.profile)
    return toolbox, pipeline


def fake_toolbox(tiny_settings, tiny_models, family, **fake):
    pipeline = FakePipeline(pipeline_class(FAMILY_PIPELINES[family]), **fake)
    return toolbox_with(tiny_settings, tiny_models, pipeline, profile_named(family)), pipeline


def test_a_run_renders_at_the_references_aspect_ratio(recorded_tiny, wide_reference, tmp_path):
    toolbox, pipeline = recorded_tiny
    result = api.reverse_prompt(
        wide_reference, out_dir=tmp_path / "run", toolbox=toolbox, strategy="offline",
        iterations=1, candidates=2,
    )  # fmt: skip
    # the tiny preset's family: SD 1.5 at 128 px, so 128*128 at 16:9 -> 168x96
    assert {(c["width"], c["height"]) for c in pipeline.calls} == {(168, 96)}
    assert {c["num_inference_steps"] for c in pipeline.calls} == {2}
    assert {c["guidance_scale"] for c in pipeline.calls} == {5.0}
    assert Image.open(result.best_render).size == (168, 96)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (saved["options"]["width"], saved["options"]["height"]) == (168, 96)
    assert saved["models"]["family"] == "sd1"
    assert saved["models"]["profile"]["native_size"] == 128
    report = result.report.read_text()
    assert "Stable Diffusion 1.x (128 px, 2 steps, guidance 5)" in report


def test_the_users_size_wins_and_one_side_follows_the_aspect(
    recorded_tiny, wide_reference, tmp_path
):
    toolbox, pipeline = recorded_tiny
    api.reverse_prompt(
        wide_reference, out_dir=tmp_path / "a", toolbox=toolbox, strategy="offline",
        iterations=1, candidates=1, width=64, height=64,
    )  # fmt: skip
    assert {(c["width"], c["height"]) for c in pipeline.calls} == {(64, 64)}
    pipeline.calls.clear()
    api.reverse_prompt(
        wide_reference, out_dir=tmp_path / "b", toolbox=toolbox, strategy="offline",
        iterations=1, candidates=1, width=96,
    )  # fmt: skip
    assert {(c["width"], c["height"]) for c in pipeline.calls} == {(96, 56)}


@pytest.mark.parametrize(
    ("family", "size"),
    [("sdxl", (1368, 768)), ("sd3", (1360, 768)), ("flux-dev", (1360, 768))],
)
def test_real_family_defaults_reach_the_pipeline_in_a_run(
    tiny_settings, tiny_models, wide_reference, tmp_path, family, size
):
    toolbox, pipeline = fake_toolbox(tiny_settings, tiny_models, family)
    profile = profile_named(family)
    api.reverse_prompt(
        wide_reference, out_dir=tmp_path / "run", toolbox=toolbox, strategy="offline",
        iterations=1, candidates=1,
    )  # fmt: skip
    assert {(c["width"], c["height"]) for c in pipeline.calls} == {size}
    assert {c["num_inference_steps"] for c in pipeline.calls} == {profile.steps}
    assert {c["guidance_scale"] for c in pipeline.calls} == {profile.guidance}
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["models"]["profile"]["family"] == family


def test_generate_without_a_size_renders_the_native_square(tiny_settings, tiny_models, tmp_path):
    toolbox, pipeline = fake_toolbox(tiny_settings, tiny_models, "flux-schnell")
    [path] = api.generate("a cat", out_dir=tmp_path, toolbox=toolbox)
    call = pipeline.last
    assert (call["width"], call["height"]) == (1024, 1024)
    assert (call["num_inference_steps"], call["guidance_scale"]) == (4, 0.0)
    assert Image.open(path).size == (1024, 1024)


def test_generate_with_a_negative_prompt_on_flux_uses_true_cfg(
    tiny_settings, tiny_models, tmp_path
):
    toolbox, pipeline = fake_toolbox(tiny_settings, tiny_models, "flux-dev")
    api.generate("a cat", toolbox=toolbox, width=512, height=512, negative_prompt="blurry")
    assert pipeline.last["negative_prompt"] == ["blurry"]
    assert pipeline.last["true_cfg_scale"] == 4.0


@pytest.mark.parametrize(
    ("family", "options", "words"),
    [
        ("sdxl-turbo", {"negative_prompt": "blurry"}, "SDXL-Turbo"),
        ("flux-dev", {"width": 1000}, "multiples of 16"),
    ],
)
def test_what_the_family_refuses_is_refused_before_a_run_is_recorded(
    tiny_settings, tiny_models, wide_reference, tmp_path, family, options, words
):
    toolbox, pipeline = fake_toolbox(tiny_settings, tiny_models, family)
    with pytest.raises(InvalidOptionError, match=words):
        api.reverse_prompt(
            wide_reference, out_dir=tmp_path / "run", toolbox=toolbox, strategy="offline",
            iterations=1, **options,
        )  # fmt: skip
    assert pipeline.calls == []
    assert not (tmp_path / "run").exists()
    assert not toolbox.settings.runs_dir.exists() or not any(toolbox.settings.runs_dir.iterdir())


def test_a_nan_render_stops_the_run_with_the_dtype_message(
    tiny_settings, tiny_models, wide_reference, tmp_path
):
    import torch

    toolbox, _ = fake_toolbox(
        tiny_settings, tiny_models, "flux-dev", mode="nan", dtype=torch.float16
    )
    with pytest.raises(RenderError, match="ARPO_DTYPE=bfloat16"):
        api.reverse_prompt(
            wide_reference, out_dir=tmp_path / "run", toolbox=toolbox, strategy="offline",
            iterations=2,
        )  # fmt: skip
    [run] = api.list_runs(settings=toolbox.settings).runs
    assert run.status == "failed"
    details = api.run_details(run.run_id, settings=toolbox.settings)
    assert "rendered NaN images" in (details.error or "")
    assert "internal error" not in (details.error or "")
