"""``arpo demo``: reverse-prompt a demo-world image whose true prompt is known, offline.

The demo builds on the api (a normal run, report and all) and adds what only the demo world
knows: the true prompt, which of its attributes the recovered prompt states (recall), how much
of what it states is true (precision) and F1 (:func:`arpo.demo.scenes.attribute_score`).
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


class DemoResult(BaseModel):
    """A demo-world run: the scene's true prompt beside the recovered one."""

    result: Result
    true_prompt: str
    hits: list[str]
    misses: list[str]
    wrong: list[str]  # what the recovered prompt states that is false
    hidden: list[str]  # true attributes the render does not show: not judged
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
    from arpo.demo.render import render_prompt, scene_for_prompt
    from arpo.demo.scenes import attribute_score, canonical_prompt
    from arpo.tools.store import atomic_write

    toolbox = toolbox or get_toolbox(Settings(preset="demo"))
    if toolbox.settings.preset != "demo":
        raise InvalidOptionError("the demo needs the demo preset (Settings(preset='demo')).")
    if not 1 <= objects <= 3:
        raise InvalidOptionError(f"objects={objects}: demo scenes have 1 to 3 objects.")
    if prompt is not None:
        if not prompt.strip():
            raise InvalidOptionError("the demo prompt is empty; give a scene to draw.")
        seed = int(options.get("seed") or 0)
        true_scene, image = scene_for_prompt(prompt, seed), render_prompt(prompt, seed)
    else:
        index = random.SystemRandom().randrange(1_000_000) if scene is None else scene
        true_scene = heldout_scene(index, objects)
        image = render_scene(true_scene, index)
    options.setdefault("strategy", "offline")
    result = reverse_prompt(
        image, out_dir=out_dir, toolbox=toolbox, on_progress=on_progress, **options
    )
    score = attribute_score(true_scene, result.best_prompt)
    initial = attribute_score(true_scene, result.initial_prompt)
    outcome = DemoResult(
        result=result,
        true_prompt=canonical_prompt(true_scene),
        hits=list(score.hits),
        misses=list(score.misses),
        wrong=list(score.wrong),
        hidden=list(score.hidden),
        recall=score.recall,
        precision=score.precision,
        f1=score.f1,
        initial_recall=initial.recall,
        initial_f1=initial.f1,
    )
    summary = outcome.model_dump(mode="json", exclude={"result"})
    atomic_write(result.run_dir / "demo.json", json.dumps(summary, indent=2).encode())
    return outcome
