"""The ARPO loop's steps. Each node reads run options from ``runtime.context`` and returns a
state update; models come from the Toolbox the graph was built with."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from functools import cached_property, wraps
from typing import TYPE_CHECKING, Any

from langgraph.runtime import Runtime

from arpo.errors import CostLimitReached, LLMOutputError
from arpo.graph import prompts
from arpo.graph.context import RunOptions, resolve_strategy
from arpo.graph.state import ArpoState, Rendered, Scored
from arpo.objective import score_key
from arpo.tools.t2i import RendersFailed, RendersRefused

if TYPE_CHECKING:
    import torch

    from arpo.remix.compose import Fitted
    from arpo.tools.phrases import Judge
    from arpo.tools.tokens import TokenBudget
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

Node = Callable[[Any, ArpoState, Runtime[RunOptions]], dict[str, Any]]
TOP_CANDIDATES_KEPT = 8


def timed(node: Node) -> Node:
    """Add the node's wall time to ``elapsed_s``, which (unlike a start timestamp) stays
    meaningful for the time budget when a run is resumed later."""

    @wraps(node)
    def run(self: Any, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        start = time.perf_counter()
        update = node(self, state, runtime)
        return {**update, "elapsed_s": state.get("elapsed_s", 0.0) + time.perf_counter() - start}

    return run


class SpendMeter:
    """Renders the run has paid for, counted as the backend makes them. A step that fails
    after rendering loses its state update but not this count: the api records
    :attr:`paid` and a resume starts from it, so cost never undercounts."""

    def __init__(self) -> None:
        self.before_step = 0  # the state's renders_spent when the step began
        self.in_step = 0

    def begin(self, renders_spent: int) -> None:
        self.before_step, self.in_step = renders_spent, 0

    def add(self, renders: int) -> None:
        self.in_step += renders

    @property
    def paid(self) -> int:
        return self.before_step + self.in_step


def metered(node: Node) -> Node:
    """Start the meter's count of the step's renders (see :class:`SpendMeter`)."""

    @wraps(node)
    def run(self: Nodes, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        self.meter.begin(state.get("renders_spent", 0))
        return node(self, state, runtime)

    return run


class Nodes:
    def __init__(self, toolbox: Toolbox, meter: SpendMeter | None = None) -> None:
        self.tools = toolbox
        self.meter = meter or SpendMeter()
        self._caption_scores: dict[tuple[str, str], float] = {}  # (reference, prompt)

    # -- helpers ------------------------------------------------------------------------

    @cached_property
    def budget(self) -> TokenBudget:
        """What the model's text encoders read (counted with the loaded pipeline's own
        tokenizers where it has them) and the prompt style its family wants."""
        from arpo.tools.tokens import budget_for

        return budget_for(self.tools.profile, getattr(self.tools.backend, "pipeline", None))

    def fit(self, prompt: str) -> Fitted:
        """``prompt`` cut at phrase boundaries to what the model reads (unchanged if it fits)."""
        from arpo.remix.compose import fit_prompt
        from arpo.remix.decompose import component_of

        vocabulary = self.tools.vocabulary
        preset = self.tools.preset
        overrides = dict(preset.vocabulary_components) if preset else {}
        return fit_prompt(
            prompt,
            self.budget.max_tokens,
            count_tokens=self.budget.count,
            component_of=lambda phrase: component_of(phrase, vocabulary, overrides),
        )

    def fit_all(self, found: list[str], current: str) -> tuple[list[str], str | None]:
        """Candidates cut to what the model reads (the current prompt and repeats dropped),
        and a note saying what was cut, if anything."""
        fitted = [self.fit(candidate) for candidate in found]
        kept = [f.prompt for f in fitted if f.prompt and f.prompt != current]
        over = [f for f in fitted if f.cut]
        if not over:
            return list(dict.fromkeys(kept)), None
        dropped = "; ".join(dict.fromkeys(phrase for f in over for phrase in f.cut))
        note = f"{len(over)} of {len(found)} candidates cut to {self.budget.describe()}: {dropped}"
        return list(dict.fromkeys(kept)), note

    def caption_scores(
        self, state: ArpoState, texts: list[str], options: RunOptions
    ) -> list[float] | None:
        """The local captioner's likelihood of each text as the reference's caption (mean
        token log-probability), when the run weighs it (``caption_weight``) and a captioner
        that can score is configured; else None. Cached per (reference, text) for the run."""
        if options.caption_weight <= 0:
            return None
        captioner = self.tools.captioner
        if captioner is None or not getattr(captioner, "can_score", False):  # duck-typed ones
            return None
        reference = state["reference"]
        missing = [t for t in dict.fromkeys(texts) if (reference, t) not in self._caption_scores]
        if missing:
            image = self.tools.store.get_image(reference)
            scores = captioner.likelihood(image, missing)
            self._caption_scores.update(
                ((reference, t), s) for t, s in zip(missing, scores, strict=True)
            )
        return [self._caption_scores[(reference, t)] for t in texts]

    def caption_judge(self, state: ArpoState, options: RunOptions) -> Judge | None:
        """The captioner's likelihood as the offline proposer's second judge, when weighed."""
        from arpo.tools.phrases import Judge

        if self.caption_scores(state, [], options) is None:
            return None

        def score(texts: list[str]) -> list[float]:
            return self.caption_scores(state, texts, options) or [0.0] * len(texts)

        return Judge(score, options.caption_weight)

    def reference_embedding(self, state: ArpoState) -> torch.Tensor:
        return self.tools.scorer.encode_stored([state["reference"]], self.tools.store.get_image)[0]

    def render(self, prompts_: list[str], options: RunOptions) -> tuple[list[list[str]], int]:
        """Render each prompt with the run's seeds in one batch: hashes per prompt, and how
        many renders the backend really made (cache hits are free)."""
        seeds = options.seeds
        try:
            flat, spent = self.tools.renderer.render_counted(
                [p for p in prompts_ for _ in seeds], seeds * len(prompts_), options.render_params
            )
        except (RendersRefused, RendersFailed) as error:
            self.meter.add(error.spent)
            raise
        self.meter.add(spent)
        groups = [flat[i * len(seeds) : (i + 1) * len(seeds)] for i in range(len(prompts_))]
        return groups, spent

    def over_budget(self, state: ArpoState, prompt: str, options: RunOptions) -> bool:
        """Whether one more iteration could exceed the run's render budget: rendering
        ``prompt`` (the current one, unless already rendered: the run renders it anyway, at
        the next ``generate`` or at ``finalize``) plus the iteration's worst case."""
        if options.budget is None:
            return False
        seeds = options.seeds
        pending = self.tools.renderer.missing([prompt] * len(seeds), seeds, options.render_params)
        needed = state.get("renders_spent", 0) + pending + options.iteration_renders
        return needed > options.budget

    def over_cost(self, state: ArpoState, prompt: str, options: RunOptions) -> bool:
        """Whether one more iteration could pass the run's ``max_cost``: what
        :meth:`over_budget` counts, in US dollars at the backend's price per image (a backend
        without a price is never over)."""
        needed = self.cost_needed(state, prompt, options)
        return (
            needed is not None and options.max_cost is not None and needed > options.max_cost + 1e-9
        )

    def cost_needed(self, state: ArpoState, prompt: str, options: RunOptions) -> float | None:
        """What the run would have cost after one more iteration, or None without a price."""
        price = self.tools.renderer.price_per_image(options.render_params)
        if options.max_cost is None or not price:
            return None
        seeds = options.seeds
        pending = self.tools.renderer.missing([prompt] * len(seeds), seeds, options.render_params)
        return (state.get("renders_spent", 0) + pending + options.iteration_renders) * price

    def render_or_refuse(
        self, prompts_: list[str], options: RunOptions
    ) -> tuple[list[list[str] | None], int, dict[str, str]]:
        """As :meth:`render`, but a prompt the backend refuses (an images API's content
        policy) gets None, and its reason, instead of stopping the run."""
        seeds = options.seeds
        try:
            outcome = self.tools.renderer.render_some(
                [p for p in prompts_ for _ in seeds], seeds * len(prompts_), options.render_params
            )
        except RendersFailed as error:
            self.meter.add(error.spent)
            raise
        self.meter.add(outcome.spent)
        groups: list[list[str] | None] = []
        refused: dict[str, str] = {}
        for i, prompt in enumerate(prompts_):
            group = outcome.hashes[i * len(seeds) : (i + 1) * len(seeds)]
            reasons = [
                outcome.refused[j]
                for j in range(i * len(seeds), (i + 1) * len(seeds))
                if j in outcome.refused
            ]
            if reasons:
                refused[prompt] = reasons[0]
                groups.append(None)
            else:
                groups.append([digest for digest in group if digest is not None])
        return groups, outcome.spent, refused

    def image_scores(self, renders: list[list[str]], reference: torch.Tensor) -> list[float]:
        """Mean image-image similarity to the reference of each prompt's renders."""
        scorer = self.tools.scorer
        flat = [digest for group in renders for digest in group]
        embeddings = scorer.encode_stored(flat, self.tools.store.get_image)
        sims = scorer.image_similarity(embeddings, reference)
        scores, start = [], 0
        for group in renders:
            scores.append(sum(sims[start : start + len(group)]) / len(group))
            start += len(group)
        return scores

    def strategy(self, runtime: Runtime[RunOptions]) -> str:
        return resolve_strategy(runtime.context.strategy, self.tools.llm_available)

    def llm_images(self, state: ArpoState) -> list[tuple[str, Any]]:
        store = self.tools.store
        return [
            ("REFERENCE image:", store.get_image(state["reference"])),
            ("GENERATED image:", store.get_image(state["renders"][0])),
        ]

    # -- nodes --------------------------------------------------------------------------

    @timed
    def initialize(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        use_llm = self.strategy(runtime) != "offline"  # fails early if it cannot run
        reference = self.reference_embedding(state)
        given = (state.get("initial_prompt") or "").strip()
        starts = [given] if given else self.starts(state, reference, use_llm, runtime.context)
        fitted = self.fit(starts[0])
        note = None
        if fitted.cut:
            note = f"starting prompt cut to {self.budget.describe()}: {'; '.join(fitted.cut)}"
            log.info(note)
        others = [p for p in dict.fromkeys(self.fit(s).prompt for s in starts[1:]) if p]
        others = [p for p in others if p != fitted.prompt]
        scores = self.tools.scorer.text_similarity([fitted.prompt, *others], reference)
        judged = self.caption_scores(state, [fitted.prompt, *others], runtime.context)
        # the first prompt is always rendered; an iteration the budget cannot pay does not start
        unaffordable = None
        if self.over_budget(state, fitted.prompt, runtime.context):
            unaffordable = "budget"
        elif self.over_cost(state, fitted.prompt, runtime.context):
            unaffordable = "max_cost"
        return {
            "prompt": fitted.prompt,
            "text_score": scores[0],
            "caption_score": judged[0] if judged else None,
            "iteration": 0,
            "stale": 0,
            "critique": None,
            "candidates": [],
            "note": note,
            "stop_reason": unaffordable,
            "alternatives": [
                _with_caption_score({"prompt": p, "text_score": s}, judged, i + 1)
                for i, (p, s) in enumerate(zip(others, scores[1:], strict=True))
            ],
        }

    def starts(
        self, state: ArpoState, reference: torch.Tensor, use_llm: bool, options: RunOptions
    ) -> list[str]:
        """The first prompt, then the hypotheses a stalled search restarts from: the local
        captioner's next-best captions when it writes the first prompt (no LLM, or its
        answer unusable), none otherwise."""
        if use_llm and self.tools.chat is not None:
            return [self.caption(state, reference, use_llm)]
        return offline_starts(self.tools, state["reference"], reference, 1 + options.restarts)

    def caption(self, state: ArpoState, reference: torch.Tensor, use_llm: bool) -> str:
        return caption_reference(
            self.tools, state["reference"], reference, use_llm, budget=self.budget
        )

    @timed
    @metered
    def generate(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        options = runtime.context
        try:
            groups, spent = self.render([state["prompt"]], options)
        except RendersRefused as error:
            return self.refused_current(state, error)
        renders = groups[0]
        image_score = self.image_scores([renders], self.reference_embedding(state))[0]
        current: Rendered = {
            "iteration": state["iteration"],
            "prompt": state["prompt"],
            "text_score": state["text_score"],
            "image_score": image_score,
            "renders": renders,
            "caption_score": state.get("caption_score"),
        }
        update: dict[str, Any] = {
            "renders": renders,
            "image_score": image_score,
            "renders_spent": state.get("renders_spent", 0) + spent,
        }
        if _better(current, state.get("best"), options):
            update["best"] = current
        return update

    def refused_current(self, state: ArpoState, error: RendersRefused) -> dict[str, Any]:
        """The current prompt was refused by the backend: go back to the best prompt so far
        (rendered already), with a note; a refused first prompt stops the run (nothing to go
        back to), with the refusal as its error."""
        best = state.get("best")
        if best is None:
            raise error
        reason = next(iter(error.reasons.values()), "refused")
        note = (
            f"refused by the text-to-image service ({reason}): {state['prompt']}; back to "
            "the best prompt"
        )
        log.warning(note)
        return {
            "prompt": best["prompt"],
            "text_score": best["text_score"],
            "renders": best["renders"],
            "image_score": best["image_score"],
            "renders_spent": state.get("renders_spent", 0) + error.spent,
            "note": _notes(state.get("note"), note),
        }

    @timed
    def critique(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        chat = self.tools.chat
        assert chat is not None  # routed here only when an LLM strategy resolved
        text = prompts.CRITIQUE.format(prompt=state["prompt"])
        message = chat.user_message(text, self.llm_images(state))
        try:
            differences = chat.ask(prompts.Critique, [message]).differences
        except LLMOutputError as error:
            log.warning("critique failed: %s", error)
            note = _notes(state.get("note"), "critique unavailable: malformed LLM output")
            return {"critique": None, "note": note}
        return {"critique": [d.strip() for d in differences if d.strip()]}

    @timed
    def propose(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        options = runtime.context
        strategy = self.strategy(runtime)
        note = state.get("note")  # this iteration's so far (select clears it)
        if strategy != "offline":
            try:
                found = self.propose_with_llm(state, options, strategy)
                found, cut = self.fit_all(found, state["prompt"])
                if cut:
                    log.info(cut)
                return {
                    "candidates": found,
                    "candidates_scored": len(found),
                    "proposer": "llm",
                    "note": _notes(note, cut),
                }
            except LLMOutputError as error:
                fallback = f"LLM output malformed twice; offline proposer used ({error})"
                log.warning(fallback)
                note = _notes(note, fallback)
        rng = random.Random(f"{options.seed}:{state['iteration']}")
        found = self.tools.offline_proposer.propose(
            state["prompt"],
            self.reference_embedding(state),
            options.candidates,
            rng,
            fits=self.budget.fits,
            judge=self.caption_judge(state, options),
        )
        proposer = "offline" if strategy == "offline" else "offline (LLM fallback)"
        return {
            "candidates": list(found),
            "candidates_scored": found.scored,
            "proposer": proposer,
            "note": note,
        }

    def propose_with_llm(self, state: ArpoState, options: RunOptions, strategy: str) -> list[str]:
        chat = self.tools.chat
        assert chat is not None
        style = prompts.style_for(self.budget)
        if strategy == "vanilla":
            text = prompts.VANILLA.format(
                prompt=state["prompt"], count=options.candidates, style=style
            )
        else:
            tried = sorted(
                {r["prompt"]: r["text_score"] for r in state.get("history", [])}.items(),
                key=lambda pair: pair[1],
                reverse=True,
            )[: options.history_in_prompt]
            text = prompts.ENHANCED.format(
                prompt=state["prompt"],
                critique=prompts.bullet_list(state.get("critique") or []),
                history=prompts.scored_list(tried),
                count=options.candidates,
                style=style,
            )
        answer = chat.ask(prompts.Candidates, [chat.user_message(text, self.llm_images(state))])
        found = [p.strip() for p in answer.prompts if p.strip() and p.strip() != state["prompt"]]
        if not found:
            raise LLMOutputError("the LLM proposed no new prompt")
        return list(dict.fromkeys(found))[: options.candidates]

    @timed
    @metered
    def select(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        """Greedy step: score candidates and the current prompt in one batch, keep the best."""
        options = runtime.context
        reference = self.reference_embedding(state)
        texts = list(dict.fromkeys([state["prompt"], *state["candidates"]]))
        scores = self.tools.scorer.text_similarity(texts, reference)
        judged = self.caption_scores(state, texts, options)
        weight = options.caption_weight
        ranked: list[Scored] = sorted(
            (
                _with_caption_score(
                    {"prompt": t, "text_score": s, "tokens": self.budget.counts(t)}, judged, i
                )
                for i, (t, s) in enumerate(zip(texts, scores, strict=True))
            ),
            key=lambda c: _judged(c, "text_score", weight),
            reverse=True,
        )
        chosen, improved, spent, refused = self.choose(state, ranked, reference, options)
        renders_spent = state.get("renders_spent", 0) + spent
        scored = state.get("candidates_scored", len(texts) - 1)
        record = {
            "iteration": state["iteration"],
            "prompt": state["prompt"],
            "text_score": state["text_score"],
            "image_score": state.get("image_score"),
            "caption_score": state.get("caption_score"),
            "renders": state["renders"],
            "proposer": state.get("proposer"),
            "critique": state.get("critique"),
            "note": _notes(state.get("note"), refused),
            "candidates": ranked[:TOP_CANDIDATES_KEPT],
            "candidates_scored": scored + 1,  # the current prompt competes too
            "improved": improved,
            "renders_spent": renders_spent,  # the run's, so far (this step's rerank included)
        }
        return {
            "prompt": chosen["prompt"],
            "text_score": chosen["text_score"],
            "caption_score": chosen.get("caption_score"),
            "candidates": ranked[:TOP_CANDIDATES_KEPT],
            "stale": 0 if improved else state.get("stale", 0) + 1,
            "note": None,  # recorded; the next iteration starts without notes
            "renders_spent": renders_spent,
            "history": [record],
        }

    def choose(
        self,
        state: ArpoState,
        ranked: list[Scored],
        reference: torch.Tensor,
        options: RunOptions,
    ) -> tuple[Scored, bool, int, str | None]:
        """The next prompt, whether it improves on the current one by the run's objective,
        the renders the backend made to decide (reranking only), and a note naming the
        candidates the backend refused to render (they score lowest: never chosen).
        Reranking writes each rendered candidate's image score into its entry of ``ranked``
        (and the current prompt's, which they compete with), so the record shows what chose."""
        weight = options.caption_weight
        stay: Scored = {"prompt": state["prompt"], "text_score": state["text_score"]}
        for candidate in ranked:  # the current prompt, scored with the candidates
            if candidate["prompt"] == state["prompt"] and "caption_score" in candidate:
                stay["caption_score"] = candidate["caption_score"]
        if options.objective == "text":
            improved = (
                _judged(ranked[0], "text_score", weight)
                > _judged(stay, "text_score", weight) + 1e-6
            )
            return ranked[0], improved, 0, None
        top = [c for c in ranked[: options.rerank_top_k] if c["prompt"] != state["prompt"]]
        if not top:
            return stay, False, 0, None
        groups, spent, refused = self.render_or_refuse([c["prompt"] for c in top], options)
        rendered = [group for group in groups if group is not None]
        scores = iter(self.image_scores(rendered, reference) if rendered else [])
        image_scores = [float("-inf") if group is None else next(scores) for group in groups]
        for candidate, image_score in zip(top, image_scores, strict=True):
            if image_score != float("-inf"):  # a refused candidate has no image score
                candidate["image_score"] = image_score
        current_image = state.get("image_score")
        for candidate in ranked:
            if candidate["prompt"] == state["prompt"] and current_image is not None:
                candidate["image_score"] = current_image
        note = None
        if refused:
            note = (
                f"{len(refused)} candidate(s) refused by the text-to-image service, scored lowest: "
                + "; ".join(f"{prompt} ({reason})" for prompt, reason in refused.items())
            )
            log.warning(note)
        judged = [
            score + weight * candidate.get("caption_score", 0.0)
            for candidate, score in zip(top, image_scores, strict=True)
        ]
        best = max(range(len(top)), key=judged.__getitem__)
        current = _score(state.get("image_score")) + weight * stay.get("caption_score", 0.0)
        if judged[best] > current + 1e-6:
            return top[best], True, spent, note
        return stay, False, spent, note

    @timed
    def stop_check(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        options = runtime.context
        iteration = state["iteration"] + 1
        best = state["best"]
        if options.objective == "text":  # the selected prompt is scored but not yet rendered
            reached = max(_score(best["text_score"]), state["text_score"])
        else:
            reached = _score(best["image_score"])
        reason = None
        if iteration >= options.iterations:
            reason = "max_iterations"
        elif options.target_score is not None and reached >= options.target_score:
            reason = "target_score"
        elif options.patience and state.get("stale", 0) >= options.patience:
            reason = "patience"
        elif (
            options.time_budget_s is not None and state.get("elapsed_s", 0) >= options.time_budget_s
        ):
            reason = "time_budget"
        elif self.over_budget(state, state["prompt"], options):
            reason = "budget"
        elif self.over_cost(state, state["prompt"], options):
            reason = "max_cost"
        restart = self.restart(state, options) if reason == "patience" else None
        if restart is not None:
            reason = None
        runtime.stream_writer(
            {
                "event": "iteration",
                "iteration": state["iteration"],
                "prompt": state["prompt"],
                "text_score": state["text_score"],
                "rendered_prompt": state["history"][-1]["prompt"] if state.get("history") else None,
                "image_score": state.get("image_score"),
                "render": (state.get("renders") or [None])[0],
                "objective": options.objective,
                "best_prompt": best["prompt"],
                "best_score": best[score_key(options.objective)],  # never decreases
                "best_text_score": best["text_score"],
                "best_image_score": best["image_score"],
                "renders_spent": state.get("renders_spent", 0),
                "budget": options.budget,
                "stop_reason": reason,
            }
        )
        if reason == "max_cost":  # a pause, not an end: the run resumes with a higher limit
            raise CostLimitReached(self.cost_message(state, options))
        return {"iteration": iteration, "stop_reason": reason, **(restart or {})}

    def cost_message(self, state: ArpoState, options: RunOptions) -> str:
        price = self.tools.renderer.price_per_image(options.render_params) or 0.0
        spent = state.get("renders_spent", 0)
        needed = self.cost_needed(state, state["prompt"], options) or 0.0
        return (
            f"the next iteration could bring the run's cost to ${needed:.2f}, past its "
            f"--max-cost ${options.max_cost:.2f} (${spent * price:.2f} spent so far: {spent} "
            f"renders at ${price:.3f}); stopped with the best prompt so far"
        )

    def restart(self, state: ArpoState, options: RunOptions) -> dict[str, Any] | None:
        """Where the search goes instead of stopping on patience: the next hypothesis it has
        not tried, when the budget pays for rendering it and an iteration; else None."""
        tried = {record["prompt"] for record in state.get("history", [])}
        waiting = [a for a in state.get("alternatives", []) if a["prompt"] not in tried]
        if not waiting or self.over_budget(state, waiting[0]["prompt"], options):
            return None
        if self.over_cost(state, waiting[0]["prompt"], options):
            return None
        start = waiting[0]
        return {
            "prompt": start["prompt"],
            "text_score": start["text_score"],
            "caption_score": start.get("caption_score"),
            "stale": 0,
            "alternatives": waiting[1:],
            "note": f"restarted from the captioner's next hypothesis: {start['prompt']}",
        }

    @timed
    @metered
    def finalize(self, state: ArpoState, runtime: Runtime[RunOptions]) -> dict[str, Any]:
        """Render the last selected prompt too, so the answer is the best prompt *seen*."""
        options = runtime.context
        note = "final"
        try:
            groups, spent = self.render([state["prompt"]], options)
            renders = groups[0]
            image_score = self.image_scores([renders], self.reference_embedding(state))[0]
        except RendersRefused as error:  # the answer stays the best prompt seen
            renders, spent, image_score = [], error.spent, None
            reason = next(iter(error.reasons.values()), "")
            note = f"final; refused by the text-to-image service ({reason})"
        renders_spent = state.get("renders_spent", 0) + spent
        final: Rendered = {
            "iteration": state["iteration"],
            "prompt": state["prompt"],
            "text_score": state["text_score"],
            "image_score": image_score,
            "renders": renders,
            "caption_score": state.get("caption_score"),
        }
        record = {
            **final,
            "proposer": None,
            "critique": None,
            "note": note,
            "candidates": [],
            "renders_spent": renders_spent,
        }
        update: dict[str, Any] = {
            "history": [record],
            "renders": renders,
            "image_score": image_score,
            "renders_spent": renders_spent,
        }
        if renders and _better(final, state.get("best"), options):
            update["best"] = final
        return update

    # -- routing ------------------------------------------------------------------------

    def after_generate(self, state: ArpoState, runtime: Runtime[RunOptions]) -> str:
        if state.get("stop_reason"):  # set by initialize: the budget pays for no iteration
            return "finalize"
        return "critique" if self.strategy(runtime) == "enhanced" else "propose"

    @staticmethod
    def after_stop_check(state: ArpoState) -> str:
        return "finalize" if state.get("stop_reason") else "generate"


def caption_reference(
    tools: Toolbox,
    reference: str,
    embedding: torch.Tensor,
    use_llm: bool,
    *,
    budget: TokenBudget | None = None,
) -> str:
    """A starting prompt for the stored image ``reference``: the vision LLM's caption when
    ``use_llm`` and an LLM is configured, else (or if its answer does not parse)
    :func:`offline_caption`. The LLM is asked for the style of ``budget`` (default: the
    configured model family's, its T5 tokens estimated rather than loading the model for its
    tokenizer)."""
    chat = tools.chat if use_llm else None
    if chat is None:
        return offline_caption(tools, reference, embedding)
    if budget is None:
        from arpo.tools.tokens import budget_for

        budget = budget_for(tools.profile)
    image = tools.store.get_image(reference)
    text = prompts.CAPTION.format(style=prompts.style_for(budget))
    message = chat.user_message(text, [("Image:", image)])
    try:
        return chat.ask(prompts.Caption, [message]).prompt.strip()
    except LLMOutputError as error:
        log.warning("LLM caption failed (%s); captioning without it", error)
        return offline_caption(tools, reference, embedding)


def offline_caption(tools: Toolbox, reference: str, embedding: torch.Tensor) -> str:
    """A starting prompt without an LLM: the local captioner's caption (ARPO_CAPTION_MODEL)
    completed with vocabulary phrases while they raise its CLIP score; with no captioner, or
    an empty caption, CLIP interrogation of ``embedding`` over the phrase vocabulary."""
    return offline_starts(tools, reference, embedding, 1)[0]


def offline_starts(
    tools: Toolbox, reference: str, embedding: torch.Tensor, count: int
) -> list[str]:
    """Up to ``count`` starting prompts without an LLM, best first: the local captioner's
    ``count`` best captions (beam search; greedy for one) each completed as
    :func:`offline_caption` completes one; with no captioner, or no caption, the one prompt
    CLIP interrogation gives."""
    captioner = tools.captioner
    if captioner is not None:
        image = tools.store.get_image(reference)
        found = captioner.hypotheses(image, count) if count > 1 else captioner.caption([image])
        found = [text.strip() for text in found if text.strip()]
        if found:
            completed = [tools.interrogator.complete(text, embedding) for text in found]
            return list(dict.fromkeys(completed))
        log.warning("the captioner %s wrote nothing; using CLIP interrogation", captioner.name)
    return [tools.interrogator.caption(embedding)]


def _notes(*notes: str | None) -> str | None:
    """Notes joined into one, or None when there are none."""
    return "; ".join(note for note in notes if note) or None


def _better(candidate: Rendered, best: Rendered | None, options: RunOptions) -> bool:
    """Whether ``candidate`` beats the best so far by the run's objective, the captioner's
    judgement weighed in when both carry it."""
    if best is None:
        return True
    key = score_key(options.objective)
    weight = options.caption_weight
    if candidate.get("caption_score") is None or best.get("caption_score") is None:
        weight = 0.0
    return _judged(candidate, key, weight) > _judged(best, key, weight) + 1e-9


def _judged(entry: Any, key: str, weight: float) -> float:
    """``entry``'s score by ``key`` plus ``weight`` times its caption score (if it has one)."""
    caption = entry.get("caption_score")
    return _score(entry.get(key)) + (weight * caption if caption is not None else 0.0)


def _with_caption_score(entry: Scored, judged: list[float] | None, index: int) -> Scored:
    """``entry`` with the captioner's score ``judged[index]`` when there are caption scores."""
    if judged is not None:
        entry["caption_score"] = judged[index]
    return entry


def _score(value: float | None) -> float:
    """A missing score ranks below every real one (0.0 included)."""
    return float("-inf") if value is None else value
