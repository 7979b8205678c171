"""The bench's judge: a held-out CLIP scores the similarity columns, the search keeps its own,
and the search's own model is refused unless ``--judge same`` says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arpo.bench import run_bench
from arpo.bench.judge import judge_ref, load_judge
from arpo.demo.clip_model import demo_clip_dir, demo_judge_dir
from arpo.errors import InvalidOptionError
from arpo.tools.presets import _build_tiny_clip, preset_spec
from arpo.tools.toolbox import Toolbox

METHODS = ["interrogate-fast", "random-search"]
JUDGED = ("text_score", "image_score", "search_image_score", "true_text_score")
SEARCH = ("prompt", "renders", "attribute_recall", "attribute_f1", "prompt_tokens")


@pytest.fixture(scope="session")
def judge_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Another tiny open_clip model (the tiny preset's config, another seed): a judge the
    demo search never uses."""
    folder = tmp_path_factory.mktemp("judge-clip")
    _build_tiny_clip(preset_spec("tiny")["clip"], 1234, folder)
    return f"local-dir:{folder}"


def _bench(toolbox: Toolbox, out: Path, judge: str | None = None):
    return run_bench(
        "demo:2", out_dir=out, methods=METHODS, budget=4, replay_seeds=1, judge=judge,
        toolbox=toolbox,
    )  # fmt: skip


def test_a_held_out_judge_changes_the_judged_columns_and_not_the_search(
    demo_toolbox: Toolbox, judge_clip: str, tmp_path: Path
) -> None:
    own = _bench(demo_toolbox, tmp_path / "own", judge="same")
    held = _bench(demo_toolbox, tmp_path / "held", judge=judge_clip)
    assert len(own.rows) == len(held.rows) == 4
    for mine, theirs in zip(own.rows, held.rows, strict=True):
        assert [mine[k] for k in SEARCH] == [theirs[k] for k in SEARCH]  # the same search
        for key in JUDGED:
            exact = key == "true_text_score" and mine["prompt"] == mine["true_prompt"]
            if mine[key] is not None and not exact:  # the true prompt itself: 1 for any CLIP
                assert mine[key] != pytest.approx(theirs[key], abs=1e-6), key
        if mine["best_by_render"]:
            assert len(mine["best_by_render"]) == len(theirs["best_by_render"])
            assert mine["best_by_render"] != theirs["best_by_render"]

    summary = json.loads(held.summary_json.read_text())
    assert summary["judge"]["held_out"] is True
    assert summary["judge"]["label"] == f"judge: {judge_clip} (held out)" == held.judge
    assert f"judge: {judge_clip} (held out)" in held.report_html.read_text()
    own_summary = json.loads(own.summary_json.read_text())
    assert own_summary["judge"]["held_out"] is False
    assert "not held out" in own_summary["judge"]["label"]
    assert "not held out" in own.report_html.read_text()


def test_the_search_s_own_model_is_refused_unless_same(
    demo_toolbox: Toolbox, tmp_path: Path
) -> None:
    own = f"local-dir:{demo_clip_dir()}"
    with pytest.raises(InvalidOptionError, match=r"search's own CLIP.*--judge same"):
        _bench(demo_toolbox, tmp_path / "refused", judge=own)
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    spelled = f"local-dir:{demo_clip_dir()}/../clip"  # the same folder, another spelling
    with pytest.raises(InvalidOptionError, match="search's own CLIP"):
        _bench(demo_toolbox, tmp_path / "refused", judge=spelled)
    judge = load_judge(demo_toolbox, "same")
    assert judge.scorer is demo_toolbox.scorer and not judge.held_out
    assert judge.label == "judge: the search's own CLIP (not held out): demo-clip"


def test_resuming_under_another_judge_is_refused(
    demo_toolbox: Toolbox, judge_clip: str, tmp_path: Path
) -> None:
    run_bench("demo:1", out_dir=tmp_path, methods=["interrogate-fast"], replay_seeds=1,
              toolbox=demo_toolbox)  # fmt: skip
    with pytest.raises(InvalidOptionError, match="different judge"):
        run_bench("demo:1", out_dir=tmp_path, methods=["interrogate-fast"], replay_seeds=1,
                  judge=judge_clip, toolbox=demo_toolbox)  # fmt: skip


def test_the_demo_preset_is_judged_by_its_held_out_judge_by_default(
    demo_toolbox: Toolbox, tmp_path: Path
) -> None:
    outcome = _bench(demo_toolbox, tmp_path / "default")
    judge = json.loads(outcome.summary_json.read_text())["judge"]
    assert judge["held_out"] is True
    assert judge["model"] == f"local-dir:{demo_judge_dir()}"
    judge_config = json.loads((demo_judge_dir() / "open_clip_config.json").read_text())
    search_config = json.loads((demo_clip_dir() / "open_clip_config.json").read_text())
    assert judge_config["model_cfg"] != search_config["model_cfg"]  # another architecture
    judge_training = json.loads((demo_judge_dir() / "training.json").read_text())
    search_training = json.loads((demo_clip_dir() / "training.json").read_text())
    assert judge_training["scenes"] != search_training["scenes"]  # other training scenes
    assert judge_training["seed"] != search_training["seed"]


def test_models_without_a_held_out_judge_must_name_one(
    tiny_toolbox: Toolbox, tmp_path: Path
) -> None:
    with pytest.raises(InvalidOptionError, match=r"no held-out judge.*--judge.*--judge same"):
        run_bench("demo:1", out_dir=tmp_path / "bench", methods=["interrogate-fast"],
                  toolbox=tiny_toolbox)  # fmt: skip
    assert not (tmp_path / "bench").exists()


def test_judge_references_split_like_open_clip_names() -> None:
    assert judge_ref("ViT-B-32/laion2b_s34b_b79k") == ("ViT-B-32", "laion2b_s34b_b79k")
    assert judge_ref("local-dir:/models/judge") == ("local-dir:/models/judge", None)
    assert judge_ref("hf-hub:timm/SigLIP") == ("hf-hub:timm/SigLIP", None)
    assert judge_ref("ViT-B-32") == ("ViT-B-32", None)
