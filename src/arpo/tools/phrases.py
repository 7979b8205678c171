"""CLIP over the phrase vocabulary: interrogation (an initial prompt) and the offline proposer.

Both rank vocabulary phrases by similarity to the reference image; the vocabulary's
embeddings are computed once per process (the scorer caches them by text).
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
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
    the best-scoring of the top few phrases when adding it raises the prompt's score."""

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
        ranked = self.ranker.rank(reference)
        by_category: dict[str, list[str]] = {}
        for item in ranked:
            by_category.setdefault(item.category, []).append(item.phrase)
        first = "subject" if "subject" in by_category else next(iter(by_category), None)
        if first is None:
            return ""
        phrases = [by_category[first][0]]
        best = self.scorer.text_similarity([phrases[0]], reference)[0]
        for category, options in by_category.items():
            if category == first:
                continue
            trials = [join_phrases([*phrases, option]) for option in options[: self.per_category]]
            scores = self.scorer.text_similarity(trials, reference)
            top = max(range(len(trials)), key=scores.__getitem__)
            if scores[top] > best:
                best = scores[top]
                phrases.append(options[top])
        return join_phrases(phrases)


class OfflineProposer:
    """CLIP-guided local search: candidates add, replace or drop one phrase of the prompt,
    drawing new phrases from those most similar to the reference."""

    def __init__(
        self,
        scorer: ClipScorer,
        vocabulary: Vocabulary,
        *,
        pool_size: int = 48,
        ranker: PhraseRanker | None = None,
    ) -> None:
        self.scorer = scorer
        self.vocabulary = vocabulary
        self.pool_size = pool_size
        self.ranker = ranker or PhraseRanker(scorer, vocabulary)

    def propose(
        self, prompt: str, reference: torch.Tensor, count: int, rng: random.Random
    ) -> list[str]:
        current = split_phrases(prompt)
        present = {p.casefold() for p in current}
        pool = [r for r in self.ranker.rank(reference) if r.phrase.casefold() not in present][
            : self.pool_size
        ]
        candidates: dict[str, None] = {}
        for _ in range(count * 8):
            if len(candidates) >= count or (not pool and len(current) < 2):
                break
            edited = self._edit(current, pool, rng)
            text = join_phrases(edited)
            if text and text != prompt:
                candidates.setdefault(text, None)
        return list(candidates)

    def _edit(self, current: list[str], pool: list[RankedPhrase], rng: random.Random) -> list[str]:
        operations = ["add"] * 5 + ["replace"] * 3 + ["drop"] * 2
        operation = rng.choice(operations) if current else "add"
        if operation == "drop" and len(current) > 1:
            dropped = rng.randrange(len(current))
            return [p for i, p in enumerate(current) if i != dropped]
        if not pool:
            return current
        # favour the best phrases: pick from the top of the pool more often
        new = pool[min(int(rng.expovariate(1 / 8)), len(pool) - 1)]
        if operation == "replace" and current:
            same = [
                i for i, p in enumerate(current) if self.vocabulary.category_of(p) == new.category
            ]
            index = rng.choice(same) if same else rng.randrange(len(current))
            return [new.phrase if i == index else p for i, p in enumerate(current)]
        return [*current, new.phrase]


def _fingerprint(reference: Any) -> bytes:
    """A content key for an embedding (torch tensor or array-like)."""
    import numpy as np

    detach = getattr(reference, "detach", None)
    array = detach().cpu().numpy() if detach else np.asarray(reference)
    return hashlib.sha256(array.tobytes()).digest()
