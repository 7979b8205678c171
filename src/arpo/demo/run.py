"""``arpo demo``: reverse-prompt a demo-world image whose true prompt is known, offline.

The demo builds on the api (a normal run, report and all) and adds what only the demo world
knows: the true prompt, which of its attributes the recovered prompt states (recall), how much
of what it states is true (precision) and F1 (:func:`arpo.demo.scenes.attribute_score`). With a
prompt of the user's, what the seed filled in is marked and not judged. The outcome goes into
the run's ``result.json`` (key ``"demo"``) and its report, and into ``demo.json``.
"""

from __future__ import annotations

import json
import os
import random
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from arpo.api import ProgressCallback, Result, get_toolbox, reverse_prompt
from arpo.config import Settings
from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    from arpo.tools.toolbox import Toolbox


class TruePromptPart(BaseModel):
    """A piece of the true prompt; ``seed``: the seed chose it, the user's prompt did not say."""

    text: str
    seed: bool


class DemoResult(BaseModel):
    """A demo-world run: the scene's true prompt beside the recovered one.

    With a user's prompt, the true prompt is what it says plus what the seed chose
    (``seed_chosen``, marked in ``true_prompt_parts``); only what the user wrote is judged:
    ``seed_hits`` are seed-chosen attributes the run recovered anyway, not counted."""

    result: Result
    true_prompt: str
    true_prompt_parts: list[TruePromptPart]
    user_prompt: str | None  # the prompt the scene was drawn from; None for a held-out scene
    scene: int | None  # the held-out scene's number; None for a user's prompt
    hits: list[str]
    misses: list[str]
    wrong: list[str]  # what the recovered prompt states that is false
    hidden: list[str]  # true attributes the render does not show: not judged
    seed_chosen: list[str]  # attributes the seed chose (not in the user's prompt): not judged
    seed_hits: list[str]  # of those, what the recovered prompt states
    recall: float
    precision: float
    f1: float
    initial_recall: float
    initial_f1: float


def run_demo(
    *,
    scene: int | None = None,
    prompt: str | None = None,
    objects: int = 1,
    out_dir: str | os.PathLike[str] | None = None,
    toolbox: Toolbox | None = None,
    on_progress: ProgressCallback | None = None,
    **options: Any,
) -> DemoResult:
    """Without ``prompt``, held-out scene number ``scene`` (random when None) with ``objects``
    objects is drawn; with ``prompt``, that prompt is rendered (seed ``options['seed']``)."""
    from arpo.demo.evaluate import heldout_scene, render_scene
    from arpo.demo.parse import parse_prompt
    from arpo.demo.render import render_prompt, scene_for_prompt
    from arpo.demo.scenes import (
        attribute_score,
        canonical_parts,
        canonical_prompt,
        described_facts,
        seed_slots,
    )

    toolbox = toolbox or get_toolbox(Settings(preset="demo"))
    if toolbox.settings.preset != "demo":
        raise InvalidOptionError("the demo needs the demo preset (Settings(preset='demo')).")
    if not 1 <= objects <= 3:
        raise InvalidOptionError(f"objects={objects}: demo scenes have 1 to 3 objects.")
    index = None
    if prompt is not None:
        if not prompt.strip():
            raise InvalidOptionError("the demo prompt is empty; give a scene to draw.")
        seed = int(options.get("seed") or 0)
        true_scene, image = scene_for_prompt(prompt, seed), render_prompt(prompt, seed)
        chosen = seed_slots(parse_prompt(prompt), true_scene)
    else:
        index = random.SystemRandom().randrange(1_000_000) if scene is None else scene
        true_scene = heldout_scene(index, objects)
        image = render_scene(true_scene, index)
        chosen = set()
    options.setdefault("strategy", "offline")
    result = reverse_prompt(
        image, out_dir=out_dir, toolbox=toolbox, on_progress=on_progress, **options
    )
    score = attribute_score(true_scene, result.best_prompt, chosen)
    initial = attribute_score(true_scene, result.initial_prompt, chosen)
    outcome = DemoResult(
        result=result,
        true_prompt=canonical_prompt(true_scene),
        true_prompt_parts=[
            TruePromptPart(text=text, seed=marked)
            for text, marked in canonical_parts(true_scene, chosen)
        ],
        user_prompt=prompt,
        scene=index,
        hits=list(score.hits),
        misses=list(score.misses),
        wrong=list(score.wrong),
        hidden=list(score.hidden),
        seed_chosen=described_facts(true_scene, chosen),
        seed_hits=list(score.seed_hits),
        recall=score.recall,
        precision=score.precision,
        f1=score.f1,
        initial_recall=initial.recall,
        initial_f1=initial.f1,
    )
    _record_demo(result, outcome.model_dump(mode="json", exclude={"result"}))
    return outcome


def _record_demo(result: Result, summary: dict[str, Any]) -> None:
    """Write ``demo.json``, add the summary to the run's ``result.json`` under ``"demo"`` and
    write the report again from it, so the page shows the true prompt and the hits."""
    from arpo.report import RESULT_NAME, write_report
    from arpo.tools.store import atomic_write

    atomic_write(result.run_dir / "demo.json", json.dumps(summary, indent=2).encode())
    record = json.loads((result.run_dir / RESULT_NAME).read_text(encoding="utf-8"))
    record["demo"] = summary
    atomic_write(result.run_dir / RESULT_NAME, json.dumps(record, indent=2).encode())
    write_report(result.run_dir, record)
