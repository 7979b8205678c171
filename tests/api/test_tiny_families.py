"""Each family's real pipeline class, through the real save/load path (the tiny SD 1.5, SDXL,
SD3 and Flux presets): the profile is detected; size, steps, guidance and the negative prompt
reach the pipeline as the profile says; a size off the family's multiple is refused; a run
finishes; a NaN render stops with the dtype message; out of memory backs off, then names the
settings that help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from render_fakes import Recording
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.config import Settings
from arpo.errors import InvalidOptionError, RenderError
from arpo.tools.families import size_for
from arpo.tools.t2i import DiffusersRenderer, RenderParams
from arpo.tools.toolbox import Toolbox

FAMILIES = {"tiny": "sd1", "tiny-sdxl": "sdxl", "tiny-sd3": "sd3", "tiny-flux": "flux-dev"}
WIDE = (160, 90)


class Misbehaving(Recording):
    """The real pipeline, recording its calls, that renders NaN or runs out of memory."""

    def __init__(self, inner: Any, *, nan: bool = False, oom_above: int | None = None) -> None:
        super().__init__(inner)
        self.nan, self.oom_above = nan, oom_above

    def __call__(self, **kwargs: Any) -> Any:
        import torch

        self.calls.append(kwargs)
        if self.oom_above is not None and len(kwargs["prompt"]) > self.oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        output = self.inner(**kwargs)
        if self.nan:
            output.images[:] = np.nan
        return output


@pytest.fixture(scope="module")
def loaded(family_presets_home: Path) -> dict[str, Toolbox]:
    """Each tiny family preset's Toolbox with its pipeline loaded, once for the module."""
    toolboxes = {}
    for preset in FAMILIES:
        toolbox = Toolbox(Settings(home=family_presets_home, preset=preset))
        toolbox.backend  # noqa: B018 - load now
        toolboxes[preset] = toolbox
    return toolboxes


def toolbox_for(
    preset: str, loaded: dict[str, Toolbox], tiny_models: Toolbox, home: Path, **behaviour: Any
) -> tuple[Toolbox, Misbehaving]:
    """A Toolbox on a fresh data directory over the preset's loaded pipeline, wrapped."""
    home.mkdir()
    (home / "presets").symlink_to(loaded[preset].settings.home / "presets")
    backend = loaded[preset].backend
    pipeline = Misbehaving(backend.pipeline, **behaviour)
    renderer = DiffusersRenderer(
        pipeline, name=backend.name, device="cpu", profile=backend.profile, batch_size=4
    )
    settings = Settings(home=home, preset=preset)
    return Toolbox(settings, renderer=renderer, scorer=tiny_models.scorer), pipeline


def wide_image() -> Image.Image:
    pixels = np.zeros((WIDE[1], WIDE[0], 3), dtype=np.uint8)
    pixels[:, : WIDE[0] // 2] = (200, 40, 40)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("preset", FAMILIES)
def test_the_family_decides_what_reaches_the_pipeline(preset, loaded, tiny_models, tmp_path):
    toolbox, pipeline = toolbox_for(preset, loaded, tiny_models, tmp_path / "home")
    profile = toolbox.profile
    assert profile.name == FAMILIES[preset]
    result = api.reverse_prompt(
        wide_image(), toolbox=toolbox, strategy="offline", iterations=2, candidates=2,
        negative_prompt="blurry, low quality",
    )  # fmt: skip
    assert result.iterations == 2
    width, height = size_for(profile, WIDE)
    call = pipeline.last
    assert (call["width"], call["height"]) == (width, height)
    assert width % profile.size_multiple == 0 and height % profile.size_multiple == 0
    assert width > height, "the reference's aspect ratio"
    assert call["num_inference_steps"] == profile.steps
    assert call["guidance_scale"] == profile.guidance
    assert call["negative_prompt"] == ["blurry, low quality"] * len(call["prompt"])
    if profile.negative_prompt == "true_cfg":
        assert call["true_cfg_scale"] > 1, "Flux reads a negative prompt only with true CFG"
    else:
        assert "true_cfg_scale" not in call
    exported = json.loads((result.run_dir / "result.json").read_text())
    assert exported["models"]["profile"]["family"] == profile.name
    assert profile.title in result.report.read_text()


@pytest.mark.parametrize("preset", FAMILIES)
def test_a_size_off_the_familys_multiple_is_refused(preset, loaded, tiny_models, tmp_path):
    toolbox, pipeline = toolbox_for(preset, loaded, tiny_models, tmp_path / "home")
    multiple = toolbox.profile.size_multiple
    odd = multiple * 5 + multiple // 2
    with pytest.raises(InvalidOptionError, match=f"multiples of {multiple}"):
        api.reverse_prompt(wide_image(), toolbox=toolbox, strategy="offline", width=odd)
    assert pipeline.calls == [], "refused before any render"
    assert not api.list_runs(settings=toolbox.settings).runs, "and before any run record"


@pytest.mark.parametrize("preset", FAMILIES)
def test_a_nan_render_stops_the_run_naming_the_dtype(preset, loaded, tiny_models, tmp_path):
    toolbox, _ = toolbox_for(preset, loaded, tiny_models, tmp_path / "home", nan=True)
    with pytest.raises(RenderError, match="ARPO_DTYPE"):
        api.reverse_prompt(wide_image(), toolbox=toolbox, strategy="offline", iterations=2)
    (run,) = api.list_runs(settings=toolbox.settings).runs
    details = api.run_details(run.run_id, settings=toolbox.settings)
    assert details.status == "failed" and "NaN" in (details.error or "")


@pytest.mark.parametrize("preset", FAMILIES)
def test_out_of_memory_backs_off_then_names_the_settings(preset, loaded, tiny_models, tmp_path):
    toolbox, pipeline = toolbox_for(preset, loaded, tiny_models, tmp_path / "a", oom_above=1)
    params = RenderParams(**_params(toolbox))
    images = toolbox.backend.render(["a red fox"] * 3, [0, 1, 2], params)
    assert len(images) == 3
    assert [len(call["prompt"]) for call in pipeline.calls] == [3, 1, 1, 1]

    toolbox, _ = toolbox_for(preset, loaded, tiny_models, tmp_path / "b", oom_above=0)
    with pytest.raises(RenderError, match="ARPO_OFFLOAD=model") as refused:
        toolbox.backend.render(["a red fox"], [0], params)
    assert "ARPO_VAE_TILING" in str(refused.value) and "--width/--height" in str(refused.value)


def _params(toolbox: Toolbox) -> dict[str, Any]:
    width, height = size_for(toolbox.profile, WIDE)
    return {"width": width, "height": height, "steps": toolbox.profile.steps}


@pytest.mark.parametrize("preset", FAMILIES)
def test_arpo_invert_finishes_on_each_family(preset, loaded, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(loaded[preset].settings.home / "presets")
    monkeypatch.setenv("ARPO_HOME", str(home))
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    reference = tmp_path / "wide.png"
    wide_image().save(reference)
    result = CliRunner().invoke(
        app,
        ["invert", str(reference), "--preset", preset, "--strategy", "offline",
         "--iterations", "2", "--candidates", "2", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["iterations"] == 2
    assert Image.open(out["best_render"]).size == size_for(loaded[preset].profile, WIDE)
