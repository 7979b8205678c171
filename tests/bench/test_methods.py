"""Every bench method on the tiny and demo presets, and what makes each one what it is."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from PIL import Image

from arpo.bench.cost import StageMeter, metered_toolbox
from arpo.bench.methods import (
    METHODS,
    BenchTask,
    MethodOutput,
    arpo_budget_options,
    resolve_methods,
)
from arpo.bench.pez import PromptLayout, decode_ids, pez_prompt
from arpo.config import Settings
from arpo.demo.evaluate import heldout_scene, render_scene
from arpo.errors import InvalidOptionError
from arpo.graph.context import DEFAULT_RENDER_BUDGET, RunOptions
from arpo.tools.toolbox import Toolbox

OFFLINE = [
    "caption",
    "interrogate-fast",
    "interrogate-best",
    "pez",
    "random-search",
    "arpo-offline",
]
FAST = {"width": 64, "height": 64, "steps": 1}  # tiny-preset renders in ~0.1 s


def run_method(
    name: str, toolbox: Toolbox, image: Image.Image, workdir: Path, budget: int = 6, **options
):
    meter = StageMeter()
    task = BenchTask(
        toolbox=metered_toolbox(toolbox, meter),
        reference=image,
        embedding=toolbox.scorer.encode_images([image])[0],
        budget=budget,
        meter=meter,
        seed=0,
        workdir=workdir,
        options=options,
    )
    return METHODS[name].run(task), meter


@pytest.fixture(autouse=True)
def few_pez_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("arpo.bench.pez.DEFAULT_STEPS", 20)


@pytest.fixture
def scene_image() -> Image.Image:
    return render_scene(heldout_scene(10_000, 1), 10_000)


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_method_on_the_demo_preset(name, demo_toolbox, scene_image, tmp_path) -> None:
    output, meter = run_method(name, demo_toolbox, scene_image, tmp_path)
    assert isinstance(output, MethodOutput) and output.prompt.strip()
    if METHODS[name].renders:
        assert 0 < meter.renders <= 6
    else:
        assert meter.renders == 0
    assert meter.seconds["score"] > 0 or name == "caption"  # caption reuses cached rankings


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_method_on_the_tiny_preset(name, tiny_toolbox, reference_png, tmp_path) -> None:
    image = Image.open(reference_png).convert("RGB")
    output, meter = run_method(name, tiny_toolbox, image, tmp_path, budget=3, **FAST)
    assert output.prompt.strip()
    assert meter.renders <= 3


@pytest.fixture(params=["tiny", "demo"])
def llm_toolbox(request, tiny_models, demo_models, fake_openai, tmp_path) -> Toolbox:
    """A preset's loaded models with the fake LLM configured."""
    models = tiny_models if request.param == "tiny" else demo_models
    home = tmp_path / "llm-home"
    home.mkdir()
    (home / "presets").symlink_to(models.settings.presets_dir, target_is_directory=True)
    settings = Settings(
        home=home, preset=request.param, llm_base_url=fake_openai.base_url,
        llm_api_key="test", llm_max_retries=0,
    )  # fmt: skip
    return Toolbox(settings, renderer=models.backend, scorer=models.scorer)


@pytest.mark.parametrize("name", ["caption", "arpo-vanilla", "arpo-enhanced"])
def test_llm_methods_count_calls_and_tokens(
    name, llm_toolbox: Toolbox, fake_openai: FakeOpenAI, reference_png, tmp_path
) -> None:
    critique = [{"differences": ["too dark"]}] if name == "arpo-enhanced" else []
    fake_openai.reply({"prompt": "a red square"}, *critique, {"prompts": ["a red square, flat"]})
    image = Image.open(reference_png).convert("RGB")
    output, meter = run_method(name, llm_toolbox, image, tmp_path, budget=2, **FAST)
    assert output.prompt in ("a red square", "a red square, flat")
    assert output.note is None  # the caption is the LLM's, not an interrogation
    assert meter.llm_calls == len(fake_openai.requests) >= 1
    assert meter.llm_tokens > 0 and meter.seconds["llm"] > 0
    assert meter.renders <= 2


def test_methods_resolve_by_name_and_group() -> None:
    assert [m.name for m in resolve_methods(["pez,interrogate", "pez"])] == [
        "pez", "interrogate-fast", "interrogate-best",
    ]  # fmt: skip
    assert [m.name for m in resolve_methods(["offline"])] == OFFLINE
    assert not any(m.needs_llm for m in resolve_methods(["offline"]))
    with pytest.raises(InvalidOptionError, match=r"unknown method 'clip'.*arpo-offline"):
        resolve_methods(["clip"])
    with pytest.raises(InvalidOptionError, match="no method"):
        resolve_methods([" , "])


@pytest.mark.parametrize("budget", [2, 3, 17, 31, 32, 64, 100])
@pytest.mark.parametrize("defaults", [{}, {"rerank_top_k": 16}, {"rerank_top_k": 4,
                                       "images_per_prompt": 2}])  # fmt: skip
def test_arpo_budget_never_exceeded_and_mostly_used(budget, defaults) -> None:
    seeds = defaults.get("images_per_prompt", 1)
    if budget < 2 * seeds:
        with pytest.raises(InvalidOptionError, match="too small"):
            arpo_budget_options(defaults, budget)
        return
    fitted = arpo_budget_options(defaults, budget)
    k = fitted.get("rerank_top_k", 0)
    worst = seeds * (1 + fitted["iterations"] * k) if k else seeds * (fitted["iterations"] + 1)
    assert worst <= budget
    assert worst > budget - seeds * max(k, 1) - seeds * fitted["iterations"]


def test_pez_returns_world_words_that_beat_random_prompts(demo_toolbox: Toolbox) -> None:
    scorer = demo_toolbox.scorer
    reference = scorer.encode_images([render_scene(heldout_scene(10_001, 1), 10_001)])[0]
    prompt = pez_prompt(scorer.model, scorer.tokenizer, reference, tokens=8, steps=60, seed=0)
    vocabulary = scorer.tokenizer.tokenizer.get_vocab()
    words = prompt.split()
    assert len(words) == 8 and all(w in vocabulary for w in words)
    layout = PromptLayout.from_tokenizer(scorer.tokenizer, 8)
    allowed = layout.allowed_ids(scorer.model.token_embedding.weight.shape[0], scorer.tokenizer)
    rng = random.Random(0)
    randoms = [decode_ids(scorer.tokenizer, rng.sample(allowed.tolist(), 8)) for _ in range(20)]
    pez_score = scorer.text_similarity([prompt], reference)[0]
    assert pez_score > max(scorer.text_similarity(randoms, reference))


def test_pez_is_deterministic_for_a_seed(tiny_models: Toolbox, reference_png) -> None:
    scorer = tiny_models.scorer
    reference = scorer.encode_images([Image.open(reference_png).convert("RGB")])[0]
    first = pez_prompt(scorer.model, scorer.tokenizer, reference, steps=10, seed=3)
    assert first == pez_prompt(scorer.model, scorer.tokenizer, reference, steps=10, seed=3)
    assert first.isprintable() and first.strip()


def test_a_small_budget_shrinks_iterations_and_width_together() -> None:
    preset = {"candidates": 16, "rerank_top_k": 16, "iterations": 12}
    assert arpo_budget_options(preset, 64) == {
        "iterations": 7,
        "rerank_top_k": 9,
        "candidates": 16,
    }
    assert arpo_budget_options(preset, 193)["iterations"] == 12  # the options' own budget


def test_at_the_default_budget_the_bench_runs_what_a_user_runs() -> None:
    user = RunOptions()
    fitted = arpo_budget_options({}, DEFAULT_RENDER_BUDGET)
    assert fitted == {
        "iterations": user.iterations,
        "rerank_top_k": user.rerank_top_k,
        "candidates": user.candidates,
    }
    assert user.budget == DEFAULT_RENDER_BUDGET


@pytest.mark.parametrize("budget", [5, 12])
def test_arpo_methods_stop_at_the_budget_inside_the_graph(
    budget, demo_toolbox, scene_image, tmp_path
) -> None:
    """The bench passes its budget to the run, as `arpo invert --budget` does: the run's own
    count of real renders is what the meter saw, within the budget."""
    output, meter = run_method("arpo-offline", demo_toolbox, scene_image, tmp_path, budget=budget)
    details = output.details
    assert details["options_budget"] == budget
    assert details["renders_spent"] == meter.renders <= budget
    # the cap is never below the defaults' own iterations
    assert details["options_iterations"] >= RunOptions().iterations
    # the budget stops a search that keeps finding new candidates; one whose candidates are
    # rendered already (cache hits are free) stalls first (the graph's budget tests show the
    # stop itself, tests/graph)
    assert details["stop_reason"] in {"budget", "patience", "max_iterations"}
