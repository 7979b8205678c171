"""How good a method's prompt is, and what it cost, measured the same way for every method.

Every similarity column is scored by the bench's *judge* (:mod:`arpo.bench.judge`): another
CLIP than the search's when ``--judge MODEL`` names one, else the search's own scorer.

* ``text_score``: CLIP text-image similarity of the prompt to the reference;
* ``image_score``: mean CLIP image-image similarity to the reference of the prompt's renders
  with K *replay* seeds, disjoint from the search seeds (does the prompt recreate the image,
  or only the renders it was tuned on?);
* ``search_image_score`` (methods that render): the best image-image similarity among the
  method's own renders, on the search seeds; its gap to ``image_score`` is overfitting to them;
* ``true_text_score`` (true prompt known): CLIP text-text similarity to the true prompt;
* ``attribute_recall``, ``attribute_precision``, ``attribute_f1`` (demo world): share of the
  scene's shown attributes the prompt states, share of the prompt's claims that are true, and
  their harmonic mean (:func:`arpo.demo.scenes.attribute_score`);
* ``prompt_tokens``: the prompt's length in the search CLIP tokenizer's tokens;
* cost: seconds per stage, real renders, LLM calls and tokens, and the search's renders in
  US dollars where the backend has a price (:mod:`arpo.bench.cost`).

With a renderer that takes no seed (the images API) the replay renders are new samples, not
reproducible: ``image_score`` is then a fresh draw each time (the bench's ``summary.json``
says ``"reproducible": false``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from arpo.bench.cost import StageMeter
    from arpo.bench.dataset import BenchImage
    from arpo.tools.clip import ClipScorer
    from arpo.tools.toolbox import Toolbox

REPLAY_SEED_OFFSET = 1000  # replay seeds: seed + 1000 + k, never a search seed
QUALITY = (
    "text_score",
    "image_score",
    "search_image_score",
    "true_text_score",
    "attribute_recall",
    "attribute_precision",
    "attribute_f1",
    "prompt_tokens",
)
COST = (
    "time_total_s",
    "time_render_s",
    "time_score_s",
    "time_llm_s",
    "time_other_s",
    "renders",
    "llm_calls",
    "llm_tokens",
    "cost_usd",
)
METRICS = QUALITY + COST


def replay_seeds(seed: int, count: int) -> list[int]:
    return [seed + REPLAY_SEED_OFFSET + k for k in range(count)]


def quality(
    toolbox: Toolbox,
    image: BenchImage,
    embedding: torch.Tensor,
    prompt: str,
    seeds: list[int],
    options: dict[str, Any] | None = None,
    judge: ClipScorer | None = None,
) -> tuple[dict[str, float | None], list[str]]:
    """The quality metrics of ``prompt`` and its replay renders (artifact hashes);
    ``options``: run-option overrides of the render size and steps; ``judge``: the scorer of
    the similarity columns (default the toolbox's), ``embedding`` the reference under it."""
    from arpo.graph.context import RunOptions

    scorer = judge if judge is not None else toolbox.scorer
    params = RunOptions.build({**toolbox.option_defaults, **(options or {})}).render_params
    renders = toolbox.renderer.render([prompt] * len(seeds), seeds, params)
    sims = scorer.image_similarity(
        scorer.encode_stored(renders, toolbox.store.get_image), embedding
    )
    values: dict[str, float | None] = {
        "text_score": scorer.text_similarity([prompt], embedding)[0],
        "image_score": sum(sims) / len(sims),
        "true_text_score": None,
        "attribute_recall": None,
        "attribute_precision": None,
        "attribute_f1": None,
        "prompt_tokens": float(prompt_tokens(toolbox.scorer.tokenizer, prompt)),
    }
    if image.true_prompt:
        pair = scorer.encode_texts([prompt, image.true_prompt])
        values["true_text_score"] = float(pair[0] @ pair[1])
    if image.scene is not None:
        from arpo.demo.scenes import attribute_score

        score = attribute_score(image.scene, prompt)
        values["attribute_recall"] = score.recall
        values["attribute_precision"] = score.precision
        values["attribute_f1"] = score.f1
    return values, renders


def prompt_tokens(tokenizer: Any, prompt: str) -> int:
    """Tokens of ``prompt`` without the start and end tokens (at most the context length)."""
    row = tokenizer([prompt])[0].tolist()
    empty = tokenizer([""])[0].tolist()
    pad = empty[2] if len(empty) > 2 else 0
    return max(0, sum(1 for token in row if token != pad) - 2)


def cost(meter: StageMeter, total_s: float) -> dict[str, float | None]:
    seconds = meter.seconds
    spent = seconds["render"] + seconds["score"] + seconds["llm"]
    return {
        "time_total_s": total_s,
        "time_render_s": seconds["render"],
        "time_score_s": seconds["score"],
        "time_llm_s": seconds["llm"],
        "time_other_s": max(0.0, total_s - spent),
        "renders": float(meter.renders),
        "llm_calls": float(meter.llm_calls),
        "llm_tokens": float(meter.llm_tokens),
        "cost_usd": meter.cost_usd,  # the search's renders (images API); None: not priced
    }


def best_by_render(
    toolbox: Toolbox,
    meter: StageMeter,
    embedding: torch.Tensor,
    judge: ClipScorer | None = None,
) -> list[float]:
    """After each real render, the best image-image similarity to the reference so far (by
    ``judge``, default the toolbox's scorer): one point per render, for the
    score-against-renders plot."""
    if not meter.rendered:
        return []
    scorer = judge if judge is not None else toolbox.scorer
    sims = scorer.image_similarity(scorer.encode_images(meter.rendered), embedding)
    curve, best = [], float("-inf")
    for sim in sims:
        best = max(best, sim)
        curve.append(best)
    return curve
