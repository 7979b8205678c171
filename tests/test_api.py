"""The plain API functions on the tiny preset: score, generate and reverse_prompt."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpo import api
from arpo.config import Settings
from arpo.errors import InvalidImageError, InvalidOptionError, ModelNotAvailableError
from arpo.tools.toolbox import Toolbox


@pytest.fixture
def bad_images(tmp_path, reference_png) -> dict[str, tuple[Path, str]]:
    """Unusable image inputs, each with a phrase its error message must contain."""
    folder = tmp_path / "bad"
    folder.mkdir()
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    truncated = folder / "truncated.png"
    truncated.write_bytes(reference_png.read_bytes()[:80])
    single = folder / "one.png"
    Image.new("RGB", (1, 1), (255, 0, 0)).save(single)
    return {
        "missing": (folder / "missing.png", "file not found"),
        "not an image": (text, "not a supported image format"),
        "truncated": (truncated, "truncated or corrupt"),
        "1x1": (single, "too small"),
    }


# --------------------------------------------------------------------------- score


def test_score_ranks_prompts_best_first(tiny_toolbox, reference_png):
    prompts = ["a cat", "a red square on blue", "an oil painting of a ship", "noise"]
    ranked = api.score(reference_png, prompts, toolbox=tiny_toolbox)
    assert sorted(p for p, _ in ranked) == sorted(prompts)
    values = [s for _, s in ranked]
    assert values == sorted(values, reverse=True)
    assert all(-1 <= s <= 1 for s in values)
    scorer = tiny_toolbox.scorer
    from arpo.tools.images import load_image

    reference = scorer.encode_images([load_image(reference_png)])[0]
    for prompt, value in ranked:
        assert value == pytest.approx(scorer.text_similarity([prompt], reference)[0], abs=1e-5)


def test_score_skips_blank_prompts(tiny_toolbox, reference_png):
    ranked = api.score(reference_png, ["", "a cat", "   "], toolbox=tiny_toolbox)
    assert [p for p, _ in ranked] == ["a cat"]


@pytest.mark.parametrize("prompts", [[], [""], ["  ", "\n"]])
def test_score_rejects_no_prompts(tiny_toolbox, reference_png, prompts):
    with pytest.raises(InvalidOptionError, match="at least one non-empty prompt"):
        api.score(reference_png, prompts, toolbox=tiny_toolbox)


def test_score_rejects_bad_images(tiny_toolbox, bad_images):
    for name, (path, phrase) in bad_images.items():
        with pytest.raises(InvalidImageError) as info:
            api.score(path, ["a cat"], toolbox=tiny_toolbox)
        assert phrase in str(info.value), name
        assert str(path) in str(info.value), name


# --------------------------------------------------------------------------- generate


def test_generate_writes_count_images(tiny_toolbox, tmp_path):
    out = tmp_path / "out"
    paths = api.generate(
        "a cat", seed=5, count=2, out_dir=out, toolbox=tiny_toolbox, width=64, height=64
    )
    assert paths == [out / "seed-5.png", out / "seed-6.png"]
    assert sorted(p.name for p in out.iterdir()) == ["seed-5.png", "seed-6.png"]
    first, second = (np.asarray(Image.open(p).convert("RGB")) for p in paths)
    assert first.shape == (64, 64, 3)
    assert not np.array_equal(first, second)
    # the same render again comes from the cache, without the out_dir: store paths
    stored = api.generate("a cat", seed=6, toolbox=tiny_toolbox, width=64, height=64)
    assert stored[0].parent.parent == tiny_toolbox.settings.store_dir / "images"
    assert stored[0].read_bytes() == paths[1].read_bytes()
    assert tiny_toolbox.renderer.hits == 1


def test_generate_uses_preset_defaults(tiny_toolbox, tmp_path):
    [path] = api.generate("a dog", count=1, out_dir=tmp_path, toolbox=tiny_toolbox)
    assert Image.open(path).size == (128, 128)


@pytest.mark.parametrize("prompt", ["", "   "])
def test_generate_rejects_empty_prompt(tiny_toolbox, prompt):
    with pytest.raises(InvalidOptionError, match="prompt is empty"):
        api.generate(prompt, toolbox=tiny_toolbox)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"width": 100}, "width=100"),
        ({"height": 4}, "height=4"),
        ({"steps": 0}, "steps=0"),
        ({"count": 0}, "images_per_prompt=0"),
        ({"sampler": "ddim"}, "unknown run option"),
    ],
)
def test_generate_rejects_bad_options(tiny_toolbox, tmp_path, options, message):
    with pytest.raises(InvalidOptionError, match=message):
        api.generate("a cat", out_dir=tmp_path / "o", toolbox=tiny_toolbox, **options)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- reverse_prompt


def test_reverse_prompt_offline_run(tiny_toolbox, reference_png, tmp_path):
    events = []
    out = tmp_path / "run"
    result = api.reverse_prompt(
        reference_png,
        out_dir=out,
        toolbox=tiny_toolbox,
        on_progress=events.append,
        strategy="offline",
        iterations=2,
        candidates=2,
    )
    assert isinstance(result, api.Result)
    assert result.strategy == "offline"
    assert result.run_dir == out.resolve()
    assert 1 <= result.iterations <= 2
    assert len(result.history) == result.iterations + 1
    for path in (result.best_render, result.reference, result.report, out / "result.json"):
        assert path.is_file(), path
    assert Image.open(result.reference).size == (64, 64)
    assert Image.open(result.best_render).size == (128, 128)
    assert result.initial_prompt == result.history[0]["prompt"]
    best_score = max(entry["text_score"] for entry in result.history)
    assert result.best_text_score == pytest.approx(best_score)
    assert result.best_prompt in [entry["prompt"] for entry in result.history]
    report = result.report.read_text()
    for entry in result.history:
        assert escape(entry["prompt"], quote=True) in report
        assert (out / entry["render"]).is_file()
    saved = json.loads((out / "result.json").read_text())
    assert saved["best"]["prompt"] == result.best_prompt
    assert saved["run_id"] == result.run_id
    assert events[0]["event"] == "started"
    assert events[0]["run_id"] == result.run_id
    # the record of the run says it finished
    record = json.loads((tiny_toolbox.settings.runs_dir / result.run_id / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["run_dir"] == str(out.resolve())


def test_reverse_prompt_with_a_starting_prompt(tiny_toolbox, reference_png):
    result = api.reverse_prompt(
        reference_png,
        prompt="a red square, flat colours",
        toolbox=tiny_toolbox,
        strategy="offline",
        iterations=1,
        candidates=1,
    )
    assert result.initial_prompt == "a red square, flat colours"
    assert result.run_dir == tiny_toolbox.settings.runs_dir / result.run_id
    assert result.report.is_file()


def test_bad_images_fail_before_any_run_is_recorded(tiny_toolbox, bad_images):
    runs = tiny_toolbox.settings.runs_dir
    for name, (path, phrase) in bad_images.items():
        with pytest.raises(InvalidImageError, match=phrase):
            api.reverse_prompt(path, toolbox=tiny_toolbox, strategy="offline", iterations=1)
        assert not runs.exists() or not any(runs.iterdir()), name
    assert not tiny_toolbox.settings.checkpoint_db.exists()


def test_bad_options_fail_before_any_run_is_recorded(tiny_toolbox, reference_png):
    for options in ({"iterations": 0}, {"width": 100}, {"strategy": "magic"}, {"bogus": 1}):
        with pytest.raises(InvalidOptionError):
            api.reverse_prompt(reference_png, toolbox=tiny_toolbox, **options)
    assert not tiny_toolbox.settings.runs_dir.exists()


def test_llm_strategy_without_llm_fails_before_any_run(tiny_toolbox, reference_png):
    with pytest.raises(InvalidOptionError, match="needs an LLM"):
        api.reverse_prompt(reference_png, toolbox=tiny_toolbox, strategy="enhanced")
    assert not tiny_toolbox.settings.runs_dir.exists()


def test_missing_model_fails_before_any_run(tiny_models, reference_png, tmp_path):
    settings = Settings(home=tmp_path / "home", t2i_model=str(tmp_path / "no-model"))
    toolbox = Toolbox(settings, scorer=tiny_models.scorer)
    with pytest.raises(ModelNotAvailableError, match="ARPO_T2I_MODEL"):
        api.reverse_prompt(reference_png, toolbox=toolbox, strategy="offline")
    assert not settings.runs_dir.exists()


def test_out_dir_holding_a_run_is_refused(tiny_toolbox, reference_png, tmp_path):
    out = tmp_path / "used"
    out.mkdir()
    (out / "result.json").write_text("{}")
    with pytest.raises(InvalidOptionError, match="already holds files"):
        api.reverse_prompt(reference_png, out_dir=out, toolbox=tiny_toolbox, strategy="offline")
    assert not tiny_toolbox.settings.runs_dir.exists()


def test_get_toolbox_is_one_per_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    first = api.get_toolbox(Settings(home=tmp_path / "a"))
    assert api.get_toolbox(Settings(home=tmp_path / "a")) is first
    assert api.get_toolbox(Settings(home=tmp_path / "b")) is not first


def test_a_run_id_given_for_a_new_run_is_checked_before_anything_is_written(tmp_path) -> None:
    """``reverse_prompt(run_id=...)`` (what a batch names its runs with): a malformed id and
    one already taken are refused, and nothing is written or overwritten."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "graph"))
    from synthetic import reference_image, synthetic_toolbox

    from arpo.errors import ArpoError, RunNotFoundError

    toolbox = synthetic_toolbox(tmp_path / "home")
    fast = {"strategy": "offline", "iterations": 1, "width": 64, "height": 64, "steps": 1}
    with pytest.raises(RunNotFoundError, match=r"'\.\./escape' is not a run id"):
        api.reverse_prompt(reference_image(), toolbox=toolbox, run_id="../escape", **fast)
    assert not list(toolbox.settings.runs_dir.glob("*"))
    done = api.reverse_prompt(
        reference_image(), toolbox=toolbox, run_id="20261201-120000-abcdef", **fast
    )
    assert done.run_id == "20261201-120000-abcdef"
    with pytest.raises(ArpoError, match=r"already holds files .* It holds a run"):
        api.reverse_prompt(
            reference_image(), toolbox=toolbox, run_id="20261201-120000-abcdef", **fast
        )
    assert api.run_details(done.run_id, settings=toolbox.settings).status == "finished"
