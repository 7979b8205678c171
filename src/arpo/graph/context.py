"""Run options: the graph's context schema, read by nodes through ``Runtime[RunOptions]``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from arpo.errors import InvalidOptionError
from arpo.objective import objective_of
from arpo.tools.t2i import RenderParams

Strategy = Literal["auto", "vanilla", "enhanced", "offline"]
STRATEGIES: tuple[str, ...] = ("auto", "vanilla", "enhanced", "offline")

#: Renders a run may make by default: sized for models whose renders cost seconds. With the
#: other defaults (10 iterations that each render the top 3 of 8 candidates) a run spends at
#: most 31; the demo world and real models share these defaults, so the demo shows what a
#: user of a real model gets.
DEFAULT_RENDER_BUDGET = 32

#: The captioner's weight beside CLIP (:attr:`RunOptions.caption_weight`), chosen on the demo
#: bench (README, How well does it work); not measured on real captioners.
DEFAULT_CAPTION_WEIGHT = 0.1


@dataclass(frozen=True)
class RunOptions:
    """How one reverse-prompt run searches. Validated on construction.

    The defaults are the same for every model (real checkpoints, the demo world, the tiny
    test models); a model family or preset adds only how it renders (size, steps, guidance)."""

    strategy: Strategy = "auto"
    iterations: int = 10
    candidates: int = 8
    seed: int = 0
    images_per_prompt: int = 1
    steps: int = 30
    guidance: float = 7.5
    width: int = 512
    height: int = 512
    negative_prompt: str = ""
    target_score: float | None = None
    patience: int = 3  # iterations without improvement before stopping; 0 = never
    time_budget_s: float | None = None
    # renders the backend may make for this run (cache hits free); 0 or None: no limit
    budget: int | None = DEFAULT_RENDER_BUDGET
    rerank_top_k: int = 3
    history_in_prompt: int = 8
    # when patience would stop the run, start again from the local captioner's next-best
    # caption (beam search), up to this many times; the best prompt seen is still the answer
    restarts: int = 2
    # US dollars the run's renders may cost (a backend with a price per image: the images
    # API); None: no limit. The run pauses, resumable, before renders that would pass it.
    max_cost: float | None = None
    # how much the local captioner's judgement weighs beside CLIP's when choosing: a prompt's
    # score is its CLIP score plus this times the captioner's mean token log-probability of
    # it as the reference's caption. 0: CLIP alone. Only a captioner that can score captions
    # (an encoder-decoder: vision encoder-decoder, BLIP) is asked.
    caption_weight: float = DEFAULT_CAPTION_WEIGHT

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidOptionError(
                f"strategy '{self.strategy}' is unknown; choose one of {', '.join(STRATEGIES)}."
            )
        for name in ("iterations", "candidates", "images_per_prompt"):
            if getattr(self, name) < 1:
                raise InvalidOptionError(f"{name}={getattr(self, name)} must be at least 1.")
        if self.patience < 0:
            raise InvalidOptionError(f"patience={self.patience} must be 0 (off) or more.")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise InvalidOptionError(f"time_budget_s={self.time_budget_s} must be positive.")
        if self.budget == 0:  # like patience 0 and rerank_top_k 0: off
            object.__setattr__(self, "budget", None)
        if self.budget is not None and self.budget < self.images_per_prompt:
            raise InvalidOptionError(
                f"budget={self.budget} renders cannot pay for the first prompt's "
                f"{self.images_per_prompt} (images_per_prompt); raise the budget (--budget) "
                "to at least that."
            )
        if self.rerank_top_k < 0:
            raise InvalidOptionError(f"rerank_top_k={self.rerank_top_k} must be 0 (off) or more.")
        if self.max_cost is not None and not (math.isfinite(self.max_cost) and self.max_cost > 0):
            raise InvalidOptionError(
                f"max_cost={self.max_cost} must be a positive amount of US dollars (--max-cost)."
            )
        if not (math.isfinite(self.caption_weight) and self.caption_weight >= 0):
            raise InvalidOptionError(
                f"caption_weight={self.caption_weight} must be 0 (CLIP alone) or a positive "
                "number (--caption-weight)."
            )
        if self.restarts < 0:
            raise InvalidOptionError(f"restarts={self.restarts} must be 0 (off) or more.")
        self.render_params  # noqa: B018 - constructing it validates sizes and steps

    @property
    def render_params(self) -> RenderParams:
        return RenderParams(
            negative_prompt=self.negative_prompt,
            steps=self.steps,
            guidance=self.guidance,
            width=self.width,
            height=self.height,
        )

    @property
    def seeds(self) -> list[int]:
        """The same seeds every iteration, so renders differ only by prompt."""
        return [self.seed + i for i in range(self.images_per_prompt)]

    @property
    def iteration_renders(self) -> int:
        """What one iteration may render at most: the top ``rerank_top_k`` candidates with
        every seed when reranking (the chosen one is then already rendered), else the chosen
        prompt with every seed."""
        per_prompt = self.images_per_prompt
        return self.rerank_top_k * per_prompt if self.rerank_top_k else per_prompt

    @property
    def objective(self) -> Literal["text", "image"]:
        """What "best" means: text-image CLIP similarity, or image-image when reranking."""
        return objective_of(self)

    @classmethod
    def build(cls, defaults: dict[str, Any] | None = None, **options: Any) -> RunOptions:
        """Options from explicit values over model defaults (e.g. a preset's) over ours;
        None means "not given". Unknown names are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidOptionError(
                f"unknown run option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        merged = {**(defaults or {}), **{k: v for k, v in options.items() if v is not None}}
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_strategy(strategy: str, llm_available: bool) -> str:
    """``auto`` means enhanced with an LLM, offline without; LLM strategies need an LLM."""
    if strategy == "auto":
        return "enhanced" if llm_available else "offline"
    if strategy in ("vanilla", "enhanced") and not llm_available:
        raise InvalidOptionError(
            f"strategy '{strategy}' needs an LLM, and none is configured. Set ARPO_LLM_API_KEY "
            "(or OPENAI_API_KEY) and/or ARPO_LLM_BASE_URL, or use --strategy offline."
        )
    return strategy
