"""What the LLM is asked, and the shapes of its answers.

Every prompt the LLM writes is asked for in the model family's style (:func:`style_for`, from
its :class:`~arpo.tools.tokens.TokenBudget`): comma-separated tags within CLIP's 75 tokens for
CLIP-encoder families, natural sentences within the T5 limit for long-encoder families. The
templates take it as ``{style}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from arpo.tools.tokens import TokenBudget


class Caption(BaseModel):
    """A text-to-image prompt that would recreate the image."""

    prompt: str = Field(description="The prompt, written in the style asked for.")


class Critique(BaseModel):
    """Concrete differences between the reference image and the recreated image."""

    differences: list[str] = Field(
        description="Each item one concrete difference, e.g. 'reference has two cats, "
        "render has one' or 'reference is a watercolour, render is a photo'."
    )


class Candidates(BaseModel):
    """Improved text-to-image prompts."""

    prompts: list[str] = Field(description="Distinct improved prompts, best guess first.")


TAGS_STYLE = (
    "Write prompts for a text-to-image model with a CLIP text encoder: concise comma-separated "
    "phrases (subject first, then setting, composition, medium, style, lighting, colour, "
    "detail), at most about {words} words: the model reads only {limit}, and a longer prompt "
    "is cut. No quotes, no explanations."
)

SENTENCES_STYLE = (
    "Write prompts for a text-to-image model with a long T5 text encoder, which understands "
    "natural language: plain descriptive sentences, not a list of tags (first the subject, its "
    "attributes and the setting, then composition and camera, then medium and style, then "
    "lighting and colour), at most about {words} words: the model reads only {limit}. No "
    "quotes, no explanations."
)
# words a prompt of N tokens holds, roughly (tags spend tokens on commas); sentences are
# asked to stay far below T5's limit, since the CLIP scorer reads them in 75-token chunks
WORDS_PER_TOKEN = {"tags": 0.8, "sentences": 0.7}
MAX_SENTENCE_WORDS = 120


def style_for(budget: TokenBudget) -> str:
    """The style instruction for the family whose token budget is ``budget``."""
    words = int(budget.max_tokens * WORDS_PER_TOKEN[budget.style] / 5) * 5
    if budget.style == "sentences":
        return SENTENCES_STYLE.format(words=min(words, MAX_SENTENCE_WORDS), limit=budget.describe())
    return TAGS_STYLE.format(words=words, limit=budget.describe())


CAPTION = (
    "Describe this image as a text-to-image prompt that would recreate it as closely as "
    "possible. {style}"
)

CRITIQUE = (
    "The first image is the REFERENCE. The second image was generated from this prompt:\n"
    "{prompt}\n\n"
    "List the concrete visual differences between the generated image and the reference: "
    "subject, attributes, count, composition and camera, colour, lighting, medium and style. "
    "Be specific and brief; list the most important first."
)

VANILLA = (
    "The first image is the REFERENCE. The second image was generated from this prompt:\n"
    "{prompt}\n\n"
    "Write {count} improved prompts that would make the generated image closer to the "
    "reference. Vary them: each should fix something different. {style}"
)

ENHANCED = (
    "The first image is the REFERENCE. The second image was generated from the current "
    "prompt:\n{prompt}\n\n"
    "Differences noticed between the generated image and the reference:\n{critique}\n\n"
    "Prompts tried so far with their similarity to the reference (higher is better):\n"
    "{history}\n\n"
    "Write {count} improved prompts that fix these differences and score higher than the "
    "prompts above. Keep what works; vary the changes. {style}"
)


def bullet_list(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "- (none listed)"


def scored_list(pairs: Sequence[tuple[str, float]]) -> str:
    return "\n".join(f"{score:.4f}  {prompt}" for prompt, score in pairs) or "(none yet)"
