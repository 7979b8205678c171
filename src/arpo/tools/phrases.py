"""CLIP over the phrase vocabulary: interrogation (an initial prompt) and the offline proposer.

Both rank vocabulary phrases by similarity to the reference image; the vocabulary's
embeddings are computed once per process (the scorer caches them by text).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arpo.tools.vocabulary import Vocabulary, join_phrases, split_phrases

if TYPE_CHECKING:
    import torch

    from arpo.tools.clip import ClipScorer


@dataclass(frozen=True)
class RankedPhrase:
    phrase: str
    category: str
    score: float


def rank_phrases(
    scorer: ClipScorer, vocabulary: Vocabulary, reference: torch.Tensor
) -> list[RankedPhrase]:
    """Every vocabulary phrase with its CLIP similarity to the reference, best first."""
    ranked: list[RankedPhrase] = []
    for category, phrases in vocabulary.categories.items():
        scores = scorer.text_similarity(phrases, reference)
        ranked.extend(RankedPhrase(p, category, s) for p, s in zip(phrases, scores, strict=True))
    return sorted(ranked, key=lambda r: r.score, reverse=True)


class PhraseRanker:
    """:func:`rank_phrases`, remembered per reference: the offline proposer ranks the whole
    vocabulary against the same reference every iteration."""

    def __init__(self, scorer: ClipScorer, vocabulary: Vocabulary, *, cache_size: int = 16) -> None:
        self.scorer = scorer
        self.vocabulary = vocabulary
        self._cache: OrderedDict[bytes, list[RankedPhrase]] = OrderedDict()
        self._cache_size = cache_size

    def rank(self, reference: torch.Tensor) -> list[RankedPhrase]:
        key = _fingerprint(reference)
        if key not in self._cache:
            self._cache[key] = rank_phrases(self.scorer, self.vocabulary, reference)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]


class Interrogator:
    """Builds a prompt without an LLM: the best subject phrase, then, category by category,
    the best-scoring of the top few phrases when adding it raises the prompt's score.
    :meth:`complete` does the second half to a caption written elsewhere (a captioner's)."""

    def __init__(
        self,
        scorer: ClipScorer,
        vocabulary: Vocabulary,
        *,
        per_category: int = 3,
        ranker: PhraseRanker | None = None,
    ) -> None:
        self.scorer = scorer
        self.vocabulary = vocabulary
        self.per_category = per_category
        self.ranker = ranker or PhraseRanker(scorer, vocabulary)

    def caption(self, reference: torch.Tensor) -> str:
        by_category = self._by_category(reference)
        first = _content_category(by_category)
        if first is None:
            return ""
        return self._extend(by_category[first][0], reference, by_category, skip=first)

    def complete(self, caption: str, reference: torch.Tensor) -> str:
        """``caption`` (what the image shows, in words) with a phrase of each other category
        (style, medium, lighting, ...) added while it raises the prompt's score; the subject
        category is the caption's own and is not added to."""
        by_category = self._by_category(reference)
        return self._extend(caption, reference, by_category, skip=_content_category(by_category))

    def _by_category(self, reference: torch.Tensor) -> dict[str, list[str]]:
        """Each category's phrases, best first; categories in the order of their best one."""
        by_category: dict[str, list[str]] = {}
        for item in self.ranker.rank(reference):
            by_category.setdefault(item.category, []).append(item.phrase)
        return by_category

    def _extend(
        self,
        start: str,
        reference: torch.Tensor,
        by_category: dict[str, list[str]],
        *,
        skip: str | None,
    ) -> str:
        """Greedy best-mode interrogation from ``start``: per category (but ``skip`` and those
        ``start`` already says a phrase of), the best of its top ``per_category`` phrases is
        added when the whole prompt scores higher."""
        phrases = [start]
        best = self.scorer.text_similarity([start], reference)[0]
        for category, options in by_category.items():
            if category == skip or any(_says(start, option) for option in options):
                continue
            trials = [join_phrases([*phrases, option]) for option in options[: self.per_category]]
            scores = self.scorer.text_similarity(trials, reference)
            top = max(range(len(trials)), key=scores.__getitem__)
            if scores[top] > best:
                best = scores[top]
                phrases.append(options[top])
        return join_phrases(phrases)


def _says(prompt: str, phrase: str) -> bool:
    """Whether ``prompt`` already says ``phrase`` (whole words, any case): a category the
    caption already speaks to (its style, say) is not completed again."""
    return re.search(rf"\b{re.escape(phrase.lower())}\b", prompt.lower()) is not None


def _content_category(by_category: dict[str, list[str]]) -> str | None:
    """The category that says what the image shows: ``subject``, else the best-ranked one."""
    return "subject" if "subject" in by_category else next(iter(by_category), None)


class Proposals(list[str]):
    """Proposed prompts, best first, with ``scored``: how many edits were scored (one CLIP
    batch) to choose them, which a report shows as "top 8 of 192"."""

    def __init__(self, prompts: Iterable[str] = (), scored: int = 0) -> None:
        super().__init__(prompts)
        self.scored = scored


class OfflineProposer:
    """CLIP-guided local search over the vocabulary (steepest ascent, one phrase at a time).

    It enumerates single edits of the prompt: drop a phrase, replace a phrase by another of
    its category (its one-word neighbours always among them), or add a phrase of any category
    (of a one-per-prompt category only when the prompt has none). Phrases considered for a
    slot are the ``per_slot`` most similar to the reference in that category plus ``explore``
    drawn at random from the rest (a phrase can matter in context though weak alone). At most
    ``max_edits`` edits are scored, in one CLIP batch (one-word edits first, then a sample of
    the rest), and the best ``count`` are returned.
    """

    def __init__(
        self,
        scorer: ClipScorer,
        vocabulary: Vocabulary,
        *,
        per_slot: int = 24,
        explore: int = 8,
        max_edits: int = 512,
        ranker: PhraseRanker | None = None,
    ) -> None:
        self.scorer = scorer
        self.vocabulary = vocabulary
        self.per_slot = per_slot
        self.explore = explore
        self.max_edits = max_edits
        self.ranker = ranker or PhraseRanker(scorer, vocabulary)

    def propose(
        self,
        prompt: str,
        reference: torch.Tensor,
        count: int,
        rng: random.Random,
        fits: Callable[[str], bool] | None = None,
        judge: Judge | None = None,
    ) -> Proposals:
        """The best ``count`` single edits of ``prompt``; with ``fits``, only edits it accepts
        (those within the text encoder's token limit) are scored and proposed. With
        ``judge``, CLIP's best :data:`JUDGED` edits are ranked again by CLIP's score plus
        the judge's weighed one (the local captioner's likelihood: a second eye)."""
        current = split_phrases(prompt)
        edits = self._edits(current, self._slots(current, reference, rng))
        edits.pop(join_phrases(current), None)
        if fits is not None:
            edits = {text: place for text, place in edits.items() if fits(text)}
        fine = [
            text
            for i, phrase in enumerate(current)
            for option in self.vocabulary.neighbours(phrase)
            if (text := join_phrases([*current[:i], option, *current[i + 1 :]])) in edits
        ]
        texts = list(dict.fromkeys(fine))[: self.max_edits]
        kept = set(texts)
        rest = [text for text in edits if text not in kept]
        texts += rng.sample(rest, min(len(rest), self.max_edits - len(texts)))
        if not texts:
            return Proposals()
        scores = self.scorer.text_similarity(texts, reference)
        ranked = sorted(zip(scores, texts, strict=True), key=lambda pair: pair[0], reverse=True)
        if judge is not None:
            ranked = judge.rerank(ranked[:JUDGED])
        return Proposals(_diverse([(edits[text], text) for _, text in ranked], count), len(texts))

    def _slots(
        self, current: list[str], reference: torch.Tensor, rng: random.Random
    ) -> dict[str, list[str]]:
        """Per category, the phrases to try: the best ones, then a few at random."""
        present = {p.casefold() for p in current}
        by_category: dict[str, list[str]] = {}
        for item in self.ranker.rank(reference):
            if item.phrase.casefold() not in present:
                by_category.setdefault(item.category, []).append(item.phrase)
        slots = {}
        for category, phrases in by_category.items():
            best, rest = phrases[: self.per_slot], phrases[self.per_slot :]
            slots[category] = best + rng.sample(rest, min(self.explore, len(rest)))
        return slots

    def _edits(self, current: list[str], slots: dict[str, list[str]]) -> dict[str, str]:
        """Every single edit, mapped to where it acts (a phrase's position, or an added
        category), so the returned candidates can spread over the prompt."""
        edits: dict[str, str] = {}
        everything = [phrase for options in slots.values() for phrase in options]
        present = {p.casefold() for p in current}
        for i, phrase in enumerate(current):
            if len(current) > 1:
                edits.setdefault(join_phrases(current[:i] + current[i + 1 :]), f"at {i}")
            category = self.vocabulary.category_of(phrase)
            options = slots.get(category, everything) if category else everything
            for option in [*self.vocabulary.neighbours(phrase), *options]:
                if option.casefold() in present:  # a word swap can land on another phrase
                    continue
                edits.setdefault(join_phrases([*current[:i], option, *current[i + 1 :]]), f"at {i}")
        stated = {self.vocabulary.category_of(phrase) for phrase in current}
        for category, options in slots.items():
            if category in self.vocabulary.one_per_prompt and category in stated:
                continue  # replacing its phrase (above) is the only edit that makes sense
            for option in options:
                edits.setdefault(join_phrases([*current, option]), f"add {category}")
        return edits


@dataclass(frozen=True)
class Judge:
    """A second score for candidate prompts, added to CLIP's with a weight: ``score`` maps
    texts to scores (higher is better), as the local captioner's likelihood does."""

    score: Callable[[list[str]], list[float]]
    weight: float

    def rerank(self, ranked: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """``(clip score, text)`` pairs by CLIP's score plus the judge's, best first."""
        extra = self.score([text for _, text in ranked])
        combined = [(s + self.weight * e, t) for (s, t), e in zip(ranked, extra, strict=True)]
        return sorted(combined, key=lambda pair: pair[0], reverse=True)


#: CLIP's best edits that a :class:`Judge` ranks again each iteration (its cost bounded).
JUDGED = 64


def _diverse(ranked: list[tuple[str, str]], count: int) -> list[str]:
    """Round robin over places (each place's best edit, then each place's second best, ...),
    returned best first: ``count`` near-copies that all edit the same phrase would waste a
    rerank's renders, and a phrase's runner-up edit often wins once rendered."""
    by_place: dict[str, list[str]] = {}
    for place, text in ranked:
        by_place.setdefault(place, []).append(text)
    chosen: dict[str, None] = {}
    for rank in range(max(map(len, by_place.values()), default=0)):
        for texts in by_place.values():
            if len(chosen) < count and rank < len(texts):
                chosen.setdefault(texts[rank])
    order = {text: i for i, (_, text) in enumerate(ranked)}
    return sorted(chosen, key=order.__getitem__)


def _fingerprint(reference: Any) -> bytes:
    """A content key for an embedding (torch tensor or array-like)."""
    import numpy as np

    detach = getattr(reference, "detach", None)
    array = detach().cpu().numpy() if detach else np.asarray(reference)
    return hashlib.sha256(array.tobytes()).digest()
