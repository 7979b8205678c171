"""What the LLM is asked, and the shapes of its answers."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field


class Caption(BaseModel):
    """A text-to-image prompt that would recreate the image."""

    prompt: str = Field(description="The prompt: comma-separated descriptive phrases.")


class Critique(BaseModel):
    """Concrete differences between the reference image and the recreated image."""

    differences: list[str] = Field(
        description="Each item one concrete difference, e.g. 'reference has two cats, "
        "render has one' or 'reference is a watercolour, render is a photo'."
    )


class Candidates(BaseModel):
    """Improved text-to-image prompts."""

    prompts: list[str] = Field(description="Distinct improved prompts, best guess first.")


PROMPT_STYLE = (
    "Write prompts for a Stable-Diffusion-style text-to-image model: concise comma-separated "
    "phrases (subject first, then setting, composition, medium, style, lighting, colour, "
    "detail), at most about 60 words, no quotes, no explanations."
)

CAPTION = (
    "Describe this image as a text-to-image prompt that would recreate it as closely as "
    f"possible. {PROMPT_STYLE}"
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
    f"reference. Vary them: each should fix something different. {PROMPT_STYLE}"
)

ENHANCED = (
    "The first image is the REFERENCE. The second image was generated from the current "
    "prompt:\n{prompt}\n\n"
    "Differences noticed between the generated image and the reference:\n{critique}\n\n"
    "Prompts tried so far with their similarity to the reference (higher is better):\n"
    "{history}\n\n"
    "Write {count} improved prompts that fix these differences and score higher than the "
    f"prompts above. Keep what works; vary the changes. {PROMPT_STYLE}"
)


def bullet_list(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "- (none listed)"


def scored_list(pairs: Sequence[tuple[str, float]]) -> str:
    return "\n".join(f"{score:.4f}  {prompt}" for prompt, score in pairs) or "(none yet)"
