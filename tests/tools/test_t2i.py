"""The diffusers renderer (tiny preset), render parameters and the disk-backed render cache."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpo.errors import InvalidOptionError, ModelNotAvailableError
from arpo.tools.loading import check_diffusers_ref
from arpo.tools.store import ArtifactStore
from arpo.tools.t2i import DiffusersRenderer, RenderCache, RenderParams

SMALL = RenderParams(width=64, height=64, steps=2, guidance=5.0)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


class CountingRenderer:
    """Wraps a backend and records every call it receives."""

    def __init__(self, inner, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or inner.name
        self.calls: list[tuple[list[str], list[int], RenderParams]] = []

    def render(self, prompts, seeds, params):
        self.calls.append((list(prompts), list(seeds), params))
        return self.inner.render(prompts, seeds, params)


class SyntheticRenderer:
    """A fast deterministic backend: the image's colour is a hash of all its inputs."""

    name = "synthetic"

    def render(self, prompts, seeds, params):
        images = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            digest = hashlib.sha256(f"{prompt}|{seed}|{params}".encode()).digest()
            images.append(Image.new("RGB", (params.width, params.height), tuple(digest[:3])))
        return images


# --------------------------------------------------------------------------- DiffusersRenderer


def test_tiny_renderer_is_a_diffusers_pipeline(tiny_models):
    backend = tiny_models.backend
    assert isinstance(backend, DiffusersRenderer)
    assert backend.device == "cpu"
    assert backend.name == tiny_models.preset.t2i_model
    assert type(backend.pipeline).__name__ == "StableDiffusionPipeline"


def test_render_is_deterministic_per_prompt_and_seed(tiny_models):
    backend = tiny_models.backend
    first = backend.render(["a cat"], [0], SMALL)
    again = backend.render(["a cat"], [0], SMALL)
    other_seed = backend.render(["a cat"], [1], SMALL)
    assert len(first) == 1
    assert first[0].size == (64, 64)
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert np.abs(pixels(first[0]) - pixels(other_seed[0])).mean() > 5


def test_batch_with_per_image_seeds_matches_one_by_one(tiny_models):
    backend = tiny_models.backend
    prompts, seeds = ["a cat", "a dog", "a cat"], [3, 4, 5]
    batch = backend.render(prompts, seeds, SMALL)
    singles = [backend.render([p], [s], SMALL)[0] for p, s in zip(prompts, seeds, strict=True)]
    assert len(batch) == 3
    for together, alone in zip(batch, singles, strict=True):
        diff = np.abs(pixels(together) - pixels(alone))
        # batched matmuls may round differently: allow a one-level wobble on a few pixels only
        assert diff.max() <= 2
        assert diff.mean() < 0.05
    # each image got its own seed: the same prompt with seeds 3 and 5 differs a lot
    assert np.abs(pixels(batch[0]) - pixels(batch[2])).mean() > 5


def test_batch_size_splits_backend_calls(tiny_models):
    pipeline = tiny_models.backend.pipeline
    sizes: list[int] = []

    def spy(**kwargs):
        sizes.append(len(kwargs["prompt"]))
        assert len(kwargs["generator"]) == len(kwargs["prompt"])
        return pipeline(**kwargs)

    renderer = DiffusersRenderer(spy, name="spy", device="cpu", batch_size=2)
    images = renderer.render(["a", "b", "c"], [0, 1, 2], replace(SMALL, steps=1))
    assert sizes == [2, 1]
    assert len(images) == 3


# --------------------------------------------------------------------------- RenderParams


@pytest.mark.parametrize(("field", "value"), [("width", 0), ("height", -8)])
def test_render_params_reject_sizes_below_one(field, value):
    with pytest.raises(InvalidOptionError, match=rf"{field}={value}.*must be positive"):
        RenderParams(**{field: value})


def test_render_params_leave_the_multiple_to_the_family():
    # 100 is not a multiple of 8: the family's check refuses it where the family is known
    assert RenderParams(width=100, height=130).width == 100


@pytest.mark.parametrize("steps", [0, -3])
def test_render_params_reject_steps_below_one(steps):
    with pytest.raises(InvalidOptionError, match=rf"steps={steps} must be at least 1"):
        RenderParams(steps=steps)


def test_render_params_accept_valid_values():
    params = RenderParams(width=8, height=768, steps=1)
    assert (params.width, params.height, params.steps) == (8, 768, 1)


# --------------------------------------------------------------------------- RenderCache


def test_repeated_render_is_served_from_the_store(tiny_models, tmp_path):
    backend = CountingRenderer(tiny_models.backend)
    cache = RenderCache(backend, ArtifactStore(tmp_path))
    first = cache.render(["a cat"], [0], SMALL)
    assert (cache.hits, cache.misses, len(backend.calls)) == (0, 1, 1)
    again = cache.render(["a cat"], [0], SMALL)
    assert again == first
    assert (cache.hits, cache.misses, len(backend.calls)) == (1, 1, 1)
    stored = cache.store.get_image(first[0])
    direct = tiny_models.backend.render(["a cat"], [0], SMALL)[0]
    assert np.array_equal(pixels(stored), pixels(direct))


def test_only_misses_reach_the_backend_in_one_batch(tmp_path):
    backend = CountingRenderer(SyntheticRenderer())
    cache = RenderCache(backend, ArtifactStore(tmp_path))
    params = RenderParams(width=16, height=16, steps=1)
    warm = cache.render(["a", "c"], [0, 0], params)
    backend.calls.clear()
    hashes = cache.render(["a", "b", "c", "d"], [0, 0, 0, 0], params)
    assert backend.calls == [(["b", "d"], [0, 0], params)]
    assert (cache.hits, cache.misses) == (2, 4)
    assert hashes[0] == warm[0] and hashes[2] == warm[1]
    assert len(hashes) == 4
    assert len(set(hashes)) == 4


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a dog"},
        {"seed": 1},
        {"negative_prompt": "blurry"},
        {"width": 24},
        {"height": 24},
        {"steps": 2},
        {"guidance": 3.0},
        {"model": "another-model"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changing_any_key_part_is_a_miss(tmp_path, change):
    store = ArtifactStore(tmp_path)
    base = {"prompt": "a cat", "seed": 0, "model": "synthetic"}
    params = RenderParams(width=16, height=16, steps=1, guidance=7.5)

    def run(**parts):
        backend = CountingRenderer(SyntheticRenderer(), name=parts["model"])
        fields = {k: v for k, v in parts.items() if k not in ("prompt", "seed", "model")}
        cache = RenderCache(backend, store)
        cache.render([parts["prompt"]], [parts["seed"]], replace(params, **fields))
        return cache, backend

    run(**base)
    cache, backend = run(**base)
    assert (cache.hits, cache.misses, len(backend.calls)) == (1, 0, 0)
    cache, backend = run(**{**base, **change})
    assert (cache.hits, cache.misses, len(backend.calls)) == (0, 1, 1)


def test_cache_survives_a_new_cache_over_the_same_directory(tmp_path):
    params = RenderParams(width=16, height=16, steps=1)
    first = RenderCache(CountingRenderer(SyntheticRenderer()), ArtifactStore(tmp_path / "s"))
    hashes = first.render(["a cat", "a dog"], [0, 1], params)
    backend = CountingRenderer(SyntheticRenderer())
    second = RenderCache(backend, ArtifactStore(tmp_path / "s"))
    assert second.render(["a cat", "a dog"], [0, 1], params) == hashes
    assert backend.calls == []
    assert second.hits == 2


def test_cache_rerenders_when_the_image_file_is_gone(tmp_path):
    store = ArtifactStore(tmp_path)
    params = RenderParams(width=16, height=16, steps=1)
    backend = CountingRenderer(SyntheticRenderer())
    cache = RenderCache(backend, store)
    [digest] = cache.render(["a cat"], [0], params)
    store.path(digest).unlink()
    assert cache.render(["a cat"], [0], params) == [digest]
    assert len(backend.calls) == 2
    assert store.has(digest)


def test_cache_needs_one_seed_per_prompt(tmp_path):
    cache = RenderCache(SyntheticRenderer(), ArtifactStore(tmp_path))
    with pytest.raises(ValueError, match="one seed per prompt"):
        cache.render(["a", "b"], [0], RenderParams())


# --------------------------------------------------------------------------- model references


def test_local_dir_without_model_index_is_rejected(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "unet").mkdir()
    for call in (
        lambda: check_diffusers_ref(str(folder), "ARPO_T2I_MODEL"),
        lambda: DiffusersRenderer.from_pretrained(str(folder), device="cpu"),
    ):
        with pytest.raises(ModelNotAvailableError) as info:
            call()
        message = str(info.value)
        assert str(folder) in message
        assert "model_index.json" in message
        assert "ARPO_T2I_MODEL" in message


def test_missing_path_is_rejected(tmp_path):
    missing = tmp_path / "nowhere" / "model"
    with pytest.raises(ModelNotAvailableError) as info:
        DiffusersRenderer.from_pretrained(str(missing), device="cpu")
    assert str(missing) in str(info.value)
    assert "ARPO_T2I_MODEL" in str(info.value)


def test_uncached_hub_id_offline_is_rejected(empty_hub_cache):
    with pytest.raises(ModelNotAvailableError) as info:
        DiffusersRenderer.from_pretrained("nobody/missing-model", device="cpu")
    message = str(info.value)
    assert "'nobody/missing-model'" in message
    assert "HF_HUB_OFFLINE" in message
    assert "ARPO_T2I_MODEL" in message


def test_cached_hub_id_offline_is_accepted(empty_hub_cache):
    snapshot = empty_hub_cache / "models--someone--cached" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    refs = empty_hub_cache / "models--someone--cached" / "refs"
    refs.mkdir()
    (refs / "main").write_text("0" * 40)
    assert check_diffusers_ref("someone/cached", "ARPO_T2I_MODEL") == "someone/cached"


def test_hub_id_online_is_passed_through(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert check_diffusers_ref("owner/model-name", "X_SETTING") == "owner/model-name"


def test_broken_model_dir_is_a_model_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ModelNotAvailableError) as info:
        DiffusersRenderer.from_pretrained(str(folder), device="cpu")
    message = str(info.value)
    assert message.startswith(f"cannot load the text-to-image model '{folder}'")
    assert "ARPO_T2I_MODEL" in message


def test_missing_hub_model_fails_fast_from_process_start(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from arpo.config import Settings
        from arpo.errors import ModelNotAvailableError
        from arpo.tools.toolbox import Toolbox
        try:
            Toolbox(Settings(home=Path(sys.argv[1]))).load_models()
        except ModelNotAvailableError as error:
            print("ERROR", error)
            print("TORCH", "torch" in sys.modules)
        else:
            print("NO ERROR")
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "ARPO_T2I_MODEL": "nobody/missing-model",
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert "ERROR text-to-image model 'nobody/missing-model'" in done.stdout
    assert "ARPO_T2I_MODEL" in done.stdout
    assert "TORCH False" in done.stdout
    assert elapsed < 2.0, f"took {elapsed:.2f} s"


def test_no_run_files_for_a_missing_model(tmp_path):
    # checked before anything is written under the data directory
    from arpo.config import Settings
    from arpo.tools.toolbox import Toolbox

    home = tmp_path / "home"
    toolbox = Toolbox(Settings(home=home, t2i_model=str(tmp_path / "missing")))
    with pytest.raises(ModelNotAvailableError):
        toolbox.load_models()
    assert not home.exists() or not any(Path(home).iterdir())
