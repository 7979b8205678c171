"""Prompt-recovery methods behind one interface, and their registry.

A method is a plain function ``run(task) -> MethodOutput``: it gets the reference image and
its CLIP embedding, a (metered) Toolbox and a render budget, and returns a prompt. Adding a
method is writing such a function and one :func:`register` call.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from arpo.bench.cost import StageMeter
    from arpo.tools.toolbox import Toolbox


@dataclass(frozen=True)
class BenchTask:
    """One image for one method."""

    toolbox: Toolbox  # metered: its renderer, scorer and chat count what the method spends
    reference: Image.Image
    embedding: torch.Tensor  # the reference's normalised CLIP image embedding
    budget: int  # real renders the method may spend
    meter: StageMeter  # the same meter, for stages a method times itself
    seed: int  # search seed (renders, random choices)
    workdir: Path  # where a method may write (arpo run directories)
    options: dict[str, Any] = field(default_factory=dict)  # run-option overrides (render size)

    def run_options(self, **overrides: Any) -> Any:
        """:class:`~arpo.graph.context.RunOptions`: the toolbox's defaults, then the bench's
        overrides, then ``overrides``."""
        from arpo.graph.context import RunOptions

        defaults = {**self.toolbox.option_defaults, **self.options}
        return RunOptions.build(defaults, seed=self.seed, **overrides)


@dataclass(frozen=True)
class MethodOutput:
    prompt: str
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    name: str
    run: Callable[[BenchTask], MethodOutput]
    summary: str
    renders: bool = False  # spends the render budget
    needs_llm: bool = False  # skipped when no LLM is configured
    # raises InvalidOptionError when (run-option defaults, budget) cannot work: checked once,
    # before the bench starts, instead of failing every pair
    check_budget: Callable[[dict[str, Any], int], Any] | None = None


METHODS: dict[str, Method] = {}
GROUPS: dict[str, tuple[str, ...]] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


def resolve_methods(names: list[str]) -> list[Method]:
    """Methods by name, in the order given; groups (``offline``, ``all``, ``interrogate``)
    expand; duplicates are dropped."""
    chosen: list[str] = []
    for raw in names:
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            expanded = GROUPS.get(name, (name,))
            unknown = [n for n in expanded if n not in METHODS]
            if unknown:
                known = ", ".join([*METHODS, *GROUPS])
                raise InvalidOptionError(f"unknown method '{name}'; choose from: {known}.")
            chosen.extend(n for n in expanded if n not in chosen)
    if not chosen:
        raise InvalidOptionError("no method given; e.g. --methods offline or --methods pez.")
    return [METHODS[n] for n in chosen]


# --------------------------------------------------------------------------- methods


def caption(task: BenchTask) -> MethodOutput:
    from arpo.graph.nodes import caption_reference

    tools = task.toolbox
    digest = tools.store.put_image(task.reference)
    prompt = caption_reference(tools, digest, task.embedding, use_llm=True)
    if tools.chat is not None:
        note = None
    elif tools.captioner_configured:
        note = f"no LLM configured: captioner {tools.caption_model}, completed by CLIP"
    else:
        note = "no LLM or captioner configured: CLIP interrogation"
    return MethodOutput(prompt, note)


def interrogate_best(task: BenchTask) -> MethodOutput:
    """Best-of-chain: the best subject, then per category the phrase (of the top few) that
    raises the whole prompt's score, kept only if it does (arpo's own caption)."""
    return MethodOutput(task.toolbox.interrogator.caption(task.embedding))


def interrogate_fast(task: BenchTask) -> MethodOutput:
    """Fast: the single most similar phrase of each category, joined; no prompt is scored."""
    from arpo.tools.vocabulary import join_phrases

    best: dict[str, str] = {}
    for item in task.toolbox.phrase_ranker.rank(task.embedding):
        best.setdefault(item.category, item.phrase)
    order = list(task.toolbox.vocabulary.categories)
    return MethodOutput(join_phrases([best[c] for c in order if c in best]))


def pez(task: BenchTask) -> MethodOutput:
    from arpo.bench.pez import DEFAULT_STEPS, DEFAULT_TOKENS, pez_prompt

    scorer = task.toolbox.scorer
    with task.meter.stage("score"):  # gradient steps through the CLIP text tower
        prompt = pez_prompt(
            scorer.model,
            scorer.tokenizer,
            task.embedding,
            tokens=DEFAULT_TOKENS,
            steps=DEFAULT_STEPS,
            seed=task.seed,
        )
    return MethodOutput(prompt, details={"tokens": DEFAULT_TOKENS, "steps": DEFAULT_STEPS})


def random_search(task: BenchTask) -> MethodOutput:
    """From ARPO's own offline first prompt (the captioner's, else interrogation), random
    single-phrase edits (add, replace, drop), each rendered and kept when its renders are more
    CLIP-similar to the reference: a control with ARPO's start, renders and rerank objective
    (image similarity), without guided proposals."""
    from arpo.graph.nodes import offline_caption

    tools = task.toolbox
    options = task.run_options()
    rng = random.Random(f"random-search:{task.seed}")
    per_prompt = len(options.seeds)
    best = offline_caption(tools, tools.store.put_image(task.reference), task.embedding)
    best_score = _render_score(tools, best, options, task.embedding)
    tried = {best}
    for _ in range(50 * task.budget):  # bounded: edits may keep landing on tried prompts
        if (len(tried) + 1) * per_prompt > task.budget:
            break
        candidate = random_edit(best, tools, rng)
        if candidate in tried:  # a repeat teaches nothing; draw again
            continue
        tried.add(candidate)
        score = _render_score(tools, candidate, options, task.embedding)
        if score > best_score:
            best, best_score = candidate, score
    return MethodOutput(best, details={"tried": len(tried)})


def random_edit(prompt: str, tools: Toolbox, rng: random.Random) -> str:
    from arpo.tools.vocabulary import join_phrases, split_phrases

    phrases = split_phrases(prompt)
    vocabulary = tools.vocabulary.categories
    move = rng.choice(("add", "replace", "drop") if len(phrases) > 1 else ("add", "replace"))
    if move == "drop":
        phrases.pop(rng.randrange(len(phrases)))
    elif move == "replace" and phrases:
        i = rng.randrange(len(phrases))
        category = tools.vocabulary.category_of(phrases[i]) or rng.choice(list(vocabulary))
        phrases[i] = rng.choice(vocabulary[category])
    else:
        phrases.append(rng.choice(vocabulary[rng.choice(list(vocabulary))]))
    return join_phrases(phrases)


def _render_score(tools: Toolbox, prompt: str, options: Any, reference: torch.Tensor) -> float:
    digests = tools.renderer.render(
        [prompt] * len(options.seeds), options.seeds, options.render_params
    )
    embeddings = tools.scorer.encode_stored(digests, tools.store.get_image)
    sims = tools.scorer.image_similarity(embeddings, reference)
    return sum(sims) / len(sims)


def random_search_budget(defaults: dict[str, Any], budget: int) -> None:
    from arpo.graph.context import RunOptions

    seeds = len(RunOptions.build(defaults).seeds)
    if budget < seeds:
        raise InvalidOptionError(
            f"--budget {budget} is too small: random search renders its first prompt with "
            f"{seeds} seeds; raise --budget to at least {seeds}."
        )


def arpo_budget_options(defaults: dict[str, Any], budget: int) -> dict[str, Any]:
    """Iterations and rerank width such that a run renders at most ``budget`` images, using
    as much of it as it can. With ``s`` seeds a prompt, the first prompt costs ``s`` and each
    iteration ``k * s`` when it renders its top ``k`` candidates (the chosen one is then
    already rendered), else ``s`` (its new prompt, rendered next iteration or at the end).
    Below the options' own worst case (iterations x k), iterations and width shrink by the
    same factor, so a small budget still gets several steps: 12 x 16 at budget 64 gives 7 x 9;
    above it, the width stays k and the iterations grow: the defaults (10 x 3) at the default
    budget of 32 stay 10 x 3, what a user's run does."""
    from arpo.graph.context import RunOptions

    options = RunOptions.build(defaults)
    prompts = budget // len(options.seeds)
    if prompts < 2:
        raise InvalidOptionError(
            f"--budget {budget} is too small: ARPO needs at least {2 * len(options.seeds)} "
            "renders (its first prompt and one candidate); raise --budget."
        )
    if not options.rerank_top_k:
        return {"iterations": prompts - 1}
    width, room = options.rerank_top_k, prompts - 1
    preset_renders = options.iterations * width
    if room >= preset_renders:  # the options fit: keep their width, deepen
        iterations = room // width
    else:  # shrink depth and width together, not width alone
        depth = options.iterations * math.sqrt(room / preset_renders)
        iterations = max(math.ceil(room / width), min(options.iterations, round(depth)))
    iterations = min(iterations, room)  # each iteration renders at least one candidate
    rerank = room // iterations
    return {
        "iterations": iterations,
        "rerank_top_k": rerank,
        "candidates": max(options.candidates, rerank),
    }


def arpo_method(strategy: str) -> Callable[[BenchTask], MethodOutput]:
    def run(task: BenchTask) -> MethodOutput:
        from arpo import api

        tools = task.toolbox
        defaults = {**tools.option_defaults, **task.options}
        fitted = arpo_budget_options(defaults, task.budget)
        # The budget is the run's own stop condition, as with `arpo invert --budget`. The bench
        # still narrows a rerank too wide for the budget (the demo preset reranks 192), and
        # raises the iteration cap to what the budget could pay for, never below the options'
        # own: the graph's budget (or patience) ends the run, and iterations the render cache
        # serves leave budget for more.
        iterations = max(task.run_options().iterations, fitted["iterations"])
        budgeted = {**fitted, "iterations": iterations, "budget": task.budget}
        result = api.reverse_prompt(
            task.reference,
            out_dir=task.workdir / "run",
            toolbox=tools,
            **{**task.options, "strategy": strategy, "seed": task.seed, **budgeted},
        )
        details = {
            "run_id": result.run_id,
            "iterations": result.iterations,
            "stop_reason": result.stop_reason,
            "renders_spent": result.renders_spent,
            **{f"options_{k}": v for k, v in budgeted.items()},
        }
        return MethodOutput(result.best_prompt, details=details)

    run.__doc__ = f"The ARPO loop, strategy '{strategy}', stopped by the render budget."
    return run


for _method in (
    Method(
        "caption",
        caption,
        "the initial prompt only: vision-LLM caption, else the captioner's, else interrogation",
    ),
    Method("interrogate-fast", interrogate_fast, "CLIP: top phrase of each category"),
    Method("interrogate-best", interrogate_best, "CLIP: best-of-chain phrase selection"),
    Method("pez", pez, "gradient-based hard prompt (PEZ) through the CLIP text tower"),
    Method(
        "random-search",
        random_search,
        "random phrase edits, kept by render score",
        renders=True,
        check_budget=random_search_budget,
    ),
    Method(
        "arpo-offline",
        arpo_method("offline"),
        "ARPO, CLIP-guided phrase edits",
        renders=True,
        check_budget=arpo_budget_options,
    ),
    Method(
        "arpo-vanilla",
        arpo_method("vanilla"),
        "ARPO, LLM proposals",
        renders=True,
        needs_llm=True,
        check_budget=arpo_budget_options,
    ),
    Method(
        "arpo-enhanced",
        arpo_method("enhanced"),
        "ARPO, LLM critique + history of scored prompts",
        renders=True,
        needs_llm=True,
        check_budget=arpo_budget_options,
    ),
):
    register(_method)

GROUPS.update(
    {
        "interrogate": ("interrogate-fast", "interrogate-best"),
        "offline": tuple(n for n, m in METHODS.items() if not m.needs_llm),
        "all": tuple(METHODS),
    }
)
