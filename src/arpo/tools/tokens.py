"""Counting CLIP text tokens: what Stable Diffusion 1.x/2.x's text encoder sees of a prompt.

CLIP's text encoder reads 77 tokens, two of them the start and end markers, so 75 tokens of
prompt; anything after is silently dropped by the pipeline.
"""

from __future__ import annotations

from functools import cache
from typing import Any

CLIP_CONTEXT = 77
CLIP_PROMPT_TOKENS = CLIP_CONTEXT - 2


@cache
def _bpe() -> Any:
    from open_clip.tokenizer import SimpleTokenizer  # imports torch: only when counting

    return SimpleTokenizer()


def clip_token_count(text: str) -> int:
    """BPE tokens in ``text`` (start and end markers not counted)."""
    return len(_bpe().encode(text)) if text.strip() else 0
