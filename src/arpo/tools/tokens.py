"""Counting prompt tokens the way a model's text encoders do, and a family's token budget.

CLIP's text encoder (Stable Diffusion 1.x/2.x, SDXL, and the first encoders of SD3 and Flux)
reads 77 tokens, two of them the start and end markers, so 75 tokens of prompt; the pipeline
silently drops the rest. T5 (SD3, Flux, PixArt) reads 256-512 tokens, one of them its end
marker. :func:`budget_for` turns a family profile into a :class:`TokenBudget`: the prompt style
the family wants, and how many tokens of which encoder a prompt may have so that the model reads
it whole. Counts are of prompt tokens (the encoder's own markers not counted).

CLIP counts use the BPE that open_clip ships (the same merges as the pipelines' CLIP
tokenizers). Other encoders are counted with the pipeline's own tokenizer when one is at hand
(``pipeline.tokenizer``, ``tokenizer_2``, ``tokenizer_3``: diffusers names them in the order of
the family's ``text_encoders``); without one, :func:`estimated_tokens` stands in.

:func:`split_to_fit` cuts a text at phrase and sentence boundaries into pieces that each fit a
token count (the CLIP scorer's chunked scoring uses it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arpo.tools.families import FamilyProfile, PromptStyle

CLIP_CONTEXT = 77
CLIP_PROMPT_TOKENS = CLIP_CONTEXT - 2
# markers an encoder adds around a prompt, where no tokenizer is at hand to ask: CLIP start
# and end; T5 an end marker; a word-level vocabulary's (the demo CLIP's) start and end; others
# (Gemma: a start marker) assumed to take two
SPECIAL_TOKENS = {"clip": 2, "t5": 1, "word": 2}
DEFAULT_SPECIAL_TOKENS = 2
# T5 (32k SentencePiece) and Gemma (256k) split English into about as many or fewer pieces
# than CLIP's 49k BPE; without the pipeline's tokenizer a prompt's CLIP count with this margin
# stands in, so an estimate errs towards cutting early rather than letting the model truncate
ESTIMATE_MARGIN = 1.3

Counter = Callable[[str], int]


@cache
def _bpe() -> Any:
    from open_clip.tokenizer import SimpleTokenizer  # imports torch: only when counting

    return SimpleTokenizer()


@lru_cache(maxsize=1 << 16)  # the loop counts the same candidates when it proposes and scores
def clip_token_count(text: str) -> int:
    """BPE tokens in ``text`` (start and end markers not counted)."""
    return len(_bpe().encode(text)) if text.strip() else 0


# a word-level tokenizer's pieces: runs of word characters, runs of punctuation (the
# tokenizers library's Whitespace pre-tokenizer, which the demo CLIP's tokenizer uses)
_WORD_PIECES = re.compile(r"\w+|[^\w\s]+")


def word_token_count(text: str) -> int:
    """Tokens a word-level tokenizer makes of ``text`` (markers not counted): exact for the
    demo CLIP's, which reads one token per word or run of punctuation."""
    return len(_WORD_PIECES.findall(text))


#: Encoder kinds counted exactly without a tokenizer at hand (CLIP: open_clip ships its BPE).
EXACT_COUNTERS: dict[str, Counter] = {"clip": clip_token_count, "word": word_token_count}


def estimated_tokens(text: str) -> int:
    """A stand-in count for an encoder whose tokenizer is not at hand (T5, Gemma): the CLIP
    BPE count times :data:`ESTIMATE_MARGIN`, rounded up. An estimate, meant to over-count."""
    return math.ceil(clip_token_count(text) * ESTIMATE_MARGIN)


def tokenizer_counter(tokenizer: Any) -> tuple[Counter, int]:
    """A prompt-token counter from a transformers tokenizer, and the markers it adds (what it
    makes of the empty string)."""

    def length(text: str) -> int:
        return hf_length(tokenizer, text)

    specials = length("")
    return (lambda text: max(0, length(text) - specials)), specials


def hf_length(tokenizer: Any, text: str) -> int:
    """Tokens a Hugging Face tokenizer makes of ``text``, its markers included, untruncated
    (without the warning it gives for a text longer than its model reads: that is the point)."""
    return len(tokenizer(text, verbose=False)["input_ids"])


@dataclass(frozen=True)
class EncoderCount:
    """How one text encoder counts: ``count`` gives prompt tokens, of which it reads
    ``capacity``; ``exact`` is False where the count is :func:`estimated_tokens`."""

    kind: str
    capacity: int
    count: Counter = field(compare=False, repr=False)
    exact: bool = True


@dataclass(frozen=True)
class TokenBudget:
    """What a family's model reads of a prompt, and the style its prompts are written in.

    ``encoders`` count a prompt as each text encoder does; ``limit`` is the one that reads the
    most (CLIP for CLIP-only families, T5 for SD3 and Flux, whose CLIP encoders read the first
    75 tokens of what T5 reads): a prompt within its capacity is read whole by the model.
    """

    style: PromptStyle
    encoders: tuple[EncoderCount, ...]

    @property
    def limit(self) -> EncoderCount:
        return max(self.encoders, key=lambda encoder: encoder.capacity)

    @property
    def max_tokens(self) -> int:
        return self.limit.capacity

    @property
    def long_encoder(self) -> bool:
        """Whether the model reads more than CLIP's 75 tokens (through T5 or the like)."""
        return self.max_tokens > CLIP_PROMPT_TOKENS

    def count(self, text: str) -> int:
        """``text`` in tokens of the encoder that reads the most."""
        return self.limit.count(text)

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.max_tokens

    def counts(self, text: str) -> dict[str, int]:
        """``text`` in each kind of encoder's tokens (``{"clip": 40, "t5": 44}``)."""
        found: dict[str, int] = {}
        for encoder in self.encoders:
            found.setdefault(encoder.kind, encoder.count(text))
        return found

    def describe(self) -> str:
        """``"75 CLIP tokens"``, ``"255 T5 tokens (estimated)"``."""
        limit = self.limit
        estimated = "" if limit.exact else " (estimated)"
        return f"{limit.capacity} {limit.kind.upper()} tokens{estimated}"


def budget_for(profile: FamilyProfile, pipeline: Any = None) -> TokenBudget:
    """The token budget and prompt style of ``profile``'s models: the one place that decides
    them (the loop's LLM prompts and cuts, and remix's composing, all read it).

    ``pipeline`` (a loaded diffusers pipeline, optional) lends its tokenizers for encoders
    other than CLIP; without it those are estimated.
    """
    encoders = []
    for index, encoder in enumerate(profile.text_encoders):
        if encoder.kind in EXACT_COUNTERS:
            capacity = encoder.max_tokens - SPECIAL_TOKENS[encoder.kind]
            encoders.append(EncoderCount(encoder.kind, capacity, EXACT_COUNTERS[encoder.kind]))
            continue
        tokenizer = _pipeline_tokenizer(pipeline, index)
        if tokenizer is not None:
            count, specials = tokenizer_counter(tokenizer)
            encoders.append(EncoderCount(encoder.kind, encoder.max_tokens - specials, count))
        else:
            specials = SPECIAL_TOKENS.get(encoder.kind, DEFAULT_SPECIAL_TOKENS)
            encoders.append(
                EncoderCount(
                    encoder.kind, encoder.max_tokens - specials, estimated_tokens, exact=False
                )
            )
    return TokenBudget(style=profile.prompt_style, encoders=tuple(encoders))


def _pipeline_tokenizer(pipeline: Any, index: int) -> Any:
    """The pipeline's tokenizer for its ``index``-th text encoder (``tokenizer``,
    ``tokenizer_2``, ...), unless absent or a CLIP tokenizer (then the order is not the
    profile's, and an estimate is safer than a count in the wrong tokens)."""
    if pipeline is None:
        return None
    tokenizer = getattr(pipeline, "tokenizer" if index == 0 else f"tokenizer_{index + 1}", None)
    if tokenizer is None or not callable(tokenizer) or "CLIP" in type(tokenizer).__name__:
        return None
    return tokenizer


# -- cutting a text into pieces that fit ----------------------------------------------------

# phrase separators (as tools.vocabulary.split_phrases) and sentence ends
_BOUNDARY = re.compile(r"[,;\n\r]+|(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")


def split_to_fit(text: str, count: Counter, capacity: int) -> list[tuple[str, int]]:
    """``text`` as consecutive pieces of at most ``capacity`` tokens by ``count``, each with
    its count: whole phrases and sentences packed greedily in order; a phrase longer than
    ``capacity`` alone is split between words (a word longer than that stays whole). Each piece
    is a slice of ``text`` (its own punctuation kept); a text that fits is one piece."""
    stripped = text.strip()
    if not stripped:
        return []
    whole = count(stripped)
    if whole <= capacity:
        return [(stripped, whole)]
    spans: list[tuple[int, int, bool]] = []  # (start, end, whether a piece must start here)
    for start, end in _spans(text, _BOUNDARY):
        if count(text[start:end]) <= capacity:
            spans.append((start, end, False))
        else:  # its words start a piece of their own, rather than end the one before
            words = _words(text[start:end])
            spans.extend((start + s, start + e, i == 0) for i, (s, e) in enumerate(words))
    pieces: list[tuple[str, int]] = []
    first = last = 0
    for index, (start, end, fresh) in enumerate(spans):
        if index and not fresh and count(_piece(text, first, end)) <= capacity:
            last = end
            continue
        if index:
            pieces.append(_counted(text, first, last, count))
        first, last = start, end
    if spans:
        pieces.append(_counted(text, first, last, count))
    return [(piece, tokens) for piece, tokens in pieces if piece]


def _piece(text: str, start: int, end: int) -> str:
    return text[start:end].strip(" ,;\n\r")


def _counted(text: str, start: int, end: int, count: Counter) -> tuple[str, int]:
    piece = _piece(text, start, end)
    return piece, count(piece)


def _spans(text: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of the non-blank pieces between separators."""
    spans, start = [], 0
    for match in separator.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [
        (start + len(piece) - len(piece.lstrip()), end - (len(piece) - len(piece.rstrip())))
        for start, end in spans
        if (piece := text[start:end]).strip()
    ]


def _words(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _WORD.finditer(text)]
